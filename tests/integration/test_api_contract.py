"""The API keeps to its own OpenAPI document: every bad value is a 4xx the document lists, every error
body has the one documented shape, and the document's own examples are accepted.

Against a real Redis and Kafka (a silence is published before it is answered).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ioc.api import create_app
from tests.conftest import TEST_KEYS

pytestmark = pytest.mark.integration

OPERATOR = {"X-API-Key": TEST_KEYS["operator"]}


@pytest.fixture
def client(settings):
    # The worker is not running: a silence is answered once Kafka has it, without waiting to see it listed.
    with TestClient(create_app(settings.model_copy(update={"command_wait_seconds": 0}))) as client:
        yield client


@pytest.fixture
def document(client) -> dict[str, Any]:
    return client.get("/openapi.json").json()


def template(document: dict[str, Any], path: str) -> str:
    """The document's path that a request's path is an instance of."""
    for candidate in document["paths"]:
        if re.fullmatch(re.sub(r"\\\{[^/]+\\\}", "[^/]+", re.escape(candidate)), path):
            return candidate
    raise AssertionError(f"{path} is in no path of the document")


def documented(document: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    """The OpenAPI entry of this status of this operation (the test fails when there is none)."""
    answers = document["paths"][template(document, path)][method.lower()]["responses"]
    assert str(status) in answers, f"{method} {path} answers {status}, which its OpenAPI entry does not list"
    return answers[str(status)]


def schema_of(document: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    schema = answer["content"]["application/json"]["schema"]
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def assert_problem(document: dict[str, Any], method: str, path: str, response: Any) -> None:
    """A documented 4xx whose body is the one error shape: a ``detail`` sentence (and, for values that
    failed validation, the list of ``errors``), as the document's schema for it says."""
    answer = documented(document, method, path, response.status_code)
    schema = schema_of(document, answer)
    assert schema["properties"]["detail"]["type"] == "string", (method, path, schema)
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"], body
    assert set(body) <= set(schema["properties"]), (body, schema)
    for error in body.get("errors", []):
        assert isinstance(error["field"], str) and isinstance(error["reason"], str), error


SILENCE = {"matchers": {"rule": "air.aqi_band"}, "duration": "PT1H", "comment": "test"}


