"""``ioc bridge mqtt`` as a real process between a real Mosquitto and a real Kafka broker."""

from __future__ import annotations

import json
import random
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from ioc.infra import LocalKafka
from ioc.infra.mosquitto import mqtt_address_of, new_client
from ioc.settings import Settings
from tests.conftest import free_port, transport_of
from tests.integration.test_ingest_privacy import luhn_card
from tests.processes import IocProcess, read_topic, wait_for

pytestmark = pytest.mark.integration

AIR, AIR_2, WATER, STATION = "air-trung-yen", "air-minh-khai", "water-to-lich-nghia-do", "metro-2a-cat-linh"
RAW_CARD = "9704123498765432"  # a made-up fare card number: must never reach Kafka or a log


def air(sensor: str, minute: int, pm25: float) -> dict:
    return {"sensorId": sensor, "dateObserved": f"2026-01-15T08:{minute:02d}:00+07:00", "pm25": pm25}


def water(minute: int) -> dict:
    return {"sensorId": WATER, "dateObserved": f"2026-01-15T08:{minute:02d}:00+07:00", "temperature": 24.5}


def tap(event_id: str) -> dict:
    return {
        "sensorId": STATION,
        "dateObserved": "2026-01-15T08:00:00+07:00",
        "eventId": event_id,
        "cardId": RAW_CARD,
        "cardType": "adult",
        "mode": "metro",
        "line": "2A",
        "deviceId": "gate-1",
        "direction": "ENTRY",
        "fare": 0,
    }


class Publisher:
    """A real MQTT client publishing with QoS 1 and waiting for the broker's PUBACK."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        address = mqtt_address_of(settings)
        self.client = new_client(address, f"pub-{uuid.uuid4().hex[:8]}")
        self.client.connect(address.host, address.port)
        self.client.loop_start()

    def send(self, feed: str, sensor: str, payload: object) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        topic = f"{self.settings.mqtt_topic_root}/{feed}/{sensor}"
        self.client.publish(topic, body, qos=1).wait_for_publish(timeout=10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(settings: Settings):
    publisher = Publisher(settings)
    yield publisher
    publisher.close()


@pytest.fixture
def start_bridge():
    """Starts `ioc bridge mqtt` processes (waiting until each subscribed); stops any left at the end."""
    started: list[IocProcess] = []

    def start(settings: Settings, log_file: Path) -> IocProcess:
        bridge = IocProcess(["bridge", "mqtt", "--report-every", "1"], settings, log_file)
        started.append(bridge)
        wait_for(lambda: "subscribed to" in log_file.read_text(), timeout=60, processes=[bridge])
        return bridge

    yield start
    for bridge in started:
        bridge.stop()


def values(records: list[dict]) -> list[dict]:
    return [r["value"] for r in records]


def test_round_trip_valid_items_to_raw_topics_bad_ones_to_the_dlq(
    settings: Settings, publisher: Publisher, start_bridge, tmp_path: Path
) -> None:
    log_file = tmp_path / "bridge.log"
    bridge = start_bridge(settings, log_file)
    try:
        for minute in range(3):
            publisher.send("air", AIR, air(AIR, minute, 40.0 + minute))
        publisher.send("air", AIR_2, [air(AIR_2, 0, 10.0), air(AIR_2, 1, 11.0)])  # an array: two items
        publisher.send("water", WATER, water(0))
        publisher.send("water", WATER, water(15))
        publisher.send("transit", STATION, tap("tap-1"))
        # Five bad ones, each for its own reason.
        publisher.send("air", AIR, b'{"sensorId": "air-trung-yen", "pm25": ')  # not JSON
        publisher.send("air", AIR, air(AIR, 5, -3.0))  # out of range
        publisher.send("air", AIR_2, air(AIR, 6, 12.0))  # the topic names another sensor
        publisher.send("noise", AIR, air(AIR, 7, 12.0))  # no such feed
        publisher.send("transit", STATION, b"cardId=" + RAW_CARD.encode() + b" gate 1")  # not JSON, a card

        air_raw = read_topic(settings, settings.raw_topic("air"), expect=5)
        water_raw = read_topic(settings, settings.raw_topic("water"), expect=2)
        transit_raw = read_topic(settings, settings.raw_topic("transit"), expect=1)
        dlq = read_topic(settings, settings.dlq_topic, expect=5)
        wait_for(lambda: "12 MQTT messages acknowledged" in log_file.read_text(), timeout=30)
    finally:
        assert bridge.stop() == 0
    log = log_file.read_text()

    assert sorted((v["sensorId"], v["pm25"]) for v in values(air_raw)) == [
        (AIR_2, 10.0),
        (AIR_2, 11.0),
        (AIR, 40.0),
        (AIR, 41.0),
        (AIR, 42.0),
    ]
    assert all(r["key"] == r["value"]["sensorId"] for r in air_raw + water_raw + transit_raw)
    assert all("ingestTime" in v for v in values(air_raw + water_raw + transit_raw))
    assert [v["temperature"] for v in values(water_raw)] == [24.5, 24.5]
    (tapped,) = values(transit_raw)
    assert len(tapped["cardIdHash"]) == 64 and tapped["cardKeyId"] == settings.card_hmac_key_id
    assert "cardId" not in tapped

    letters = {letter["source"].split("/", 1)[1] + " " + letter["reason"]: letter for letter in values(dlq)}
    assert sorted(letters) == sorted(
        [
            f"air/{AIR} unparseable",
            f"air/{AIR} invalid",
            f"air/{AIR_2} invalid",
            f"noise/{AIR} invalid",
            f"transit/{STATION} unparseable",
        ]
    ), letters
    assert letters[f"air/{AIR} unparseable"]["payload"] == '{"sensorId": "air-trung-yen", "pm25": '
    assert letters[f"air/{AIR} invalid"]["detail"].startswith("pm25: ")
    assert json.loads(letters[f"air/{AIR} invalid"]["payload"])["pm25"] == -3.0
    assert "names sensor 'air-minh-khai'" in letters[f"air/{AIR_2} invalid"]["detail"]
    assert "names no feed" in letters[f"noise/{AIR} invalid"]["detail"]
    assert all(letter["source"].startswith(f"mqtt:{settings.mqtt_topic_root}/") for letter in values(dlq))

    # The raw card number reached neither topic nor the bridge's log; the bridge counted what it did.
    everything = json.dumps([air_raw, water_raw, transit_raw, dlq])
    assert RAW_CARD not in everything and RAW_CARD not in log
    assert "[redacted]" in letters[f"transit/{STATION} unparseable"]["payload"]
    assert "accepted air 5, transit 1, water 2; to the DLQ invalid 3, unparseable 2" in log

    # Every message was acknowledged: a new bridge with the same client id gets nothing again.
    again = start_bridge(settings, tmp_path / "again.log")
    try:
        time.sleep(3)
    finally:
        assert again.stop() == 0
    assert "MQTT bridge stopped: 0 MQTT messages acknowledged" in (tmp_path / "again.log").read_text()
    assert len(read_topic(settings, settings.raw_topic("air"), expect=6, timeout=5)) == 5


@pytest.fixture
def own_kafka(settings: Settings, tmp_path: Path):
    """A Kafka broker of this test's own, to stop and start under the bridge (the shared one stays up)."""
    local = Settings(
        kafka_bootstrap=None,
        run_dir=tmp_path / "kafka-run",
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        partitions=settings.partitions,
        **transport_of(settings),  # secured like the shared servers (IOC_TEST_SECURE=1)
    )
    kafka = LocalKafka(local)
    kafka.start()
    yield kafka
    kafka.stop()


