"""The live picture end to end: simulated readings of every feed into the real broker → the worker's
windows and detectors → Redis → ``GET /v1/picture`` and ``GET /v1/sensors``, with each sensor's index as
the offline detector computes it; then Redis loses everything and ``ioc picture rebuild`` puts the same
picture back from Kafka, publishing nothing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
import pytest

from connectors.kafka import EventProducer, create_topics, pipeline_topics
from connectors.sources.simulator import city_simulator
from ioc.alerts.rules import load_rules
from ioc.city import load_city
from ioc.detectors.sensor import SensorDetector, new_sensor_state
from ioc.models import Event
from tests.conftest import TEST_KEYS, free_port
from tests.processes import IocProcess, empty_redis, topic_ends, wait_for

pytestmark = pytest.mark.e2e

START = datetime.fromisoformat("2026-07-06T06:00:00+07:00")
SENSORS = {"air-kim-lien", "water-ho-truc-bach", "traffic-kim-lien", "metro-2a-lang"}


def readings() -> list[Event]:
    """Two hours and ten minutes of four sensors, one per feed (the VN_AQI needs two hours)."""
    city = load_city("hanoi")
    source = city_simulator(
        city, ["air", "water", "traffic", "transit"], start=START, duration=timedelta(hours=2, minutes=10),
        seed=5, card_key=b"test-key", card_key_id="k1",
    )  # fmt: skip
    return [event for event in source.events() if event.sensor_id in SENSORS]


def offline_indices(events: list[Event]) -> dict[str, dict]:
    """Each sensor's index after its last reading, by the same detector code the worker runs."""
    detector = SensorDetector(load_rules("hanoi"), load_city("hanoi"))
    states: dict[str, dict] = {}
    for event in events:
        detector.observe(states.setdefault(event.sensor_id, new_sensor_state()), event)
    return {sensor: state["indices"] for sensor, state in states.items()}


async def produce(settings, events: list[Event]) -> None:
    async with EventProducer(settings) as producer:
        await producer.send_many(
            (settings.raw_topic(type(event).feed), event.sensor_id, event.to_json()) for event in events
        )


def test_the_picture_shows_every_feeds_index_and_is_rebuilt_from_kafka(settings, tmp_path):
    events = readings()
    assert {type(event).feed for event in events} == {"air", "water", "traffic", "transit"}
    expected = offline_indices(events)
    create_topics(settings)
    port = free_port()
    worker = IocProcess(["worker"], settings, tmp_path / "worker.log")
    api = IocProcess(["api", "--port", str(port)], settings, tmp_path / "api.log")
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": TEST_KEYS["operator"]})
    processes = [worker, api]
    try:
        asyncio.run(produce(settings, events))
        last_time = {event.sensor_id: event.event_time for event in events}

        def picture() -> dict | None:
            try:
                body = http.get("/v1/picture", timeout=5).json()
            except httpx.HTTPError:
                return None
            sensors = {s["sensorId"]: s for feed in body["feeds"].values() for s in feed["sensors"]}
            done = sensors.keys() == SENSORS and all(
                datetime.fromisoformat(sensors[s]["lastEventTime"]) == last_time[s] for s in SENSORS
            )
            return body if done else None

        body = wait_for(picture, timeout=180, processes=processes)
        shown = {s["sensorId"]: s["indices"] for feed in body["feeds"].values() for s in feed["sensors"]}
        for sensor in SENSORS:
            assert {name: {"value": i["value"], "band": i["band"]} for name, i in shown[sensor].items()} == {
                name: {"value": float(index["value"]), "band": index["band"]}
                for name, index in expected[sensor].items()
            }, sensor
        assert set(shown["air-kim-lien"]) == {"vnAqi"} and shown["air-kim-lien"]["vnAqi"]["colour"]
        assert shown["traffic-kim-lien"]["levelOfService"]["label"]["vi"].startswith("Mức phục vụ")
        districts = {d["id"]: d for d in body["districts"]}
        # Đống Đa has Kim Liên's air station and traffic detector and Láng metro station.
        assert set(districts["dong-da"]["indices"]) == {"vnAqi", "levelOfService", "ridership"}
        # July 2026 readings replayed: in the picture, but too old to count as reporting.
        transit = body["freshness"]["transit"]
        assert (transit["sensorsReporting"], transit["sensorsStale"]) == (0, 1)

        listed = {s["id"]: s for s in http.get("/v1/sensors", timeout=5).json()["items"]}
        assert {s for s, item in listed.items() if item["health"] != "no-data"} == SENSORS
        detail = http.get("/v1/sensors/air-kim-lien", timeout=5).json()
        assert [a["window"] for a in detail["aggregates"]] == ["1m", "5m", "1h"]

        # --- Redis loses everything of this namespace; ``ioc picture rebuild`` puts it back -------------
        assert worker.stop() in (0, -15)  # nothing else writes the picture meanwhile
        empty_redis(settings)
        assert picture() is None
        topics = pipeline_topics(settings)
        ends = topic_ends(settings, topics)
        rebuild = IocProcess(["picture", "rebuild"], settings, tmp_path / "rebuild.log")
        assert rebuild.process.wait(120) == 0, rebuild.log_file.read_text()
        assert "records written into the picture" in rebuild.log_file.read_text()
        rebuilt = wait_for(picture, timeout=10, processes=[api])  # the API caches the picture a moment
        assert rebuilt["feeds"] == body["feeds"]
        assert rebuilt["districts"] == body["districts"]
        assert topic_ends(settings, topics) == ends  # nothing published: no alert event twice
    finally:
        http.close()
        api.stop()
        worker.stop()
