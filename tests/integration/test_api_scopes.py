"""District-scoped operators against a real ``ioc api`` process, Kafka and Redis (issue 16, least privilege).

An operator key scoped to Hoàn Kiếm (``hk:operator@hoan-kiem:…``) is tried on every route that returns or
acts on city data, with the picture holding one of each thing in Hoàn Kiếm and one in Đống Đa: it sees
only Hoàn Kiếm's sensors, alerts, incidents, silences, audit entries, stream events and NGSI-LD
entities; what is Đống Đa's is a 404 by id (as an unknown id) and a 403 when it names the district
itself; it cannot acknowledge, resolve or silence outside its district; its KPIs are its district's rows only.
The unscoped operator key of the same run sees both districts (nothing changed for it). The role matrix
(``test_api_roles``) checks that the scoped key passes the role check of every operator route.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connectors.kafka import create_topics
from connectors.sinks.redis_picture import RedisPicture, connect
from ioc.alerts.audit import AuditAction, AuditEntry
from ioc.alerts.silence import Matchers, Silence
from ioc.api.examples import EXAMPLES
from ioc.models.alert import Alert, AlertChange, AlertEvent, Incident, IncidentChange, IncidentEvent
from ioc.windows import FieldStats, WindowAggregate
from tests.conftest import TEST_KEYS
from tests.integration.test_api_hardening import api_process
from tests.processes import sse_events as events

pytestmark = pytest.mark.integration

HK_KEY = "hoan-kiem-operator-key-31d9"
HK = {"X-API-Key": HK_KEY}
CITY = {"X-API-Key": TEST_KEYS["operator"]}
MINE, OTHER = "air-hoan-kiem", "air-kim-lien"  # Hoàn Kiếm's and Đống Đa's air stations
NOW = datetime.now(UTC).replace(microsecond=0)


def alert(alert_id: str, district: str, entity: str) -> Alert:
    return Alert.model_validate(EXAMPLES["open_alert"]).model_copy(
        update={"id": alert_id, "district": district, "entity": entity, "feed": "air", "rule": "air.aqi_band"}
    )


def alert_event(item: Alert, revision: int = 1) -> AlertEvent:
    change = AlertChange.opened if revision == 1 else AlertChange.updated
    return AlertEvent(change=change, revision=revision, at=item.last_seen, alert=item)


def incident(incident_id: str, district: str) -> IncidentEvent:
    item = Incident.model_validate(EXAMPLES["incident"]).model_copy(
        update={"id": incident_id, "district": district}
    )
    return IncidentEvent(change=IncidentChange.opened, revision=1, at=item.last_seen, incident=item)


def silence(silence_id: str, **matchers: str) -> Silence:
    return Silence(
        id=silence_id,
        matchers=Matchers(**matchers),
        starts_at=NOW - timedelta(minutes=5),
        ends_at=NOW + timedelta(hours=2),
        created_by="duty-admin",
        comment="known works",
    )


def aggregate(settings, sensor_id: str, minutes_ago: int) -> WindowAggregate:
    start = NOW - timedelta(minutes=minutes_ago)
    stats = FieldStats(count=1, mean=40.0, min=40.0, max=40.0, last=40.0, unit="µg/m³")
    return WindowAggregate(
        feed="air",
        sensor_id=sensor_id,
        window=settings.windows_of("air")[0].label,
        window_start=start,
        window_end=start + timedelta(minutes=1),
        count=1,
        last_event_time=start,
        fields={"pm25": stats},
    )


def write(settings, *records: object) -> None:
    """Store records in the picture as the worker does (each change onto the stream too)."""

    async def run() -> None:
        client = connect(settings)
        store = RedisPicture(settings, client)
        try:
            for record in records:
                if isinstance(record, AlertEvent):
                    assert await store.write_alert(record)
                elif isinstance(record, IncidentEvent):
                    assert await store.write_incident(record)
                elif isinstance(record, Silence):
                    await store.write_silence(record)
                elif isinstance(record, AuditEntry):
                    await store.write_audit(record)
                else:
                    assert await store.write_aggregate(record)  # type: ignore[arg-type]
        finally:
            await client.aclose()

    asyncio.run(run())


def about(event: dict) -> tuple[str, str]:
    """A stream event's kind and what it is about: the alert's id, the aggregate's sensor."""
    data = event["data"]
    return event["event"], data["alert"]["id"] if event["event"] == "alert" else data["sensorId"]


