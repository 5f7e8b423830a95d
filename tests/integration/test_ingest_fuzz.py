"""Fuzzing the ingest endpoints (real broker and Redis): whatever the body, never a 5xx.

Items come from the request schemas of the API's own OpenAPI document (a small JSON-schema-to-hypothesis
translation below: types, enums, bounds, patterns, required and optional properties), bent by junk
values and unknown fields; bodies also come as random bytes, random content types, gzip or not.
The broker is up, so not even a 503 is allowed.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections import Counter
from datetime import UTC, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ioc.api import create_app
from ioc.city import load_city
from tests.integration.test_ingest import INTEGRATOR

pytestmark = pytest.mark.integration

FEEDS = ("air", "water", "traffic", "transit")
ENTITY_TYPES = {
    "air": "AirQualityObserved",
    "water": "WaterQualityObserved",
    "traffic": "TrafficFlowObserved",
}
ALLOWED = {200, 400, 413, 415, 422}
CITY = load_city("hanoi")

json_junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=15,
)
offsets = st.sampled_from([UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=-3, minutes=-30))])
date_times = st.datetimes(timezones=offsets).map(lambda d: d.isoformat()) | st.datetimes().map(
    lambda d: d.isoformat()  # no offset: must be rejected, not crash
)


def from_schema(schema: dict[str, Any], feed: str | None = None, name: str = "") -> st.SearchStrategy:
    """Values valid for ``schema`` most of the time (the subset pydantic's schemas use)."""
    if name == "sensorId" and feed:
        ids = [s.id for s in CITY.sensors_of(feed)] + [s.id for s in CITY.sensors[:3]]
        return st.sampled_from(ids) | st.text(min_size=1, max_size=20).map("unregistered:{}".format)
    if "anyOf" in schema and "type" not in schema and "properties" not in schema:
        return st.one_of([from_schema(s, feed, name) for s in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        if schema.get("format") == "date-time":
            return date_times
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda s: len(s) <= schema.get("maxLength", 1000)
            )
        return st.text(min_size=schema.get("minLength", 0), max_size=schema.get("maxLength", 40))
    if kind in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if kind == "integer":
            return st.integers(None if low is None else int(low), None if high is None else int(high))
        return st.floats(low, high, allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), feed), max_size=3)
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v, feed, k) for k, v in properties.items() if k in required},
            optional={k: from_schema(v, feed, k) for k, v in properties.items() if k not in required},
        )
    return json_junk


def bent(items: st.SearchStrategy) -> st.SearchStrategy:
    """Schema-shaped items, sometimes with a field replaced by junk or an unknown field added."""
    return st.one_of(
        items,
        st.tuples(items, st.text(max_size=12), json_junk).map(lambda t: {**t[0], t[1]: t[2]}),
        json_junk,
    )


@pytest.fixture(scope="module")
def client(servers):
    from ioc.settings import Settings
    from tests.conftest import TEST_KEYS

    settings = Settings(
        kafka_bootstrap=servers.kafka,
        redis_url=servers.redis,
        topic_prefix=f"fuzz{uuid.uuid4().hex[:8]}",
        redis_prefix=f"fuzz{uuid.uuid4().hex[:8]}",
        partitions=2,
        api_keys=",".join(f"{role}:{key}" for role, key in TEST_KEYS.items()),
        ingest_rate_per_key=1e9,
        ingest_max_items=50,
        ingest_max_body_bytes=64 * 1024,
        **servers.security,  # IOC_TEST_SECURE=1: the secured servers' credentials
    )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def schemas(client) -> dict[str, dict]:
    document = client.get("/openapi.json").json()
    return {
        feed: document["paths"][f"/v1/ingest/{feed}"]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]["items"]
        for feed in FEEDS
    }


SEEN: Counter[str] = Counter()


