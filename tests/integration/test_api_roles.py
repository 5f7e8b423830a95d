"""Who may call what: every route of the API against one table of the roles allowed.

The routes are read from ``create_app(settings).routes``, so an endpoint added later is checked too, and
the test fails until ``ROLES`` says who may call it: a new endpoint forces a decision. For each route:

* public: answers without a key (no 401, no 403);
* otherwise: no key, or a key that is not one of ``IOC_API_KEYS``, gets 401; each role not allowed gets
  403; both with a ``detail`` sentence saying why. Each allowed role gets past the check (any other status
  will do: 200, 404 for the made-up ids, 422 for the missing bodies…);
* a key in the query counts for nothing on any route (401): URLs end up in logs, so only the
  ``X-API-Key`` header is read (``GET /v1/stream`` included).

Every request is a streaming one, closed once the status is known, so the endless ``GET /v1/stream``
needs no special case.

A key may be scoped to districts (``name:operator@hoan-kiem:key``, issue 16). ``SCOPES`` says, for every
route an operator may call, what such a key gets: the route's data of its districts (``FILTERED``), one
item by id that is a 404 outside them (``BY_ID``), or a refusal (``REFUSED``: city-wide by nature). The
scoped key must pass every operator route's role check (but the refused ones: 403 saying why), and a
district outside its scope named in a route's filter is a 403. ``test_api_scopes`` checks what each route
then shows and does against real data.
"""

from __future__ import annotations

import re
from typing import Literal

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.routing import Mount

from ioc.api import create_app
from ioc.feeds import FEEDS
from ioc.settings import Role
from tests.conftest import TEST_KEYS

pytestmark = pytest.mark.integration

PUBLIC: Literal["public"] = "public"
OPERATORS = frozenset({Role.operator, Role.admin})  # read the picture, acknowledge, resolve, silence
INTEGRATORS = frozenset({Role.integrator, Role.admin})  # push events in
ADMINS = frozenset({Role.admin})

# (method, path) → who may call it. A path ending in "/..." covers every route under it.
ROLES: dict[tuple[str, str], frozenset[Role] | Literal["public"]] = {
    # Health, the API's own documentation, metrics, the operators' console.
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/"): PUBLIC,
    ("GET", "/console/..."): PUBLIC,
    # The live picture.
    ("GET", "/v1/picture"): OPERATORS,
    ("GET", "/v1/sensors"): OPERATORS,
    ("GET", "/v1/sensors/{sensor_id}"): OPERATORS,
    ("GET", "/v1/stream"): OPERATORS,
    # History, the KPIs, and the open data `ioc export` writes (aggregates of fixed stations: public).
    ("GET", "/v1/history"): OPERATORS,
    ("GET", "/v1/history/alerts"): OPERATORS,
    ("GET", "/v1/history/incidents"): OPERATORS,
    ("GET", "/v1/kpis"): OPERATORS,
    ("GET", "/open-data/{name:path}"): PUBLIC,
    # Alerts, incidents, the audit trail.
    ("GET", "/v1/alerts"): OPERATORS,
    ("GET", "/v1/alerts/{alert_id}"): OPERATORS,
    ("POST", "/v1/alerts/{alert_id}/ack"): OPERATORS,
    ("POST", "/v1/alerts/{alert_id}/resolve"): OPERATORS,
    ("GET", "/v1/incidents"): OPERATORS,
    ("GET", "/v1/audit"): OPERATORS,
    # Silences.
    ("GET", "/v1/silences"): OPERATORS,
    ("POST", "/v1/silences"): OPERATORS,
    ("GET", "/v1/silences/{silence_id}"): OPERATORS,
    ("DELETE", "/v1/silences/{silence_id}"): OPERATORS,
    # Ingest.
    **{("POST", f"/v1/ingest/{feed}"): INTEGRATORS for feed in FEEDS},
    ("POST", "/v1/ngsi-ld/notify"): INTEGRATORS,
    ("POST", "/ngsi-ld/v1/entityOperations/upsert"): INTEGRATORS,
    ("PATCH", "/ngsi-ld/v1/entities/{entityId}/attrs"): INTEGRATORS,
    ("GET", "/ngsi-ld/v1/entities"): OPERATORS,  # the live picture, as an NGSI-LD context source
    ("GET", "/ngsi-ld/v1/entities/{entityId}"): OPERATORS,
    ("GET", "/ngsi-ld/v1/temporal/entities"): OPERATORS,  # from the history store
    ("GET", "/ngsi-ld/v1/temporal/entities/{entityId}"): OPERATORS,
}