def test_a_message_is_acknowledged_only_after_kafka_has_it(
    settings: Settings, own_kafka: LocalKafka, start_bridge, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"kafka_bootstrap": own_kafka.bootstrap})
    air_topic = settings.raw_topic("air")
    publisher = Publisher(settings)
    logs = {name: tmp_path / f"{name}.log" for name in ("first", "second", "third")}
    try:
        # Kafka stops under a running bridge; three messages arrive; a clean stop acknowledges none.
        first = start_bridge(settings, logs["first"])
        own_kafka.stop()
        for minute in range(3):
            publisher.send("air", AIR, air(AIR, minute, 30.0 + minute))
        wait_for(lambda: "MQTT messages stay unacknowledged" in logs["first"].read_text(), timeout=60)
        assert first.stop() == 0
        assert "stopping with 3 received MQTT messages not acknowledged" in logs["first"].read_text()

        # Kafka is back: a new bridge gets the three again from the broker, and writes them.
        own_kafka.start()
        second = start_bridge(settings, logs["second"])
        assert sorted(v["pm25"] for v in values(read_topic(settings, air_topic, expect=3))) == [30, 31, 32]
        wait_for(lambda: "3 MQTT messages acknowledged" in logs["second"].read_text(), timeout=30)

        # Kafka stops again, two more arrive, and the bridge crashes (SIGKILL) before Kafka took them.
        own_kafka.stop()
        for minute in range(3, 5):
            publisher.send("air", AIR, air(AIR, minute, 30.0 + minute))
        wait_for(lambda: "MQTT messages stay unacknowledged" in logs["second"].read_text(), timeout=60)
        second.process.send_signal(signal.SIGKILL)
        second.stop()

        own_kafka.start()
        third = start_bridge(settings, logs["third"])
        written = read_topic(settings, air_topic, expect=5, timeout=60)  # and whatever came with them
        wait_for(lambda: "2 MQTT messages acknowledged" in logs["third"].read_text(), timeout=30)
        assert third.stop() == 0
    finally:
        publisher.close()
    # Each message exactly once: the acknowledged ones were not redelivered, the others were.
    assert Counter(v["pm25"] for v in values(written)) == Counter({30: 1, 31: 1, 32: 1, 33: 1, 34: 1})
    assert read_topic(settings, settings.dlq_topic, expect=1, timeout=3) == []


