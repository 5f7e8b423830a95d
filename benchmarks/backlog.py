"""A backlog on Kafka for the catch-up benchmarks: produce it before the clock starts, then follow how
far a consumer group has committed it, and how much CPU the consumer used."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from connectors.kafka import EventProducer, kafka_python_options
from connectors.sources.simulator.scale import COPIED_KINDS, with_synthetic_sensors
from ioc.city import City, load_city
from ioc.feeds.air.simulator import AirSimulator
from ioc.settings import Settings

CHUNK = 20_000  # records awaited at a time: bounds the producer's memory, keeps batches full
# January: Hanoi's worst month for PM2.5, so some windows pass the peer's threshold and ioc's alerts fire.
AIR_START = datetime.fromisoformat("2026-01-12T00:00:00+07:00")


def air_city(sensors: int) -> City:
    """Hanoi's air stations plus synthetic copies, ``sensors`` air sensors in all and nothing else."""
    city = load_city("hanoi")
    copied = [s for s in city.sensors if s.kind in COPIED_KINDS]
    rounds = math.ceil(sensors / sum(s.kind == "air" for s in copied))
    scaled = with_synthetic_sensors(city, len(city.sensors) + rounds * len(copied))
    return scaled.model_copy(update={"sensors": scaled.sensors_of("air")[:sensors]})


def air_events(events: int, sensors: int, seed: int, start: datetime = AIR_START) -> list:
    """``events`` seeded air readings of ``sensors`` sensors, one a minute each, from ``start``."""
    minutes = math.ceil(events / sensors)
    source = AirSimulator(air_city(sensors), start=start, duration=timedelta(minutes=minutes), seed=seed)
    return list(source.events())[:events]


async def produce(settings: Settings, events: Sequence) -> None:
    """Every event to its feed's raw topic, keyed by sensor (so a sensor's events share a partition)."""
    async with EventProducer(settings, linger_ms=20, max_batch_size=262_144) as producer:
        for first in range(0, len(events), CHUNK):
            chunk = events[first : first + CHUNK]
            await producer.send_many((settings.raw_topic(e.feed), e.sensor_id, e.to_json()) for e in chunk)


def end_offsets(settings: Settings, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(**kafka_python_options(settings))
    try:
        return consumer.end_offsets(partitions)
    finally:
        consumer.close()


def committed(admin: KafkaAdminClient, group: str, partitions: list[TopicPartition]) -> dict:
    """The group's committed offsets of those partitions it has committed (none before its first)."""
    try:
        offsets = admin.list_group_offsets({group: partitions})[group]
    except KafkaError:  # no coordinator yet: the group has not committed anything
        return {}
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset is not None and meta.offset >= 0}


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) the process has used so far; None where /proc is not there."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def consumed_topics(admin: KafkaAdminClient, group: str, among: Sequence[str]) -> list[str]:
    """Those of ``among`` the group's members are assigned (none while it has no stable members).

    What a worker reads is its own business (it changes as the worker does): ask its group."""
    try:
        described = admin.describe_groups([group])
    except KafkaError:
        return []
    assigned: set[str] = set()
    for info in described.values() if isinstance(described, dict) else described:
        info = info if isinstance(info, dict) else vars(info)
        if info.get("group_state") != "Stable":
            return []
        for member in info.get("members") or []:
            assignment = member.get("member_assignment") or {}
            assigned.update(a["topic"] for a in assignment.get("assigned_partitions") or [])
    return [topic for topic in among if topic in assigned]