PATH_VALUES = {"feed": "air"}  # path parameters; any other is "x"

# What a key scoped to districts gets on each route an operator may call (the ingest routes are the
# integrators', the public ones carry no district's data).
FILTERED, BY_ID, REFUSED = "its districts' items only", "404 for an item outside its districts", "403"
SCOPES: dict[tuple[str, str], str] = {
    ("GET", "/v1/picture"): FILTERED,
    ("GET", "/v1/sensors"): FILTERED,
    ("GET", "/v1/sensors/{sensor_id}"): BY_ID,
    ("GET", "/v1/stream"): FILTERED,
    ("GET", "/v1/history"): BY_ID,  # a sensor outside: 404; an area outside: 403
    ("GET", "/v1/history/alerts"): FILTERED,
    ("GET", "/v1/history/incidents"): FILTERED,
    ("GET", "/v1/kpis"): FILTERED,  # its districts' rows, MTTA/MTTR of their alerts; no city row
    ("GET", "/v1/alerts"): FILTERED,
    ("GET", "/v1/alerts/{alert_id}"): BY_ID,
    ("POST", "/v1/alerts/{alert_id}/ack"): BY_ID,
    ("POST", "/v1/alerts/{alert_id}/resolve"): BY_ID,
    ("GET", "/v1/incidents"): FILTERED,
    ("GET", "/v1/audit"): FILTERED,
    ("GET", "/v1/silences"): FILTERED,
    ("POST", "/v1/silences"): FILTERED,  # only silences confined to its districts: 403 otherwise
    ("GET", "/v1/silences/{silence_id}"): BY_ID,
    ("DELETE", "/v1/silences/{silence_id}"): BY_ID,
    ("GET", "/ngsi-ld/v1/entities"): FILTERED,
    ("GET", "/ngsi-ld/v1/entities/{entityId}"): BY_ID,
    ("GET", "/ngsi-ld/v1/temporal/entities"): FILTERED,
    ("GET", "/ngsi-ld/v1/temporal/entities/{entityId}"): BY_ID,
}
# The routes that take districts in a query parameter, with what else they need to reach the check.
DISTRICT_FILTERS: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/v1/sensors"): {"district": "dong-da"},
    ("GET", "/v1/alerts"): {"district": "dong-da"},
    ("GET", "/v1/incidents"): {"district": "dong-da"},
    ("GET", "/v1/history"): {"area": "dong-da", "feed": "air", "measure": "pm25"},
    ("GET", "/v1/history/alerts"): {"area": "dong-da"},
    ("GET", "/v1/history/incidents"): {"area": "dong-da"},
}
REFUSED_PARAMS = {("GET", "/v1/kpis"): {"from": "2026-12-01", "to": "2026-12-01"}}  # valid, to reach it
SCOPED_KEY = "scoped-operator-key-hk"


def routes(app) -> list[tuple[str, str]]:
    """Every (method, path) the app answers; HEAD beside GET is left out, a mount is its path + "/"."""
    found = set()
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, Mount):
            found.add(("GET", route.original_route.path + "/"))
            continue
        methods = set(route.methods or ())
        if "GET" in methods:
            methods.discard("HEAD")
        found |= {(method, route.path) for method in methods}
    return sorted(found)


def entry(method: str, path: str) -> tuple[str, str] | None:
    """The table entry that covers a route, or None."""
    if (method, path) in ROLES:
        return method, path
    for listed_method, listed in ROLES:
        if listed.endswith("/...") and listed_method == method and (path + "/").startswith(listed[:-3]):
            return listed_method, listed
    return None


def url(path: str) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: PATH_VALUES.get(m.group(1), "x"), path)


def is_sentence(detail: object) -> bool:
    return isinstance(detail, str) and bool(re.fullmatch(r"[A-Z].{15,}[.!]", detail, re.DOTALL))