@pytest.mark.parametrize(
    ("method", "path", "request_args"),
    [
        # Were 500s (KeyError, OverflowError).
        ("GET", "/v1/sensors", {"params": {"feed": "AAA"}}),
        ("GET", "/v1/sensors", {"params": {"feed": ""}}),
        ("POST", "/v1/silences", {"json": SILENCE | {"duration": "P9000Y"}}),
        (
            "POST",
            "/v1/silences",
            {"json": SILENCE | {"duration": None, "startsAt": "9999-12-31T00:00:00Z", "endsAt": None}},
        ),
        ("POST", "/v1/silences", {"json": SILENCE | {"startsAt": "9999-12-31T23:00:00Z"}}),
        # FastAPI's own validation: one shape with the handlers' own 422s.
        ("GET", "/v1/alerts", {"params": {"limit": 0}}),
        ("GET", "/v1/alerts", {"params": {"status": "nope"}}),
        ("GET", "/v1/alerts", {"params": {"feed": "noise"}}),
        ("GET", "/v1/alerts", {"params": {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}}),
        ("GET", "/v1/incidents", {"params": {"status": "nope"}}),
        # Numbers are not instants (pydantic read them as seconds since 1970), whatever the OpenAPI said.
        ("GET", "/v1/incidents", {"params": {"until": "0.5"}}),
        ("GET", "/v1/alerts", {"params": {"since": "1700000000"}}),
        ("POST", "/v1/silences", {"json": SILENCE | {"duration": None, "endsAt": 4102444800}}),
        ("GET", "/v1/alerts", {"params": {"feed": ""}}),
        ("GET", "/v1/audit", {"params": {"cursor": "not-a-cursor"}}),
        ("GET", "/v1/silences", {"params": {"all": "maybe"}}),
        ("POST", "/v1/silences", {"json": {"matchers": {"rule": "air.*"}}}),
        ("POST", "/v1/silences", {"json": SILENCE | {"duration": "PT0S"}}),
        ("POST", "/v1/silences", {"json": SILENCE | {"matchers": {"rule": "*"}}}),
        ("POST", "/v1/silences", {"json": [1, 2]}),
        # Bodies that are not JSON.
        ("POST", "/v1/silences", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
        ("POST", "/v1/silences", {"content": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}),
        ("POST", "/v1/alerts/x/ack", {"content": b"\xff", "headers": {"Content-Type": "application/json"}}),
        ("POST", "/v1/alerts/x/resolve", {"content": b"{", "headers": {"Content-Type": "application/json"}}),
        ("POST", "/v1/alerts/x/ack", {"json": {"note": 5}}),
    ],
)
def test_every_bad_value_is_a_documented_4xx_in_the_one_error_shape(
    client, document, method, path, request_args
):
    headers = OPERATOR | request_args.pop("headers", {})
    response = client.request(method, path, headers=headers, **request_args)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert_problem(document, method, path, response)


def test_every_documented_error_of_the_operators_routes_has_the_one_shape(document):
    for path, operations in document["paths"].items():
        if path.startswith(("/v1/ingest/", "/v1/ngsi-ld/")) or path == "/readyz":
            # The ingest 422 is the per-item result (README: "same answer shape"); /readyz's 503 is its
            # health report, naming what is down.
            continue
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")) and "content" in answer:
                    schema = schema_of(document, answer)
                    assert schema["properties"]["detail"]["type"] == "string", (method, path, status)


def test_a_validation_error_names_each_field_and_why(client):
    response = client.get("/v1/alerts", params={"limit": 0, "status": "nope"}, headers=OPERATOR)
    assert response.status_code == 422
    body = response.json()
    fields = {error["field"]: error["reason"] for error in body["errors"]}
    assert set(fields) == {"query.limit", "query.status.0"}  # the first value of the repeatable status
    assert "greater than or equal to 1" in fields["query.limit"]
    assert "query.limit" in body["detail"] and "query.status" in body["detail"]


def test_an_empty_cursor_is_the_first_page(client):
    for path in ("/v1/alerts", "/v1/incidents", "/v1/audit"):
        response = client.get(path, params={"cursor": ""}, headers=OPERATOR)
        assert response.status_code == 200, (path, response.text)


def test_the_openapi_silence_examples_are_accepted(client, document):
    examples = document["paths"]["/v1/silences"]["post"]["requestBody"]["content"]["application/json"]
    for name, example in examples["examples"].items():
        response = client.post("/v1/silences", json=example["value"], headers=OPERATOR)
        assert response.status_code == 201, (name, response.text)


def test_an_unsupported_method_is_told_every_method_of_its_path(client):
    for method, path, allowed in [
        ("OPTIONS", "/v1/silences", {"GET", "POST"}),
        ("PUT", "/v1/silences", {"GET", "POST"}),
        ("OPTIONS", "/v1/silences/some-id", {"GET", "DELETE"}),
        ("PATCH", "/v1/alerts/some-id/ack", {"POST"}),
    ]:
        response = client.request(method, path, headers=OPERATOR)
        assert response.status_code == 405, (method, path)
        assert set(response.headers["Allow"].replace(" ", "").split(",")) == allowed, (method, path)
        assert isinstance(response.json()["detail"], str)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"matchers": {"rule": "*.*"}}, "matches every rule of the rules file: the silence would mute every"),
        ({"matchers": {"entity": "?*"}}, "matches no sensor of the registry (only * is a wildcard)"),
        ({"matchers": {"rule": "air.pm25"}}, "matches no rule of the rules file"),
        ({"duration": "P7300D"}, "at most 30 days (IOC_SILENCE_MAX_DURATION_SECONDS)"),
        ({"duration": "P9000Y"}, "at most 30 days"),
        (
            {"duration": None, "startsAt": "2026-12-04T00:00:00Z", "endsAt": "2046-12-04T00:00:00Z"},
            "this one would last 7,305 days",
        ),
    ],
)
def test_a_silence_must_mute_something_not_everything_and_not_for_ever(client, document, change, reason):
    response = client.post("/v1/silences", json=SILENCE | change, headers=OPERATOR)
    assert response.status_code == 422, response.text
    assert reason in response.json()["detail"]
    assert_problem(document, "POST", "/v1/silences", response)


def test_the_longest_silence_is_a_setting(settings):
    hour = settings.model_copy(update={"silence_max_duration_seconds": 3600, "command_wait_seconds": 0})
    with TestClient(create_app(hour)) as client:
        assert client.post("/v1/silences", json=SILENCE, headers=OPERATOR).status_code == 201
        longer = client.post("/v1/silences", json=SILENCE | {"duration": "PT61M"}, headers=OPERATOR)
        assert longer.status_code == 422 and "at most 0.04167 days" in longer.json()["detail"]
        month = client.post("/v1/silences", json=SILENCE | {"duration": "P30D"}, headers=OPERATOR)
        assert month.status_code == 422
    with TestClient(create_app(settings.model_copy(update={"command_wait_seconds": 0}))) as client:
        month = client.post("/v1/silences", json=SILENCE | {"duration": "P30D"}, headers=OPERATOR)
        assert month.status_code == 201, month.text


@pytest.mark.parametrize("notified_at", ["", "0", 1700000000, "2026-01-15T08:00:00", None])
def test_an_ngsi_ld_notification_is_held_to_its_schema(client, notified_at):
    notification = {
        "id": "urn:ngsi-ld:Notification:1",
        "type": "Notification",
        "notifiedAt": notified_at,
        "data": [],
    }
    integrator = {"X-API-Key": TEST_KEYS["integrator"]}
    response = client.post("/v1/ngsi-ld/notify", json=notification, headers=integrator)
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith("notifiedAt=")