def check(response) -> None:
    assert response.status_code in ALLOWED, (response.status_code, response.text[:500])
    SEEN[str(response.status_code)] += 1
    if response.status_code in (200, 422):
        result = response.json()
        SEEN["accepted"] += result["accepted"]
        SEEN["rejected"] += len(result["rejected"])
        assert result["received"] == result["accepted"] + result["duplicates"] + len(result["rejected"])
        if response.status_code == 422:
            assert result["accepted"] == result["duplicates"] == 0


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(data=st.data(), feed=st.sampled_from(FEEDS), form=st.sampled_from(["json", "ndjson", "gzip"]))
def test_schema_shaped_batches_never_give_a_5xx(client, schemas, data, feed, form):
    items = data.draw(st.lists(bent(from_schema(schemas[feed], feed)), max_size=8))
    if form == "ndjson":
        body = "\n".join(json.dumps(item) for item in items).encode()
        headers = {"Content-Type": "application/x-ndjson"}
    else:
        body = json.dumps(items).encode()
        headers = {"Content-Type": "application/json"}
    if form == "gzip":
        body, headers = gzip.compress(body), headers | {"Content-Encoding": "gzip"}
    check(client.post(f"/v1/ingest/{feed}", content=body, headers=INTEGRATOR | headers))


@FUZZ
@given(
    feed=st.sampled_from(FEEDS),
    body=st.binary(max_size=300) | json_junk.map(lambda v: json.dumps(v).encode()),
    content_type=st.sampled_from(
        ["application/json", "application/x-ndjson", "text/plain", "", "application/json; charset=latin-1"]
    ),
    encoding=st.sampled_from([None, "gzip", "identity", "br", "gzip, gzip"]),
    compress=st.booleans(),
)
def test_random_bodies_never_give_a_5xx(client, feed, body, content_type, encoding, compress):
    headers = INTEGRATOR | {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    if compress:
        body = gzip.compress(body)
    check(client.post(f"/v1/ingest/{feed}", content=body, headers=headers))


def entities(schemas: dict[str, dict]) -> st.SearchStrategy:
    def entity(feed: str) -> st.SearchStrategy:
        def shape(attributes: dict, normalized: bool, sensor: str) -> dict:
            attributes = dict(attributes)
            attributes.pop("sensorId", None)
            if normalized:
                attributes = {k: {"type": "Property", "value": v} for k, v in attributes.items()}
            return {
                "id": f"urn:ngsi-ld:{ENTITY_TYPES[feed]}:{sensor}",
                "type": ENTITY_TYPES[feed],
                **attributes,
            }

        return st.builds(
            shape,
            bent(from_schema(schemas[feed], feed)).filter(lambda v: isinstance(v, dict)),
            st.booleans(),
            from_schema({}, feed, "sensorId"),
        )

    return st.one_of(*(entity(feed) for feed in ENTITY_TYPES), json_junk)


@FUZZ
@given(data=st.data(), envelope=json_junk)
def test_ngsi_ld_notifications_never_give_a_5xx(client, schemas, data, envelope):
    notification = {
        "id": "urn:ngsi-ld:Notification:fuzz",
        "type": data.draw(st.sampled_from(["Notification", "Notification", "Other"])),
        "subscriptionId": "urn:ngsi-ld:Subscription:fuzz",
        "notifiedAt": "2026-01-15T01:00:00Z",
        "data": data.draw(st.lists(entities(schemas), max_size=6) | json_junk),
    }
    body = data.draw(st.sampled_from([notification, envelope]))
    check(client.post("/v1/ngsi-ld/notify", content=json.dumps(body).encode(), headers=INTEGRATOR))


def test_the_fuzzing_reached_every_outcome():
    """Guards the fuzzing itself: accepted items, rejected items and every refusal were all exercised."""
    assert SEEN["accepted"] > 0 and SEEN["rejected"] > 0, SEEN
    assert {"200", "400", "415", "422"} <= set(SEEN), SEEN
