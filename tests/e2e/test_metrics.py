"""GET /metrics end to end: events of every feed (some invalid, one late) and two anomalies through the real
broker, worker and Redis, scraped from a real API process; and a scrape while Kafka does not answer."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from connectors.kafka import EventProducer, create_topics
from connectors.redis_client import connect_sync
from ioc.api import create_app
from ioc.feeds import FEEDS
from ioc.feeds.air.model import AirQualityObserved
from ioc.feeds.crowd.model import CrowdFlowObserved
from ioc.feeds.traffic.model import TrafficFlowObserved
from ioc.feeds.transit.model import FareTap
from ioc.feeds.water.model import WaterQualityObserved
from ioc.infra.process import ensure_debian_package
from ioc.models.anomaly import Anomaly, RuleKind, Severity
from tests.conftest import TEST_KEYS, free_port
from tests.processes import IocProcess, wait_for

pytestmark = pytest.mark.e2e

SENSORS = {
    "air": "air-kim-lien",
    "traffic": "traffic-kim-ma",
    "water": "water-ho-tay",
    "transit": "metro-2a-cat-linh",
    "crowd": "crowd-van-mieu",
}
VALID = {"air": 6, "traffic": 4, "water": 3, "transit": 5, "crowd": 2}


def valid_event(feed: str, i: int, now: datetime) -> bytes:
    """The i-th valid event of the feed, a few seconds old: live data, so the latency means something."""
    at = now - timedelta(seconds=2 * (VALID[feed] - i))
    sensor = SENSORS[feed]
    if feed == "air":
        return AirQualityObserved(sensor_id=sensor, date_observed=at, pm25=20.0 + i).to_json()
    if feed == "traffic":
        return TrafficFlowObserved(
            sensor_id=sensor, date_observed=at, interval_seconds=60, intensity=40, average_vehicle_speed=32.0
        ).to_json()
    if feed == "water":
        return WaterQualityObserved(
            sensor_id=sensor, date_observed=at, dissolved_oxygen=6.5, ph=7.2
        ).to_json()
    if feed == "crowd":
        return CrowdFlowObserved(sensor_id=sensor, date_observed=at, people_count=3_000 + i).to_json()
    return FareTap.model_validate(
        {
            "sensorId": sensor,
            "dateObserved": at.isoformat(),
            "eventId": f"tap-{i}",
            "cardIdHash": f"{i:02x}" * 32,
            "cardKeyId": "k1",
            "cardType": "student",
            "mode": "metro",
            "line": "2A",
            "deviceId": "cat-linh-g03",
            "direction": "EXIT",
            "fare": 12_000,
        }
    ).to_json()


def anomaly(rule: str, entity: str, feed: str, severity: Severity, now: datetime) -> Anomaly:
    return Anomaly(
        rule=rule,
        rule_version="test",
        kind=RuleKind.standard if feed == "air" else RuleKind.statistical,
        feed=feed,
        entity=entity,
        district="dong-da",
        firing=True,
        episode_start=now - timedelta(minutes=20),
        observed_at=now - timedelta(minutes=10),
        window="1h" if feed == "air" else "5m",
        metric="vn_aqi" if feed == "air" else "speed_score",
        value=172.0 if feed == "air" else 0.93,
        unit="" if feed == "air" else "1",
        threshold=150.0 if feed == "air" else 0.7,
        severity=severity,
    )


async def send(settings, records: list[tuple[str, str, bytes]]) -> None:
    async with EventProducer(settings) as producer:
        await producer.send_many(records)


def parse(text: str) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label pairs: value}}."""
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def by(samples: dict[tuple, float], *names: str) -> dict:
    """{label value (or tuple of them, in ``names`` order): value}."""
    return {
        (dict(labels)[names[0]] if len(names) == 1 else tuple(dict(labels)[n] for n in names)): value
        for labels, value in samples.items()
    }


