"""The stages after the detectors, through the real broker, worker and Redis: anomalies become alerts, a
silence mutes the matching ones at once and lets them go when it ends, the alerts of one district in one
half hour become one incident across feeds, and dead letters are counted per feed and reason.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import pytest

from connectors.kafka import EventProducer, create_topics
from connectors.redis_client import connect_sync
from ioc.alerts.silence import Matchers, Silence
from ioc.feeds.air.model import AirQualityObserved
from ioc.models.anomaly import Anomaly, RuleKind, Severity, alert_id
from tests.processes import IocProcess, read_topic, wait_for

pytestmark = pytest.mark.e2e

T0 = datetime.fromisoformat("2026-11-23T08:00:00+07:00")
DISTRICT = "dong-da"
TRAFFIC, AIR = "traffic-nga-tu-so", "air-kim-lien"


def anomaly(
    rule: str,
    entity: str,
    feed: str,
    minutes: float,
    *,
    firing: bool = True,
    value: float | None = None,
    severity: Severity = Severity.warning,
) -> Anomaly:
    return Anomaly(
        rule=rule,
        rule_version="test",
        kind=RuleKind.standard if rule == "air.aqi_band" else RuleKind.statistical,
        feed=feed,
        entity=entity,
        district=DISTRICT,
        firing=firing,
        episode_start=T0 + timedelta(minutes=10 if feed == "air" else 0),
        observed_at=T0 + timedelta(minutes=minutes),
        window="1h" if feed == "air" else "5m",
        metric="vn_aqi" if feed == "air" else "speed_score",
        value=value if value is not None else 172.0 if feed == "air" else 0.93,
        unit="" if feed == "air" else "1",
        threshold=150.0 if feed == "air" else 0.7,
        severity=severity,
    )


def air_reading(minutes: float, pm25: float) -> bytes:
    return AirQualityObserved(
        sensor_id=AIR, date_observed=T0 + timedelta(minutes=minutes), pm25=pm25
    ).to_json()


async def send(settings, records: list[tuple[str, str, bytes]]) -> None:
    async with EventProducer(settings) as producer:
        await producer.send_many(records)


async def broadcast(settings, silence: Silence) -> int:
    async with EventProducer(settings) as producer:
        return await producer.broadcast(settings.silences_topic, silence.id, silence.to_json())


def test_silences_incidents_and_dead_letter_counts(settings, tmp_path):
    create_topics(settings)
    store = connect_sync(settings, decode_responses=True)

    def stored(kind: str, ident: str) -> dict | None:
        text = store.hget(settings.redis_key(kind, ident), "json")
        return json.loads(text) if text else None

    def anomalies(*items: Anomaly) -> None:
        asyncio.run(send(settings, [(settings.anomalies_topic, a.entity, a.to_json()) for a in items]))

    traffic_id = alert_id("traffic.incident", TRAFFIC, T0)
    air_id = alert_id("air.aqi_band", AIR, T0 + timedelta(minutes=10))
    worker = IocProcess(["worker"], settings, tmp_path / "worker.log")
    try:
        # A traffic incident, and ten minutes later bad air in the same district: two alerts, one incident.
        anomalies(
            anomaly("traffic.incident", TRAFFIC, "traffic", 5),
            anomaly("air.aqi_band", AIR, "air", 60),
        )

        def one_incident_with(*alert_ids: str) -> dict | None:
            ids = store.zrange(settings.redis_key("incidents", "unresolved"), 0, -1)
            if len(ids) != 1:
                return None
            incident = stored("incident", ids[0])["incident"]
            return incident if {m["alertId"] for m in incident["members"]} == set(alert_ids) else None

        incident = wait_for(lambda: one_incident_with(traffic_id, air_id), timeout=90, processes=[worker])
        assert incident["district"] == DISTRICT and incident["feeds"] == ["traffic", "air"]  # by first member
        assert incident["startedAt"] == T0.isoformat()
        assert "Đống Đa" in incident["title"]["vi"]
        assert stored("alert", air_id)["suppressedBy"] is None
        assert stored("alert", air_id)["title"]["en"] == "Bad air quality at Kim Liên (Đống Đa)"

        # The same episode reaches VN_AQI 498: the alert (same id) and its incident member name the band
        # reached, Hazardous, not the rule's threshold band.
        anomalies(anomaly("air.aqi_band", AIR, "air", 70, value=498.0, severity=Severity.critical))
        hazardous = "Hazardous air quality at Kim Liên (Đống Đa)"
        wait_for(lambda: stored("alert", air_id)["title"]["en"] == hazardous, timeout=60, processes=[worker])
        assert (
            stored("alert", air_id)["title"]["vi"] == "Chất lượng không khí Nguy hại tại Kim Liên (Đống Đa)"
        )

        def member_title() -> str | None:
            incident = one_incident_with(traffic_id, air_id)
            members = incident["members"] if incident else []
            return next((m["title"]["en"] for m in members if m["alertId"] == air_id), None)

        wait_for(lambda: member_title() == hazardous, timeout=60, processes=[worker])

        # An operator silences bad air in the district for two hours: the open alert is muted now, with no
        # new anomaly needed, and a muted alert leaves the incident.
        silence = Silence(
            id="s-1",
            matchers=Matchers(rule="air.*", district=DISTRICT),
            starts_at=T0,
            ends_at=T0 + timedelta(hours=2),
            created_by="operator-1",
            comment="known construction dust, crew on site",
        )
        assert asyncio.run(broadcast(settings, silence)) == settings.partitions
        wait_for(lambda: (stored("alert", air_id)["suppressedBy"] or {}).get("silence") == "s-1",
                 timeout=60, processes=[worker])  # fmt: skip
        wait_for(lambda: one_incident_with(traffic_id), timeout=60, processes=[worker])
        assert stored("alert", traffic_id)["suppressedBy"] is None  # the matchers did not match it

        # Event time passes the silence's end: the alert is shown again and rejoins the incident.
        anomalies(anomaly("air.aqi_band", AIR, "air", 150))
        wait_for(lambda: stored("alert", air_id)["suppressedBy"] is None, timeout=60, processes=[worker])
        wait_for(lambda: one_incident_with(traffic_id, air_id), timeout=60, processes=[worker])

        # Both clear: the alerts and the incident resolve.
        anomalies(
            anomaly("traffic.incident", TRAFFIC, "traffic", 160, firing=False),
            anomaly("air.aqi_band", AIR, "air", 170, firing=False),
        )
        wait_for(lambda: not store.zrange(settings.redis_key("incidents", "unresolved"), 0, -1),
                 timeout=60, processes=[worker])  # fmt: skip
        assert stored("alert", traffic_id)["status"] == stored("alert", air_id)["status"] == "resolved"
        assert store.zcard(settings.redis_key("incidents")) == 1

        # Dead letters are counted per feed and reason: one invalid reading, then one too late for every
        # window (the 1-hour window of 08:00 closed once 09:10 was seen, with the 5-minute lateness).
        invalid = b'{"sensorId": "air-kim-lien", "dateObserved": "2026-11-23T08:00:00+07:00", "pm25": -5}'
        readings = [invalid, air_reading(70, 30.0), air_reading(1, 31.0)]
        asyncio.run(send(settings, [(settings.raw_topic("air"), AIR, value) for value in readings]))
        counts_key = settings.redis_key("metrics", "dead-letters")
        wait_for(lambda: store.hgetall(counts_key) == {"air:invalid": "1", "air:late": "1"},
                 timeout=60, processes=[worker])  # fmt: skip
    finally:
        worker.stop()
        store.close()


def test_records_that_do_not_parse_are_dead_letters_and_every_stage_goes_on(settings, tmp_path):
    """A record on the manager's, the incidents' or the picture's topics that is not what the topic holds
    (written by hand, or by another version): dead-lettered by each stage that reads it, never a crash."""
    create_topics(settings)
    store = connect_sync(settings, decode_responses=True)
    unreadable = [
        (settings.anomalies_topic, AIR, b'{"rule": 1}'),
        (settings.alert_commands_topic, AIR, b"not json"),
        (settings.silences_topic, "s-bad", b'{"id": "s-bad"}'),  # read by the manager and the picture
        (settings.alerts_topic, "a-bad", b"{}"),
        (settings.alerts_by_district_topic, DISTRICT, b"[]"),
        (settings.incidents_topic, "i-bad", b'{"incident": null}'),
    ]
    worker = IocProcess(["worker"], settings, tmp_path / "worker.log")
    try:
        asyncio.run(send(settings, unreadable))
        counts_key = settings.redis_key("metrics", "dead-letters")
        expected = {
            "anomalies:invalid": "1",
            "alert-commands:invalid": "1",
            "silences:invalid": "2",
            "alerts:invalid": "2",  # the picture's alerts topic, the incidents' by-district copy
            "incidents:invalid": "1",
        }
        wait_for(lambda: store.hgetall(counts_key) == expected, timeout=90, processes=[worker])
        letters = read_topic(settings, settings.dlq_topic, expect=7)
        assert {(d["value"]["source"], d["value"]["payload"]) for d in letters} == {
            (topic, value.decode()) for topic, _, value in unreadable
        }
        assert all(d["value"]["reason"] == "invalid" and d["value"]["detail"] for d in letters)

        # The stages carry on: an anomaly after them is an alert and an incident.
        air = anomaly("air.aqi_band", AIR, "air", 60)
        asyncio.run(send(settings, [(settings.anomalies_topic, AIR, air.to_json())]))
        opened = alert_id("air.aqi_band", AIR, air.episode_start)
        wait_for(
            lambda: store.hget(settings.redis_key("alert", opened), "json"), timeout=60, processes=[worker]
        )
        wait_for(lambda: store.zcard(settings.redis_key("incidents", "unresolved")) == 1,
                 timeout=60, processes=[worker])  # fmt: skip
    finally:
        worker.stop()
        store.close()
