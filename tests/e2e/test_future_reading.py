"""Issue 22's scenario through the real API, broker, worker and Redis: one reading dated 2036 must not hide
real critical alerts.

Three air stations of one Kafka partition report six hours of hazardous PM2.5 through ``POST
/v1/ingest/air``: critical ``air.aqi_band`` and QCVN 05 24-hour PM2.5 alerts open. Then one of them
"reports" 2036-01-01: through the API it is rejected (422) with a reason naming both times and the
tolerance; straight into the raw topic (a producer that bypasses the edge) the worker dead-letters it as
``future``. Before the bound, the API took it (200), the station's real readings went to the DLQ as late,
its two neighbours were "silent for millions of intervals", and those device faults inhibited the real
critical alerts. Now: no late readings, nobody silent, the critical alerts open and shown.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connectors.kafka import EventProducer, create_topics
from connectors.redis_client import connect_sync
from ioc.city import load_city
from ioc.step import partition_of
from tests.conftest import TEST_KEYS, free_port
from tests.online_offline import settled
from tests.processes import IocProcess, read_topic, wait_for

pytestmark = pytest.mark.e2e

FAR = "2036-01-01T00:00:00+07:00"
CRITICAL_RULES = ("air.aqi_band", "air.qcvn05_pm25_24h")


def stations_of_one_partition(partitions: int) -> list[str]:
    """Three registry air stations whose readings share a Kafka partition (so one silence clock)."""
    by_partition: dict[int, list[str]] = {}
    for sensor in load_city("hanoi").sensors_of("air"):
        by_partition.setdefault(partition_of(sensor.id.encode(), partitions), []).append(sensor.id)
    return next(ids[:3] for ids in by_partition.values() if len(ids) >= 3)


def readings(stations: list[str], first: datetime, last: datetime) -> list[dict]:
    """A reading a minute per station, PM2.5 around 460 µg/m³ (VN_AQI in the 400s: hazardous), never
    stuck on one value."""
    out, at, n = [], first, 0
    while at <= last:
        for i, station in enumerate(stations):
            out.append(
                {"sensorId": station, "dateObserved": at.isoformat(), "pm25": 455.0 + (n * 7 + i) % 11}
            )
        at, n = at + timedelta(minutes=1), n + 1
    return out


def test_a_reading_from_the_future_neither_blinds_the_partition_nor_hides_critical_alerts(settings, tmp_path):
    create_topics(settings)
    victim, *neighbours = stations = stations_of_one_partition(settings.partitions)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    port = free_port()
    worker = IocProcess(["worker"], settings, tmp_path / "worker.log")
    api = IocProcess(["api", "--port", str(port)], settings, tmp_path / "api.log")
    store = connect_sync(settings, decode_responses=True)
    ingest = f"http://127.0.0.1:{port}/v1/ingest/air"
    integrator = {"X-API-Key": TEST_KEYS["integrator"]}

    def post(items: list[dict]) -> httpx.Response:
        return httpx.post(ingest, json=items, headers=integrator, timeout=30)

    def open_alerts() -> list[dict]:
        ids = store.zrange(settings.redis_key("alerts", "unresolved"), 0, -1)
        texts = [store.hget(settings.redis_key("alert", ident), "json") for ident in ids]
        return [json.loads(text) for text in texts if text]

    def critical_alerts_shown() -> dict[tuple[str, str], dict] | None:
        found = {
            (a["rule"], a["entity"]): a
            for a in open_alerts()
            if a["rule"] in CRITICAL_RULES and a["severity"] == "critical" and a["suppressedBy"] is None
        }
        return found if len(found) == len(CRITICAL_RULES) * len(stations) else None

    try:
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/docs", timeout=2).status_code == 200,
                 timeout=60, processes=[api])  # fmt: skip
        # Six hours of hazardous air at three stations of one partition, up to ten minutes ago.
        answer = post(readings(stations, now - timedelta(hours=6), now - timedelta(minutes=10)))
        assert answer.status_code == 200 and not answer.json()["rejected"], answer.text
        before = wait_for(critical_alerts_shown, timeout=120, processes=[worker, api])

        # The reading, through the API: refused, item by item, with its reason.
        answer = post([{"sensorId": victim, "dateObserved": FAR, "pm25": 12.0}])
        assert answer.status_code == 422, answer.text
        [rejected] = answer.json()["rejected"]
        assert rejected["field"] == "dateObserved"
        assert FAR in rejected["reason"] and "after it was received" in rejected["reason"]
        assert "300 s" in rejected["reason"] and "IOC_FUTURE_TOLERANCE_SECONDS" in rejected["reason"]

        # The same reading from a producer that bypasses the edge: the worker refuses it.
        bypass = {"sensorId": victim, "dateObserved": FAR, "pm25": 12.0}

        async def produce() -> None:
            async with EventProducer(settings) as producer:
                await producer.send_many([(settings.raw_topic("air"), victim, json.dumps(bypass).encode())])

        asyncio.run(produce())
        # The stations' real readings go on.
        answer = post(readings(stations, now - timedelta(minutes=9), now - timedelta(minutes=1)))
        assert answer.status_code == 200 and not answer.json()["rejected"], answer.text
        wait_for(lambda: settled(settings, ["air"]), timeout=120, processes=[worker, api])

        letters = [r["value"] for r in read_topic(settings, settings.dlq_topic, expect=2)]
        assert sorted((d["reason"], d["source"].split()[0]) for d in letters) == [
            ("future", "http"),  # the edge's
            ("future", settings.raw_topic("air")),  # the worker's
        ]
        assert all(d["key"] == victim and FAR in d["detail"] for d in letters)  # and nothing late

        faults = [a for a in open_alerts() if a["kind"] == "device_fault"]
        assert faults == []  # no station is "silent"
        after = critical_alerts_shown()
        assert after is not None and after.keys() == before.keys()
        assert {a["id"] for a in after.values()} == {a["id"] for a in before.values()}  # the same episodes
    finally:
        api.stop()
        worker.stop()
        store.close()
