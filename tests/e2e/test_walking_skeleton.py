"""Air readings into the real broker → Faust worker → Redis → the real API process."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
import pytest

from connectors.kafka import EventProducer, create_topics
from ioc.feeds.air.model import AirQualityObserved
from tests.conftest import TEST_KEYS, free_port
from tests.processes import IocProcess, read_topic, wait_for

pytestmark = pytest.mark.e2e

T0 = datetime.fromisoformat("2026-01-15T08:00:00+07:00")


def reading(sensor: str, seconds: float, **values: float) -> AirQualityObserved:
    return AirQualityObserved(sensor_id=sensor, date_observed=T0 + timedelta(seconds=seconds), **values)


async def produce(settings, records: list[tuple[str, bytes]]) -> None:
    async with EventProducer(settings) as producer:
        await producer.send_many((settings.raw_topic("air"), key, value) for key, value in records)


def test_readings_reach_the_picture_through_kafka_faust_and_redis(settings, tmp_path):
    settings = settings.model_copy(update={"allowed_lateness_seconds": 60})
    create_topics(settings)
    port = free_port()
    worker = IocProcess(["worker"], settings, tmp_path / "worker.log", allowed_lateness_seconds=60)
    api = IocProcess(["api", "--port", str(port)], settings, tmp_path / "api.log")
    try:
        good = [
            reading("air-kim-lien", 10, pm25=10.0, no2=30.0),
            reading("air-kim-lien", 30, pm25=60.0),
            reading("air-kim-lien", 20, pm25=20.0),
            reading("air-hoan-kiem", 5, pm25=42.0),
        ]
        records = [(r.sensor_id, r.to_json()) for r in good]
        records.append(
            (
                "air-kim-lien",
                b'{"sensorId": "air-kim-lien", "dateObserved": "2026-01-15T08:00:40+07:00", "pm25": -5}',
            )
        )
        records.append(("air-nowhere", reading("air-nowhere", 15, pm25=12.0).to_json()))
        asyncio.run(produce(settings, records))

        url = f"http://127.0.0.1:{port}/v1/picture"
        headers = {"X-API-Key": TEST_KEYS["operator"]}

        def kim_lien_complete():
            body = httpx.get(url, headers=headers, timeout=5).json()
            sensors = {s["sensorId"]: s for s in body["feeds"]["air"]["sensors"]}
            return body if sensors.get("air-kim-lien", {}).get("count") == 3 and len(sensors) == 2 else None

        body = wait_for(kim_lien_complete, timeout=120, processes=[worker, api])
        sensors = {s["sensorId"]: s for s in body["feeds"]["air"]["sensors"]}
        kim_lien = sensors["air-kim-lien"]
        assert kim_lien["name"] == "Kim Liên" and kim_lien["districtName"] == "Đống Đa"
        assert kim_lien["windowStart"] == "2026-01-15T08:00:00+07:00"
        assert kim_lien["windowEnd"] == "2026-01-15T08:01:00+07:00"
        assert kim_lien["lastEventTime"] == "2026-01-15T08:00:30+07:00"
        assert kim_lien["values"]["pm25"] == {
            "count": 3,
            "mean": 30.0,
            "min": 10.0,
            "max": 60.0,
            "last": 60.0,
            "unit": "µg/m³",
        }
        assert kim_lien["values"]["no2"]["mean"] == 30.0
        assert sensors["air-hoan-kiem"]["values"]["pm25"]["mean"] == 42.0

        # The invalid reading and the unregistered sensor went to the DLQ with reasons naming the field.
        rejected = {r["key"]: r["value"] for r in read_topic(settings, settings.dlq_topic, expect=2)}
        assert rejected["air-kim-lien"]["reason"] == "invalid"
        assert rejected["air-kim-lien"]["detail"].startswith("pm25=-5")
        assert rejected["air-nowhere"]["reason"] == "invalid"
        assert "not in the Hanoi registry" in rejected["air-nowhere"]["detail"]

        # A newer window replaces the old one in the picture; then an event for the closed
        # 08:00 window (watermark 08:03:00 > 08:01:00 + 60 s lateness) is late: DLQ, not counted.
        asyncio.run(produce(settings, [("air-kim-lien", reading("air-kim-lien", 180, pm25=5.0).to_json())]))
        wait_for(
            lambda: [
                s
                for s in httpx.get(url, headers=headers, timeout=5).json()["feeds"]["air"]["sensors"]
                if s["sensorId"] == "air-kim-lien" and s["windowStart"] == "2026-01-15T08:03:00+07:00"
            ],
            timeout=60,
            processes=[worker, api],
        )
        asyncio.run(produce(settings, [("air-kim-lien", reading("air-kim-lien", 50, pm25=999.0).to_json())]))
        letters = [
            r for r in read_topic(settings, settings.dlq_topic, expect=3) if r["key"] == "air-kim-lien"
        ]
        assert [letter["value"]["reason"] for letter in letters] == ["invalid", "late"]
        aggregates = read_topic(settings, settings.agg_topic("air"), expect=5)
        assert all(a["value"]["fields"]["pm25"]["max"] < 999 for a in aggregates)
    finally:
        assert api.stop() in (0, -15)
        worker.stop()