def test_two_bridges_with_one_client_id_do_not_fight_over_the_session(
    settings: Settings, publisher: Publisher, start_bridge, tmp_path: Path
) -> None:
    bridges = [
        start_bridge(settings, tmp_path / "first.log"),
        start_bridge(settings, tmp_path / "second.log"),
    ]
    try:
        # The broker hands the session to the newest; one of the two gives up, with the reason, and exits.
        stopped = wait_for(lambda: [b for b in bridges if b.process.poll() is not None], timeout=60)
        (gone,) = stopped
        (kept,) = [b for b in bridges if b is not gone]
        assert gone.process.returncode == 1
        assert "run one bridge per IOC_MQTT_CLIENT_ID" in gone.log_file.read_text()
        for minute in range(4):
            publisher.send("air", AIR, air(AIR, minute, 50.0 + minute))
        written = read_topic(settings, settings.raw_topic("air"), expect=4)
        time.sleep(2)
        kept.check_alive()
    finally:
        for bridge in bridges:
            bridge.stop()
    assert kept.process.returncode == 0
    assert sorted(v["pm25"] for v in values(written)) == [50, 51, 52, 53]


def test_card_numbers_and_times_out_of_range_are_refused_and_kept_nowhere(
    settings: Settings, publisher: Publisher, start_bridge, tmp_path: Path
) -> None:
    rng = random.SystemRandom()
    cards = [luhn_card(rng) for _ in range(4)]
    log_file = tmp_path / "bridge.log"
    bridge = start_bridge(settings, log_file)
    try:
        publisher.send("transit", STATION, tap("ok-1"))  # the card as cardId: accepted
        publisher.send("transit", STATION, tap("pan-1") | {"pan": cards[0]})  # an unknown field
        publisher.send("transit", STATION, tap("dev-1") | {"deviceId": cards[1]})  # a known one
        publisher.send("transit", cards[2], tap("topic-1"))  # the topic itself
        publisher.send("transits", STATION, tap("feed-1") | {"pan": cards[3]})  # no such feed
        publisher.send("air", AIR, air(AIR, 0, 10.0) | {"dateObserved": "0001-01-01T00:00:00+07:00"})
        publisher.send("air", AIR, air(AIR, 1, 10.0) | {"dateObserved": "9999-12-31T23:59:59-07:00"})
        transit_raw = read_topic(settings, settings.raw_topic("transit"), expect=1)
        dlq = read_topic(settings, settings.dlq_topic, expect=6)
        wait_for(lambda: "7 MQTT messages acknowledged" in log_file.read_text(), timeout=30)
    finally:
        assert bridge.stop() == 0
    log = log_file.read_text()

    assert values(transit_raw)[0]["eventId"] == "ok-1"
    details = sorted(letter["detail"] for letter in values(dlq))
    assert sum("holds a card number" in d for d in details) == 3, details
    assert sum("names no feed" in d for d in details) == 1, details  # its payload redacted all the same
    assert sum(d.startswith("dateObserved: ") and "outside the range" in d for d in details) == 2, details
    everything = json.dumps([transit_raw, dlq])
    for card in [*cards, RAW_CARD]:
        assert card not in everything and card not in log


def test_a_retained_message_is_bridged_once_across_restarts(
    settings: Settings, publisher: Publisher, start_bridge, tmp_path: Path
) -> None:
    # The broker hands a retained message to every new subscription: each bridge start gets it again.
    topic = f"{settings.mqtt_topic_root}/air/{AIR}"
    body = json.dumps(air(AIR, 7, 77.0)).encode()
    publisher.client.publish(topic, body, qos=1, retain=True).wait_for_publish(timeout=10)
    try:
        first = start_bridge(settings, tmp_path / "first.log")
        assert [v["pm25"] for v in values(read_topic(settings, settings.raw_topic("air"), expect=1))] == [77]
        assert first.stop() == 0
        second = start_bridge(settings, tmp_path / "second.log")
        wait_for(lambda: "1 duplicates" in second.log_file.read_text(), timeout=60, processes=[second])
        # A new reading still goes through.
        publisher.send("air", AIR, air(AIR, 8, 78.0))
        written = read_topic(settings, settings.raw_topic("air"), expect=2)
        time.sleep(2)  # anything more would have come by now
        written = read_topic(settings, settings.raw_topic("air"), expect=3, timeout=3)
        assert second.stop() == 0
    finally:
        publisher.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(timeout=10)
    assert sorted(v["pm25"] for v in values(written)) == [77, 78]