def test_metrics_count_events_dead_letters_lag_latency_and_open_alerts(settings, tmp_path):
    # Taken here, not at import: in a whole-suite run the module is imported long before this test runs.
    now = datetime.now(UTC).replace(microsecond=0)
    create_topics(settings)
    records: list[tuple[str, str, bytes]] = []
    for feed in FEEDS:
        records += [
            (settings.raw_topic(feed), SENSORS[feed], valid_event(feed, i, now)) for i in range(VALID[feed])
        ]
    # Two invalid events (a negative concentration, not JSON) and one too late for every window: the air
    # sensor already reported now, and the hour window of three hours ago closed long since.
    negative = f'{{"sensorId": "{SENSORS["air"]}", "dateObserved": "{now.isoformat()}", "pm25": -5}}'
    records.append((settings.raw_topic("air"), SENSORS["air"], negative.encode()))
    records.append((settings.raw_topic("traffic"), SENSORS["traffic"], b"not json"))
    late = AirQualityObserved(sensor_id=SENSORS["air"], date_observed=now - timedelta(hours=3), pm25=9.0)
    records.append((settings.raw_topic("air"), SENSORS["air"], late.to_json()))
    # Two backfilled readings of 2016 (a sensor's buffer sent years late): stored in the picture, but
    # not live, so not in the latency histogram (they made its sum ~1e9 s).
    backfill = "unregistered:backfill-2016"
    for minute in (0, 1):
        old = AirQualityObserved(
            sensor_id=backfill, date_observed=datetime(2016, 3, 1, 8, minute, tzinfo=UTC), pm25=30.0
        )
        records.append((settings.raw_topic("air"), backfill, old.to_json()))
    produced = Counter(topic.split(".")[1] for topic, _, _ in records)
    assert produced == {"air": 10, "traffic": 5, "water": 3, "transit": 5, "crowd": 2}

    anomalies = [
        anomaly("air.aqi_band", "air-kim-lien", "air", Severity.critical, now),
        anomaly("traffic.incident", "traffic-nga-tu-so", "traffic", Severity.warning, now),
    ]
    records += [(settings.anomalies_topic, a.entity, a.to_json()) for a in anomalies]
    asyncio.run(send(settings, records))

    port = free_port()
    worker = IocProcess(["worker"], settings, tmp_path / "worker.log")
    api = IocProcess(["api", "--port", str(port)], settings, tmp_path / "api.log")
    processes = [worker, api]
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    store = connect_sync(settings, decode_responses=True)
    scrape_seconds: list[float] = []

    def scrape() -> dict[str, dict[tuple, float]]:
        began = time.perf_counter()
        response = http.get("/metrics")  # no API key: scrapers have none
        scrape_seconds.append(time.perf_counter() - began)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain; version=")
        return parse(response.text)

    def open_alerts_listed() -> Counter[tuple[str, str]]:
        response = http.get(
            "/v1/alerts",
            params={"status": ["open", "acknowledged"], "limit": 500},
            headers={"X-API-Key": TEST_KEYS["operator"]},
        )
        assert response.status_code == 200, response.text
        assert response.json()["nextCursor"] is None
        return Counter((a["severity"], a["feed"]) for a in response.json()["items"])

    def aggregates_in_stream(sensor: str | None = None) -> Counter[str]:
        """Stored aggregates per feed: of ``sensor`` only, or of every sensor but the backfilled one."""
        entries = store.xrange(settings.redis_key("stream"))
        deltas = [json.loads(f["data"]) for _, f in entries if f["type"] == "aggregate"]
        return Counter(
            d["feed"] for d in deltas if (d["sensorId"] == sensor if sensor else d["sensorId"] != backfill)
        )

    try:
        # The worker caught up: every dead letter counted, the raw topics' lag committed down to 0.
        def caught_up() -> dict | None:
            m = scrape()
            dead = by(m.get("ioc_dead_letters_total", {}), "feed", "reason")
            lag = by(m.get("ioc_consumer_lag", {}), "stage", "topic")
            pipeline = {topic: v for (stage, topic), v in lag.items() if stage == "pipeline"}
            done = len(dead) == 3 and len(pipeline) == len(FEEDS) and not any(pipeline.values())
            return m if done else None

        m = wait_for(caught_up, timeout=150, every=1, processes=processes)
        assert m["ioc_scrape_kafka_up"][()] == 1
        assert m["ioc_scrape_redis_up"][()] == 1

        # Events in: every record written to each raw topic, valid or not.
        assert by(m["ioc_events_in_total"], "feed") == dict(produced)
        # Dead letters per feed and reason, exactly; the late ones again under their own name.
        assert by(m["ioc_dead_letters_total"], "feed", "reason") == {
            ("air", "invalid"): 1,
            ("traffic", "invalid"): 1,
            ("air", "late"): 1,
        }
        assert by(m["ioc_late_events_total"], "feed") == {"air": 1} | {f: 0 for f in FEEDS if f != "air"}
        # The lag is per stage and topic: every topic the worker reads is there.
        stages = {stage for stage, _ in by(m["ioc_consumer_lag"], "stage", "topic")}
        assert stages == {"pipeline", "neighbourhood", "alerts", "incidents", "picture", "dead-letters"}

        # Latency: one observation per live aggregate the picture stored — as many as the stream of
        # changes reported (both are written only for a stored aggregate) but the backfilled sensor's —
        # all live, well within five minutes.
        def histogram_matches_stream() -> dict | None:
            m = scrape()
            counts = by(m["ioc_event_to_picture_seconds_count"], "feed")
            stored = aggregates_in_stream()
            backfilled = aggregates_in_stream(backfill)
            complete = set(stored) == set(FEEDS) and backfilled["air"] >= 1
            return m if complete and counts == {f: stored[f] for f in FEEDS} else None

        m = wait_for(histogram_matches_stream, timeout=60, every=1, processes=processes)
        counts = by(m["ioc_event_to_picture_seconds_count"], "feed")
        buckets = by(m["ioc_event_to_picture_seconds_bucket"], "feed", "le")
        sums = by(m["ioc_event_to_picture_seconds_sum"], "feed")
        for feed in FEEDS:
            assert counts[feed] >= 1
            assert buckets[(feed, "+Inf")] == counts[feed]
            assert buckets[(feed, "300.0")] == counts[feed], f"{feed}: latency over 5 minutes for live data"
            assert 0 < sums[feed] < 300 * counts[feed]
            ladder = [buckets[(feed, le)] for le in ("0.25", "0.5", "1.0", "2.0", "5.0", "10.0", "30.0")]
            assert ladder == sorted(ladder)

        # Open alerts: the same breakdown the operators' API lists, with the two anomalies' alerts in it.
        def alerts_agree() -> tuple | None:
            listed = open_alerts_listed()
            m = scrape()
            shown = {key: v for key, v in by(m["ioc_open_alerts"], "severity", "feed").items() if v}
            incidents = http.get("/v1/incidents", headers={"X-API-Key": TEST_KEYS["operator"]}).json()
            wanted = listed[("critical", "air")] >= 1 and listed[("warning", "traffic")] >= 1
            same = shown == dict(listed) and m["ioc_open_incidents"][()] == len(incidents["items"])
            return (shown, m) if wanted and same else None

        shown, m = wait_for(alerts_agree, timeout=90, every=1, processes=processes)
        assert m["ioc_open_incidents"][()] >= 1  # the two alerts of Đống Đa
        assert len(by(m["ioc_open_alerts"], "severity", "feed")) == 3 * len(FEEDS)  # zeros included

        # Prometheus's own checker (promtool, Debian's prometheus) finds nothing to say about a full scrape.
        promtool = ensure_debian_package("promtool", "prometheus", "run this test on a machine that has it")
        scraped = http.get("/metrics").text
        checked = subprocess.run(
            [promtool, "check", "metrics"], input=scraped, capture_output=True, text=True, timeout=60
        )
        assert checked.returncode == 0 and not (checked.stdout + checked.stderr).strip(), checked

        print(f"\nscrape seconds: {sorted(round(s, 3) for s in scrape_seconds)}")
        print(f"last ioc_scrape_duration_seconds: {m['ioc_scrape_duration_seconds'][()]:.3f}")
        assert max(scrape_seconds[1:]) < 2, scrape_seconds
    finally:
        http.close()
        store.close()
        for process in processes:
            process.stop()


def test_a_scrape_while_kafka_does_not_answer_shows_redis_and_says_kafka_is_down(settings):
    # Every scrape reads afresh (no cache): the second must try Kafka again with new clients.
    dead_kafka = settings.model_copy(
        update={"kafka_bootstrap": f"127.0.0.1:{free_port()}", "metrics_max_age_seconds": 0}
    )
    store = connect_sync(settings, decode_responses=True)
    store.hset(settings.redis_key("metrics", "dead-letters"), mapping={"water:invalid": 4})
    try:
        with TestClient(create_app(dead_kafka)) as client:
            for _ in range(2):  # and again: a failed client was dropped, a new one tries
                began = time.perf_counter()
                response = client.get("/metrics")
                elapsed = time.perf_counter() - began
                assert response.status_code == 200 and elapsed < 5, elapsed
                m = parse(response.text)
                assert m["ioc_scrape_kafka_up"][()] == 0 and m["ioc_scrape_redis_up"][()] == 1
                assert "ioc_events_in_total" not in m and "ioc_consumer_lag" not in m
                assert by(m["ioc_dead_letters_total"], "feed", "reason") == {("water", "invalid"): 4}
    finally:
        store.close()
