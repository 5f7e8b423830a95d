"""HTTP ingest against the real broker and Redis: exact counts in the raw topics and the DLQ, bodies,
limits, rate limits shared by replicas, duplicates, NGSI-LD notifications, auth and the OpenAPI document.
"""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition

from connectors.kafka import kafka_python_options
from ioc.api import create_app
from ioc.feeds.air.model import AirQualityObserved
from ioc.feeds.traffic.model import TrafficFlowObserved
from ioc.feeds.water.model import WaterQualityObserved
from ioc.models.ngsi_ld import to_ngsi_ld
from ioc.privacy import pseudonymise_card
from ioc.settings import Settings, unnamed_key_name
from tests.conftest import TEST_KEYS
from tests.processes import read_topic

pytestmark = pytest.mark.integration

INTEGRATOR = {"X-API-Key": TEST_KEYS["integrator"]}
# An unnamed role:key entry is named by its role and the start of its key's SHA-256.
INTEGRATOR_ID = unnamed_key_name("integrator", TEST_KEYS["integrator"])


def air(minute: int, pm25: float = 50.0, sensor: str = "air-kim-lien", **extra: Any) -> dict[str, Any]:
    return {
        "sensorId": sensor,
        "dateObserved": f"2026-01-15T08:{minute:02d}:00+07:00",
        "pm25": pm25,
        **extra,
    }


def traffic(minute: int, intensity: int = 30, lane: int = 1) -> dict[str, Any]:
    return {
        "sensorId": "traffic-nga-tu-so",
        "dateObserved": f"2026-01-15T08:{minute:02d}:00+07:00",
        "intervalSeconds": 60,
        "laneId": lane,
        "intensity": intensity,
        "averageVehicleSpeed": 24.0,
    }


def tap(event_id: str, card: str = "9704000099990000", **extra: Any) -> dict[str, Any]:
    return {
        "sensorId": "metro-2a-cat-linh",
        "eventId": event_id,
        "dateObserved": "2026-01-15T08:00:00+07:00",
        "cardId": card,
        "cardType": "adult",
        "mode": "metro",
        "line": "2A",
        "deviceId": "cat-linh-g3",
        "direction": "ENTRY",
        "fare": 0,
        **extra,
    }


def count(settings: Settings, topic: str) -> int:
    """Records in ``topic``: the sum of its partitions' end offsets (exact once Kafka acknowledged)."""
    consumer = KafkaConsumer(**kafka_python_options(settings))
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        offsets = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return sum(offsets.values())
    finally:
        consumer.close()


def raw_records(settings: Settings, feed: str, expect: int) -> list[dict]:
    records = read_topic(settings, settings.raw_topic(feed), expect=expect)
    assert len(records) == expect
    return records


def dlq_records(settings: Settings, expect: int) -> list[dict]:
    records = read_topic(settings, settings.dlq_topic, expect=expect)
    assert len(records) == expect
    return records


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_mixed_batch_lands_exactly_in_the_raw_topic_and_the_dlq(settings, client):
    batch = [
        air(0, 81.5),
        air(1, -3),  # 1: below the physical range
        air(2, 40, sensor="air-nowhere"),  # 2: not in the registry
        air(3, 55, sensor="unregistered:lowcost-7"),
        {"sensorId": "air-hoan-kiem", "pm25": 12},  # 4: no event time
        "pm25=12",  # 5: not an object
        air(6, 61, sensor="air-hoan-kiem", eventId="hk-6"),
        air(7, 70, colour="grey"),  # 7: unknown field
        air(8, 20, dateObserved="2026-01-15T08:08:00"),  # 8: no UTC offset
    ]
    response = client.post("/v1/ingest/air", json=batch, headers=INTEGRATOR)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["received"], result["accepted"], result["duplicates"]) == (9, 3, 0)
    assert result["acceptedByFeed"] == {"air": 3}
    rejected = {r["index"]: r for r in result["rejected"]}
    assert {i: r["field"] for i, r in rejected.items()} == {
        1: "pm25",
        2: "sensorId",
        4: "dateObserved",
        5: "(event)",
        7: "colour",
        8: "dateObserved",
    }
    assert rejected[1]["reason"] == "Input should be greater than or equal to 0 (got -3)"
    assert "unregistered:air-nowhere" in rejected[2]["reason"]
    assert rejected[4]["reason"] == "Field required"
    assert "timezone" in rejected[8]["reason"]

    # Exactly 3 in the raw topic and 6 in the DLQ, not one more.
    assert count(settings, settings.raw_topic("air")) == 3
    assert count(settings, settings.dlq_topic) == 6
    records = raw_records(settings, "air", 3)
    assert sorted(r["key"] for r in records) == ["air-hoan-kiem", "air-kim-lien", "unregistered:lowcost-7"]
    for record in records:
        assert record["value"]["sensorId"] == record["key"]
        assert record["value"]["ingestTime"].endswith("Z")
        AirQualityObserved.model_validate(record["value"])

    def canonical(item: object) -> str:
        return json.dumps(item, sort_keys=True)

    letters = {canonical(json.loads(r["value"]["payload"])): r["value"] for r in dlq_records(settings, 6)}
    for index in rejected:
        letter = letters[canonical(batch[index])]  # the original item, as sent
        assert letter["reason"] == "invalid" and letter["feed"] == "air"
        assert letter["source"] == f"http POST /v1/ingest/air key={INTEGRATOR_ID}"
        assert letter["detail"].startswith(f"{rejected[index]['field']}: ")
        assert letter["time"].endswith("Z")
    dlq_bytes = json.dumps([r for r in letters.values()])
    assert TEST_KEYS["integrator"] not in dlq_bytes


