"""A backlog on Kafka for the catch-up benchmarks: produce it before the clock starts, then follow how
far a consumer group has committed it, and how much CPU the consumer used."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from connectors.kafka import EventProducer
from ioc.settings import Settings

CHUNK = 20_000  # records awaited at a time: bounds the producer's memory, keeps batches full


async def produce(settings: Settings, events: Sequence) -> None:
    """Every event to its feed's raw topic, keyed by sensor (so a sensor's events share a partition)."""
    async with EventProducer(settings, linger_ms=20, max_batch_size=262_144) as producer:
        for first in range(0, len(events), CHUNK):
            chunk = events[first : first + CHUNK]
            await producer.send_many((settings.raw_topic(e.feed), e.sensor_id, e.to_json()) for e in chunk)


def end_offsets(settings: Settings, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
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