@pytest.fixture
def client(settings):
    # Every route is tried with a wrong key from the one test client: more than IOC_AUTH_FAILURES_MAX allows.
    keys = f"{settings.api_keys.get_secret_value()},hk:operator@hoan-kiem:{SCOPED_KEY}"
    settings = settings.model_copy(update={"auth_failures_max": 10_000, "api_keys": SecretStr(keys)})
    with TestClient(create_app(settings)) as client:
        yield client


def test_every_route_admits_exactly_the_roles_the_table_names(client):
    problems: list[str] = []

    def call(method: str, path: str, **request) -> tuple[int, object]:
        """The status, and the detail of a 401 or 403 (the stream is closed without reading on)."""
        with client.stream(method, url(path), **request) as response:
            if response.status_code not in (401, 403):
                return response.status_code, None
            response.read()
            return response.status_code, response.json().get("detail")

    def expect(what: str, got: tuple[int, object], status: int) -> None:
        code, detail = got
        if code != status:
            problems.append(f"{what}: {code}, expected {status}")
        elif not is_sentence(detail):
            problems.append(f"{what}: {status} without a detail sentence saying why: {detail!r}")

    app_routes = routes(client.app)
    assert ("GET", "/v1/picture") in app_routes and ("GET", "/v1/stream") in app_routes  # the walk works
    unlisted = [route for route in app_routes if entry(*route) is None]
    assert not unlisted, f"routes ROLES does not list (say who may call them): {unlisted}"

    for method, path in app_routes:
        allowed = ROLES[entry(method, path)]
        name = f"{method} {path}"
        if allowed == PUBLIC:
            code, _ = call(method, path)
            if code in (401, 403):
                problems.append(f"{name} is public but answered {code} without a key")
            continue
        assert Role.admin in allowed, f"{name}: admin may do everything"
        expect(f"{name} without a key", call(method, path), 401)
        expect(f"{name} with an unknown key", call(method, path, headers={"X-API-Key": "nope"}), 401)
        got = call(method, path, params={"key": TEST_KEYS["admin"]})
        expect(f"{name} with an admin key in ?key= (only a header counts)", got, 401)
        for role in Role:
            got = call(method, path, headers={"X-API-Key": TEST_KEYS[role]})
            if role in allowed and got[0] in (401, 403):
                problems.append(f"{name}: the {role} key refused with {got[0]}: {got[1]!r}")
            elif role not in allowed:
                expect(f"{name} with the {role} key", got, 403)
    assert not problems, "\n".join(problems)


def test_every_route_the_table_names_exists(client):
    """The other direction: an entry of ROLES without a route is stale (or its endpoint not built yet)."""
    app_routes = routes(client.app)
    covered = {entry(*route) for route in app_routes}
    missing = [listed for listed in ROLES if listed not in covered]
    assert not missing, f"ROLES entries without a route: {missing}"


def test_a_district_scoped_operator_key_on_every_operator_route(client):
    problems: list[str] = []

    def call(method: str, path: str, **request) -> tuple[int, object]:
        with client.stream(method, url(path), headers={"X-API-Key": SCOPED_KEY}, **request) as response:
            if response.status_code not in (401, 403):
                return response.status_code, None
            response.read()
            return response.status_code, response.json().get("detail")

    operator_routes = [
        route
        for route in routes(client.app)
        if ROLES[entry(*route)] != PUBLIC and Role.operator in ROLES[entry(*route)]  # type: ignore[operator]
    ]
    unlisted = [route for route in operator_routes if route not in SCOPES]
    assert not unlisted, f"operator routes SCOPES does not list (say what a scoped key gets): {unlisted}"
    for route in operator_routes:
        name = " ".join(route)
        code, detail = call(*route, params=REFUSED_PARAMS.get(route))
        if SCOPES[route] == REFUSED:
            if code != 403 or not is_sentence(detail) or "scoped" not in str(detail):
                problems.append(f"{name}: refused to a scoped key, but answered {code}: {detail!r}")
        elif code in (401, 403):
            problems.append(f"{name}: the scoped operator key refused with {code}: {detail!r}")
        if (params := DISTRICT_FILTERS.get(route)) is not None:
            code, detail = call(*route, params=params)
            if code != 403 or "dong-da" not in str(detail) or not is_sentence(detail):
                problems.append(f"{name} naming a district outside the scope: {code}, {detail!r}")
    assert not problems, "\n".join(problems)
