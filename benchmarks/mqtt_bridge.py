"""MQTT bridge throughput: messages per second from Mosquitto into Kafka for one ``ioc bridge mqtt``.

    python benchmarks/mqtt_bridge.py                    # starts its own Kafka and Mosquitto (ioc infra)
    python benchmarks/mqtt_bridge.py --kafka 127.0.0.1:9092 --mqtt mqtt://127.0.0.1:1883

``--messages`` valid air readings (``--items`` per message, as a JSON array when more than one) are made
before the clock starts and published with QoS 1 as fast as the broker takes them, while the bridge runs.
The clock stops when the raw topic holds every item; each item was acknowledged by Kafka (idempotent
producer, acks=all) before the bridge acknowledged its MQTT message. Prints messages/s and items/s.
Run it on an otherwise idle machine: publisher, broker, bridge and Kafka share the CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kafka import KafkaConsumer, TopicPartition  # noqa: E402

from connectors.kafka import kafka_python_options  # noqa: E402
from ioc import infra  # noqa: E402
from ioc.city import load_city  # noqa: E402
from ioc.infra.mosquitto import mqtt_address_of, new_client  # noqa: E402
from ioc.settings import Settings  # noqa: E402
from tests.conftest import free_port, settings_env  # noqa: E402


def payloads(messages: int, items: int) -> list[tuple[str, bytes]]:
    sensors = [s.id for s in load_city("hanoi").sensors_of("air")]
    start = datetime.fromisoformat("2026-01-15T00:00:00+07:00")
    made = []
    for m in range(messages):
        sensor = sensors[m % len(sensors)]
        readings = [
            {
                "sensorId": sensor,
                "dateObserved": (start + timedelta(seconds=m * items + i)).isoformat(),
                "pm25": 20.5 + i,
                "no2": 30.5,
            }
            for i in range(items)
        ]
        made.append((sensor, json.dumps(readings if items > 1 else readings[0]).encode()))
    return made


def items_in(settings: Settings, topic: str) -> int:
    consumer = KafkaConsumer(**kafka_python_options(settings), group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(partitions).values()) if partitions else 0
    finally:
        consumer.close()


def run(settings: Settings, messages: int, items: int, log: Path) -> None:
    made = payloads(messages, items)
    bridge = subprocess.Popen(
        [sys.executable, "-m", "ioc", "bridge", "mqtt", "--report-every", "5"],
        env=settings_env(settings),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while "subscribed to" not in log.read_text():
            if bridge.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the bridge did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        address = mqtt_address_of(settings)
        publisher = new_client(address, f"bench-{uuid.uuid4().hex[:6]}")
        publisher.max_inflight_messages_set(1000)
        publisher.max_queued_messages_set(0)
        publisher.connect(address.host, address.port)
        publisher.loop_start()
        topic = settings.raw_topic("air")
        root = settings.mqtt_topic_root
        began = time.monotonic()
        sent = [publisher.publish(f"{root}/air/{sensor}", body, qos=1) for sensor, body in made]
        for info in sent:
            info.wait_for_publish(timeout=120)
        published = time.monotonic() - began
        expected = messages * items
        while (written := items_in(settings, topic)) < expected:
            if time.monotonic() - began > 600:
                raise SystemExit(f"only {written} of {expected} items reached {topic} in 600 s")
            time.sleep(0.05)
        elapsed = time.monotonic() - began
        publisher.disconnect()
        publisher.loop_stop()
    finally:
        bridge.terminate()
        bridge.wait(30)
    each = f"{items} item{'s' if items > 1 else ''} each"
    print(f"{messages:,} MQTT messages ({each}) published in {published:.1f} s")
    print(
        f"all {messages * items:,} items in {topic} after {elapsed:.1f} s: "
        f"{messages / elapsed:,.0f} messages/s, {messages * items / elapsed:,.0f} items/s"
    )
    print(
        "bridge:",
        [line for line in log.read_text().splitlines() if "bridge stopped" in line][-1].split(": ", 1)[1],
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=1, help="items per message (a JSON array when > 1)")
    parser.add_argument("--kafka", help="existing Kafka bootstrap servers")
    parser.add_argument("--mqtt", help="existing MQTT broker URL")
    args = parser.parse_args()
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        local = Settings(
            kafka_bootstrap=args.kafka,
            redis_url="redis://unused:6379/0",  # the bridge does not use Redis
            mqtt_url=args.mqtt,
            run_dir=Path(tmp),
            kafka_port=free_port(),
            kafka_controller_port=free_port(),
            mqtt_port=free_port(),
        )
        if not (args.kafka and args.mqtt):
            stack.callback(infra.down, local)
            infra.up(local)
        settings = local.model_copy(
            update={"topic_prefix": namespace, "mqtt_topic_root": namespace, "mqtt_client_id": namespace}
        )
        run(settings, args.messages, args.items, Path(tmp) / "bridge.log")


if __name__ == "__main__":
    main()
