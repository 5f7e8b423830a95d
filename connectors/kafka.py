"""The one producer path into Kafka, and topic creation. Used by the simulator, replay and ingestion."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import suppress

from aiokafka import AIOKafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from ioc.settings import FEEDS, Settings

log = logging.getLogger(__name__)


def pipeline_topics(settings: Settings) -> list[str]:
    """Every topic the pipeline reads or writes (Faust creates its own changelog topics)."""
    per_feed = [t for feed in FEEDS for t in (settings.raw_topic(feed), settings.agg_topic(feed))]
    return [*per_feed, settings.dlq_topic]


def create_topics(settings: Settings, topics: Iterable[str] | None = None) -> list[str]:
    """Create the pipeline's topics with the configured partitions; existing ones are left alone."""
    wanted = list(topics or pipeline_topics(settings))
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id="ioc-admin")
    try:
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        for topic in missing:
            # Another process may create it meanwhile; that is as good.
            with suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(topic, settings.partitions, settings.replication_factor)])
        if missing:
            log.info("created topics %s", ", ".join(missing))
        return missing
    finally:
        admin.close()


class EventProducer:
    """Idempotent, ``acks=all`` producer: ``send_many`` returns only once Kafka has every event."""

    def __init__(self, settings: Settings, *, linger_ms: int = 5) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            enable_idempotence=True,
            acks="all",
            linger_ms=linger_ms,
            compression_type=None,
            client_id="ioc-producer",
        )

    async def __aenter__(self) -> EventProducer:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def send_many(self, records: Iterable[tuple[str, str, bytes]]) -> int:
        """Send a batch and wait until Kafka acknowledged every record of it."""
        futures = [
            await self._producer.send(topic, value=value, key=key.encode()) for topic, key, value in records
        ]
        for future in futures:
            await future
        return len(futures)