def first_events(http: httpx.Client, count: int, **request) -> list[dict]:
    with http.stream("GET", "/v1/stream", **request) as response:
        assert response.status_code == 200
        stream = events(response)
        return [next(stream) for _ in range(count)]


def test_a_district_scoped_operator_sees_and_acts_on_its_districts_only(settings, tmp_path):
    create_topics(settings, [settings.alert_commands_topic, settings.silences_topic])
    mine, other = alert("a-hk", "hoan-kiem", MINE), alert("a-dd", "dong-da", OTHER)
    audit = [
        AuditEntry(id=f"alert:{a.id}:acknowledged", action=AuditAction.acknowledged, by="alice", at=NOW,
                   alert_id=a.id, entity=a.entity, district=a.district)
        for a in (mine, other)
    ]  # fmt: skip
    silences = {
        "s-hk": silence("s-hk", rule="air.*", district="hoan-kiem"),
        "s-dd": silence("s-dd", district="dong-da"),
        "s-city": silence("s-city", rule="air.*"),  # every district's: seen, not ended, by the scoped key
    }
    write(
        settings,
        aggregate(settings, MINE, 2),
        aggregate(settings, OTHER, 2),
        alert_event(mine),
        alert_event(other),
        incident("i-hk", "hoan-kiem"),
        incident("i-dd", "dong-da"),
        *silences.values(),
        *audit,
    )
    keys = ",".join(f"{role}:{key}" for role, key in TEST_KEYS.items()) + f",hk:operator@hoan-kiem:{HK_KEY}"
    api, port = api_process(settings, tmp_path, api_keys=keys, command_wait_seconds=0)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:

            def get(path: str, headers=HK, **params):
                return http.get(path, headers=headers, params=params)

            # The live picture: Hoàn Kiếm's sensors, district and alerts; the city key sees both.
            picture = get("/v1/picture").json()
            assert [s["sensorId"] for s in picture["feeds"]["air"]["sensors"]] == [MINE]
            assert [d["id"] for d in picture["districts"]] == ["hoan-kiem"]
            assert picture["openAlerts"]["total"] == 1
            city = get("/v1/picture", CITY).json()
            assert {s["sensorId"] for s in city["feeds"]["air"]["sensors"]} == {MINE, OTHER}
            assert city["openAlerts"]["total"] == 2 and len(city["districts"]) > 1

            # Sensors.
            assert {s["district"] for s in get("/v1/sensors").json()["items"]} == {"hoan-kiem"}
            assert get("/v1/sensors", district="dong-da").status_code == 403
            assert get(f"/v1/sensors/{MINE}").status_code == 200
            assert get(f"/v1/sensors/{OTHER}").status_code == 404
            assert get(f"/v1/sensors/{OTHER}", CITY).status_code == 200

            # Alerts and the commands on them.
            assert [a["id"] for a in get("/v1/alerts").json()["items"]] == ["a-hk"]
            assert {a["id"] for a in get("/v1/alerts", CITY).json()["items"]} == {"a-hk", "a-dd"}
            refused = get("/v1/alerts", district="dong-da")
            assert refused.status_code == 403 and "dong-da" in refused.json()["detail"]
            assert get("/v1/alerts/a-hk").status_code == 200
            unknown = get("/v1/alerts/nope").json()
            hidden = get("/v1/alerts/a-dd")  # as an unknown id: its existence is not revealed
            assert hidden.status_code == 404
            assert hidden.json()["detail"] == unknown["detail"].replace("nope", "a-dd")
            for action in ("ack", "resolve"):
                assert http.post(f"/v1/alerts/a-dd/{action}", headers=HK).status_code == 404
            acked = http.post("/v1/alerts/a-hk/ack", headers=HK, json={"note": "on it"})
            assert acked.status_code == 202 and acked.json()["command"]["by"] == "hk", acked.text

            # Incidents.
            assert [i["id"] for i in get("/v1/incidents").json()["items"]] == ["i-hk"]
            assert {i["id"] for i in get("/v1/incidents", CITY).json()["items"]} == {"i-hk", "i-dd"}
            assert get("/v1/incidents", district="dong-da").status_code == 403

            # Silences: seen when they may mute its district's alerts; made and ended only within it.
            assert {s["id"] for s in get("/v1/silences").json()["items"]} == {"s-hk", "s-city"}
            assert {s["id"] for s in get("/v1/silences", CITY).json()["items"]} == set(silences)
            assert get("/v1/silences/s-hk").status_code == 200
            assert get("/v1/silences/s-dd").status_code == 404
            assert http.delete("/v1/silences/s-dd", headers=HK).status_code == 404
            assert http.delete("/v1/silences/s-city", headers=HK).status_code == 403
            new = {"duration": "PT1H", "comment": "works on Hàng Bài"}
            for matchers in (
                {"rule": "air.*"},
                {"district": "dong-da"},
                {"rule": "air.*", "district": "*-*"},
                {"entity": OTHER},
            ):
                made = http.post("/v1/silences", headers=HK, json=new | {"matchers": matchers})
                assert made.status_code == 403, (matchers, made.text)
            made = http.post("/v1/silences", headers=HK, json=new | {"matchers": {"district": "hoan-kiem"}})
            assert made.status_code == 201 and made.json()["createdBy"] == "hk", made.text

            # The audit trail: its district's alerts' entries.
            assert [e["alertId"] for e in get("/v1/audit").json()["items"]] == ["a-hk"]
            assert {e["alertId"] for e in get("/v1/audit", CITY).json()["items"]} == {"a-hk", "a-dd"}

            # History and KPIs: its districts only (the KPIs' rows: ``test_kpi_scope``).
            query = {"feed": "air", "measure": "pm25"}
            assert get("/v1/history", area="dong-da", **query).status_code == 403
            assert get("/v1/history", sensor=OTHER, measure="pm25").status_code == 404
            assert get("/v1/history/alerts", area="dong-da").status_code == 403
            assert get("/v1/history/incidents", area="dong-da").status_code == 403
            kpis = get("/v1/kpis", **{"from": "2026-12-01", "to": "2026-12-01"})
            assert kpis.status_code == 200, kpis.text
            assert kpis.json()["districts"] == ["hoan-kiem"]
            assert {a["scope"] for a in kpis.json()["air"]} == {"hoan-kiem", MINE, "air-hang-dau"}
            city_kpis = get("/v1/kpis", CITY, **{"from": "2026-12-01", "to": "2026-12-01"}).json()
            assert "districts" not in city_kpis and {"city", OTHER} <= {a["scope"] for a in city_kpis["air"]}

            # NGSI-LD: its district's entities; another's is unknown.
            entities = get("/ngsi-ld/v1/entities", type="AirQualityObserved").json()
            assert [e["id"] for e in entities] == [f"urn:ngsi-ld:AirQualityObserved:{MINE}"]
            assert get(f"/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:{OTHER}").status_code == 404
            assert (
                get(f"/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:{OTHER}").status_code
                == 404
            )
            city_entities = get("/ngsi-ld/v1/entities", CITY, type="AirQualityObserved").json()
            assert len(city_entities) == 2

            # The live stream: a snapshot of its district, then only its district's changes.
            [snapshot] = first_events(http, 1, headers=HK)
            assert [a["id"] for a in snapshot["data"]["alerts"]] == ["a-hk"]
            assert [i["id"] for i in snapshot["data"]["incidents"]] == ["i-hk"]
            write(
                settings,
                alert_event(other, 2),
                aggregate(settings, OTHER, 1),
                alert_event(mine, 2),
                aggregate(settings, MINE, 1),
            )
            after = {"Last-Event-ID": snapshot["id"]}
            scoped = first_events(http, 2, headers=HK | after)
            assert [about(e) for e in scoped] == [("alert", "a-hk"), ("aggregate", MINE)]
            everything = first_events(http, 4, headers=CITY | after)
            assert [about(e) for e in everything] == [
                ("alert", "a-dd"),
                ("aggregate", OTHER),
                ("alert", "a-hk"),
                ("aggregate", MINE),
            ]
    finally:
        assert api.stop() in (0, -15)