def test_every_item_rejected_is_422_and_an_unreadable_body_is_400(settings, client):
    response = client.post("/v1/ingest/water", json=[{"sensorId": "x"}, {"pH": 7}], headers=INTEGRATOR)
    assert response.status_code == 422
    assert response.json()["accepted"] == 0 and len(response.json()["rejected"]) == 2
    assert count(settings, settings.dlq_topic) == 2

    for body, content_type, status in (
        (b'[{"sensorId": ', "application/json", 400),
        (b'{"a": NaN}', "application/json", 400),
        (b"42", "application/json", 400),
        (b"sensorId,pm25\nx,1\n", "text/csv", 415),
    ):
        response = client.post(
            "/v1/ingest/air", content=body, headers=INTEGRATOR | {"Content-Type": content_type}
        )
        assert response.status_code == status, (body, response.text)
        assert response.json()["detail"]
    assert client.post("/v1/ingest/air", json=[], headers=INTEGRATOR).json()["received"] == 0
    assert count(settings, settings.dlq_topic) == 2  # an unread body is answered, not dead-lettered
    assert count(settings, settings.raw_topic("air")) == 0


def test_ndjson_and_gzip(settings, client):
    lines = [
        json.dumps(traffic(0)),
        "",
        json.dumps(traffic(1, intensity=-1)),
        json.dumps(traffic(2)),
        "   ",
        '{"sensorId": "traffic-nga-tu-so", "intensity": ',  # not JSON
        json.dumps(traffic(3, lane=2)),
    ]
    body = gzip.compress(("\r\n".join(lines) + "\n").encode())
    headers = INTEGRATOR | {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
    response = client.post("/v1/ingest/traffic", content=body, headers=headers)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["received"] == 5 and result["accepted"] == 3  # blank lines are not items
    assert [(r["index"], r["field"]) for r in result["rejected"]] == [(1, "intensity"), (3, "(event)")]
    assert "not JSON" in result["rejected"][1]["reason"]
    for record in raw_records(settings, "traffic", 3):
        TrafficFlowObserved.model_validate(record["value"])
    reasons = sorted(r["value"]["reason"] for r in dlq_records(settings, 2))
    assert reasons == ["invalid", "unparseable"]

    # A gzip-compressed JSON array works the same way.
    body = gzip.compress(json.dumps([traffic(10), traffic(11)]).encode())
    headers = INTEGRATOR | {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    assert client.post("/v1/ingest/traffic", content=body, headers=headers).json()["accepted"] == 2
    assert count(settings, settings.raw_topic("traffic")) == 5


def test_limits_are_413_and_nothing_is_written(settings):
    limited = settings.model_copy(update={"ingest_max_body_bytes": 4096, "ingest_max_items": 3})
    with TestClient(create_app(limited)) as client:
        assert client.post("/v1/ingest/air", json=[air(0)], headers=INTEGRATOR).status_code == 200
        too_many = client.post("/v1/ingest/air", json=[air(m) for m in range(1, 5)], headers=INTEGRATOR)
        assert too_many.status_code == 413 and "IOC_INGEST_MAX_ITEMS" in too_many.json()["detail"]
        ndjson = "\n".join(json.dumps(air(m)) for m in range(1, 5)).encode()
        headers = INTEGRATOR | {"Content-Type": "application/x-ndjson"}
        assert client.post("/v1/ingest/air", content=ndjson, headers=headers).status_code == 413
        too_big = client.post("/v1/ingest/air", json=[air(1, note="x" * 5000)], headers=INTEGRATOR)
        assert too_big.status_code == 413 and "IOC_INGEST_MAX_BODY_BYTES" in too_big.json()["detail"]
        bomb = gzip.compress(json.dumps([air(1, note=" " * 100_000)]).encode())  # ~200 bytes compressed
        assert len(bomb) < 4096
        response = client.post(
            "/v1/ingest/air", content=bomb, headers=INTEGRATOR | {"Content-Encoding": "gzip"}
        )
        assert response.status_code == 413 and "decompressed" in response.json()["detail"]
        notification = {"type": "Notification", "data": [{"type": "AirQualityObserved"}] * 4}
        assert client.post("/v1/ngsi-ld/notify", json=notification, headers=INTEGRATOR).status_code == 413
    assert count(settings, settings.raw_topic("air")) == 1
    assert count(settings, settings.dlq_topic) == 0


def test_rate_limit_is_per_key_and_shared_by_replicas(settings):
    limited = settings.model_copy(
        update={"ingest_rate_per_key": 4, "ingest_burst_per_key": 8, "ingest_max_items": 8}
    )
    with TestClient(create_app(limited)) as one, TestClient(create_app(limited)) as two:
        assert (
            one.post("/v1/ingest/air", json=[air(m) for m in range(8)], headers=INTEGRATOR).status_code == 200
        )
        # The second replica sees the same bucket (in Redis): this key has no tokens left.
        refused = two.post("/v1/ingest/air", json=[air(m) for m in range(8, 12)], headers=INTEGRATOR)
        assert refused.status_code == 429, refused.text
        retry_after = int(refused.headers["Retry-After"])
        assert 1 <= retry_after <= 2 and INTEGRATOR_ID in refused.json()["detail"]
        # Another key has its own bucket.
        admin = {"X-API-Key": TEST_KEYS["admin"]}
        assert (
            two.post("/v1/ingest/air", json=[air(m) for m in range(20, 24)], headers=admin).status_code == 200
        )
        time.sleep(retry_after)
        again = two.post("/v1/ingest/air", json=[air(m) for m in range(8, 12)], headers=INTEGRATOR)
        assert again.status_code == 200, again.text
    assert count(settings, settings.raw_topic("air")) == 16  # the refused batch was not written


def test_duplicates_within_the_horizon_are_not_produced_twice(settings):
    short = settings.model_copy(update={"ingest_dedup_seconds": 3})
    with TestClient(create_app(short)) as client:
        first = client.post("/v1/ingest/transit", json=[tap("t1"), tap("t2"), tap("t3")], headers=INTEGRATOR)
        assert first.json()["accepted"] == 3
        # A retried batch with one new tap; the new tap twice in the same batch.
        batch = [tap("t1"), tap("t2"), tap("t4"), tap("t3"), tap("t4")]
        again = client.post("/v1/ingest/transit", json=batch, headers=INTEGRATOR).json()
        assert (again["accepted"], again["duplicates"], again["duplicateIndexes"]) == (1, 4, [0, 1, 3, 4])
        assert again["rejected"] == []
        # Readings without an eventId: sensor + event time (the same instant in another offset) is the key.
        assert client.post("/v1/ingest/air", json=[air(0)], headers=INTEGRATOR).json()["accepted"] == 1
        same = air(0, pm25=99, dateObserved="2026-01-15T01:00:00Z")
        assert client.post("/v1/ingest/air", json=[same], headers=INTEGRATOR).json()["duplicates"] == 1
        assert count(settings, settings.raw_topic("transit")) == 4
        assert count(settings, settings.raw_topic("air")) == 1
        time.sleep(3.5)  # past the horizon, the same id is new again
        late = client.post("/v1/ingest/transit", json=[tap("t1")], headers=INTEGRATOR).json()
        assert (late["accepted"], late["duplicates"]) == (1, 0)
    assert count(settings, settings.raw_topic("transit")) == 5
    ids = sorted(r["value"]["eventId"] for r in raw_records(settings, "transit", 5))
    assert ids == ["t1", "t1", "t2", "t3", "t4"]
    digest, _ = pseudonymise_card(
        "9704000099990000", settings.card_hmac_key.get_secret_value().encode(), "k1"
    )
    assert {r["value"]["cardIdHash"] for r in raw_records(settings, "transit", 5)} == {digest}


def test_ngsi_ld_notifications_normalized_and_key_values(settings, client):
    air_event = AirQualityObserved.model_validate(air(0, 77.0))
    water_event = WaterQualityObserved.model_validate(
        {
            "sensorId": "water-to-lich-cau-giay",
            "dateObserved": "2026-01-15T08:00:00+07:00",
            "pH": 7.2,
            "nh4N": 2.1,
        }
    )
    traffic_event = TrafficFlowObserved.model_validate(traffic(0))
    unknown_sensor = to_ngsi_ld(
        AirQualityObserved.model_validate(air(1, sensor="air-nowhere")), key_values=True
    )
    notification = {
        "id": "urn:ngsi-ld:Notification:1",
        "type": "Notification",
        "subscriptionId": "urn:ngsi-ld:Subscription:ioc",
        "notifiedAt": "2026-01-15T01:00:05Z",
        "data": [
            to_ngsi_ld(air_event),
            to_ngsi_ld(water_event, key_values=True),
            to_ngsi_ld(traffic_event),
            {
                "id": "urn:ngsi-ld:ParkingSpot:p1",
                "type": "ParkingSpot",
                "status": {"type": "Property", "value": "free"},
            },
            unknown_sensor,
        ],
    }
    response = client.post(
        "/v1/ngsi-ld/notify", json=notification, headers=INTEGRATOR | {"Content-Type": "application/ld+json"}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 3 and result["acceptedByFeed"] == {"air": 1, "water": 1, "traffic": 1}
    assert [(r["index"], r["field"]) for r in result["rejected"]] == [(3, "type"), (4, "sensorId")]
    [record] = raw_records(settings, "air", 1)
    assert record["key"] == "air-kim-lien" and record["value"]["pm25"] == 77.0
    [record] = raw_records(settings, "water", 1)
    assert WaterQualityObserved.model_validate(record["value"]).nh4_n == 2.1
    [record] = raw_records(settings, "traffic", 1)
    assert TrafficFlowObserved.model_validate(record["value"]).interval_seconds == 60
    letters = dlq_records(settings, 2)
    assert sorted(r["value"]["feed"] for r in letters) == ["air", "ngsi-ld"]
    assert {r["value"]["source"] for r in letters} == {f"http POST /v1/ngsi-ld/notify key={INTEGRATOR_ID}"}

    # The broker notifies the same state again: duplicates, nothing produced.
    again = client.post("/v1/ngsi-ld/notify", json=notification, headers=INTEGRATOR).json()
    assert (again["accepted"], again["duplicates"]) == (0, 3)
    assert count(settings, settings.raw_topic("air")) == 1

    for body in ({"type": "Subscription", "data": []}, {"type": "Notification", "data": {}}, []):
        response = client.post("/v1/ngsi-ld/notify", json=body, headers=INTEGRATOR)
        assert response.status_code == 400, response.text


def test_ingest_needs_an_integrator_or_admin_key(settings, client):
    assert client.post("/v1/ingest/air", json=[air(0)]).status_code == 401
    assert client.post("/v1/ingest/air", json=[air(0)], headers={"X-API-Key": "nope"}).status_code == 401
    operator = client.post("/v1/ngsi-ld/notify", json={}, headers={"X-API-Key": TEST_KEYS["operator"]})
    assert operator.status_code == 403 and "integrator" in operator.json()["detail"]
    admin = client.post("/v1/ingest/air", json=[air(0)], headers={"X-API-Key": TEST_KEYS["admin"]})
    assert admin.status_code == 200 and admin.json()["accepted"] == 1
    assert client.post("/v1/ingest/noise", json=[], headers=INTEGRATOR).status_code == 404


def test_openapi_documents_the_ingest_endpoints_with_examples(client):
    document = client.get("/openapi.json").json()
    paths = [f"/v1/ingest/{feed}" for feed in ("air", "traffic", "water", "transit")] + ["/v1/ngsi-ld/notify"]
    for path in paths:
        operation = document["paths"][path]["post"]
        assert operation["summary"] and "Status convention" in operation["description"]
        content = operation["requestBody"]["content"]
        assert content["application/json"]["example"] and content["application/json"]["schema"]
        for status in ("200", "400", "413", "422", "429", "503"):
            assert status in operation["responses"], (path, status)
        assert operation["responses"]["200"]["content"]["application/json"]["example"]["accepted"] == 1
        assert "Retry-After" in operation["responses"]["503"]["headers"]
    batch = document["paths"]["/v1/ingest/transit"]["post"]["requestBody"]["content"]
    assert batch["application/x-ndjson"]["example"].count("\n") == 1
    assert "cardId" in batch["application/json"]["schema"]["items"]["properties"]


def test_redis_unreachable_is_503_and_nothing_is_written(settings):
    from tests.conftest import free_port

    no_redis = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    with TestClient(create_app(no_redis)) as client:
        response = client.post("/v1/ingest/air", json=[air(0), air(1, -3)], headers=INTEGRATOR)
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) == settings.ingest_retry_after_seconds
    assert "Redis" in response.json()["detail"]
    with TestClient(create_app(settings)) as client:  # a working API: the reject creates the topics
        assert client.post("/v1/ingest/air", json=[], headers=INTEGRATOR).status_code == 200
        client.post("/v1/ingest/water", json=[{"sensorId": "x"}], headers=INTEGRATOR)
    assert count(settings, settings.raw_topic("air")) == 0
    assert count(settings, settings.dlq_topic) == 1  # only the second client's reject


def test_measures_must_be_json_numbers_not_text_nor_booleans(settings, client):
    batch = [air(0, "12.5"), air(1, 12.5, relativeHumidity=True), air(2, 12, relativeHumidity=70)]
    response = client.post("/v1/ingest/air", json=batch, headers=INTEGRATOR)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 1
    assert [(item["index"], item["field"]) for item in result["rejected"]] == [
        (0, "pm25"),
        (1, "relativeHumidity"),
    ]
    assert all("number" in item["reason"] for item in result["rejected"]), result["rejected"]
    [stored] = raw_records(settings, "air", 1)
    assert stored["value"]["pm25"] == 12 and stored["value"]["relativeHumidity"] == 70


# Event times at the calendar's ends: near year 1 or 9999 an offset cannot be moved to UTC (OverflowError).
EXTREME_TIMES = (
    "0001-01-01T00:00:00+07:00",
    "0001-01-01T00:00:00-07:00",
    "9999-12-31T23:59:59-07:00",
    "9999-12-31T23:59:59.999999+00:00",
    "1969-12-31T23:59:59+00:00",
)


def test_event_times_out_of_range_are_rejected_per_item_never_a_5xx(settings, client):
    batch = [air(0, dateObserved=moment) for moment in EXTREME_TIMES] + [air(1)]
    response = client.post("/v1/ingest/air", json=batch, headers=INTEGRATOR)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 1
    assert [(r["index"], r["field"]) for r in result["rejected"]] == [
        (i, "dateObserved") for i in range(len(EXTREME_TIMES))
    ]
    assert all("outside the range of event times" in r["reason"] for r in result["rejected"])

    # One per line, and as NGSI-LD entities: the same rejection.
    lines = "\n".join(json.dumps(air(2, dateObserved=moment)) for moment in EXTREME_TIMES)
    headers = INTEGRATOR | {"Content-Type": "application/x-ndjson"}
    response = client.post("/v1/ingest/air", content=lines.encode(), headers=headers)
    assert response.status_code == 422, response.text
    assert {r["field"] for r in response.json()["rejected"]} == {"dateObserved"}
    entities = []
    for moment in EXTREME_TIMES:
        entity = to_ngsi_ld(AirQualityObserved.model_validate(air(3)), key_values=True)
        entities.append(entity | {"dateObserved": moment})
    notification = {"id": "urn:ngsi-ld:Notification:x", "type": "Notification", "data": entities}
    response = client.post("/v1/ngsi-ld/notify", json=notification, headers=INTEGRATOR)
    assert response.status_code == 422, response.text
    assert all("outside the range" in r["reason"] for r in response.json()["rejected"])

    letters = dlq_records(settings, 3 * len(EXTREME_TIMES))
    assert {r["value"]["reason"] for r in letters} == {"invalid"}
    assert all(r["value"]["detail"].startswith("dateObserved: ") for r in letters)
    assert count(settings, settings.raw_topic("air")) == 1
