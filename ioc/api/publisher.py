"""The API's ways into Kafka: a producer that replaces itself after a failure, and the operators'
publisher (alert commands and silences) built on it.

Each API process holds one idempotent ``acks=all`` producer per use (ingest, operators), started on first
use. After any failure it is dropped and stopped in the background (its pending records may hold it for
a while), and the next call starts a fresh one. A failure is :class:`Unavailable`: the endpoint answers
503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from connectors.kafka import EventProducer, ensure_topics
from ioc.settings import Settings

log = logging.getLogger(__name__)


class Unavailable(Exception):
    """Kafka (or Redis) did not answer in time; the request is refused with 503 and Retry-After."""


class ReplaceableProducer:
    def __init__(
        self, settings: Settings, *, topics: list[str], timeout: float, client_id: str, **options: Any
    ) -> None:
        self.settings, self.topics, self.timeout = settings, topics, timeout
        self._options = {"client_id": client_id, "request_timeout_ms": int(timeout * 1000), **options}
        self._producer: EventProducer | None = None
        self._lock = asyncio.Lock()
        self._topics_ready = False
        self._closing: set[asyncio.Task] = set()

    async def started(self) -> EventProducer:
        """The running producer, started (and its topics created) on first use."""
        async with self._lock:
            if self._producer is not None:
                return self._producer
            client = self._options["client_id"]
            if not self._topics_ready:
                try:
                    await asyncio.wait_for(ensure_topics(self.settings, self.topics), self.timeout)
                except Exception as error:  # any failure to reach the broker means: not now
                    log.warning("%s: cannot create topics (%s)", client, type(error).__name__)
                    raise Unavailable("Kafka is unreachable") from None
                self._topics_ready = True
            producer = EventProducer(self.settings, **self._options)
            try:
                await asyncio.wait_for(producer.__aenter__(), self.timeout)
            except Exception as error:  # bootstrap failed, timed out, …
                log.warning("%s: cannot start the Kafka producer (%s)", client, type(error).__name__)
                self._stop_later(producer)
                raise Unavailable("Kafka is unreachable") from None
            self._producer = producer
            return producer

    async def discard(self, producer: EventProducer) -> None:
        """Drop a producer that failed; the next call starts a new one."""
        async with self._lock:
            if self._producer is producer:
                self._producer = None
        self._stop_later(producer)

    def _stop_later(self, producer: EventProducer) -> None:
        async def stop() -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.abort(), self.timeout)

        task = asyncio.get_running_loop().create_task(stop())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.__aexit__(None, None, None), self.timeout)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


class OperatorPublisher:
    """Alert commands and silences into Kafka: a call returns once Kafka acknowledged the record (every
    copy, for a broadcast), or raises :class:`Unavailable` within ``IOC_COMMAND_KAFKA_TIMEOUT_SECONDS``."""

    def __init__(self, settings: Settings) -> None:
        self.timeout = settings.command_kafka_timeout_seconds
        self._kafka = ReplaceableProducer(
            settings,
            topics=[settings.alert_commands_topic, settings.silences_topic],
            timeout=self.timeout,
            client_id="ioc-api-operators",
        )

    async def send(self, topic: str, key: str, value: bytes) -> None:
        """Write one record keyed by ``key``."""
        producer = await self._kafka.started()
        try:
            [outcome] = await asyncio.wait_for(
                producer.send_each([(topic, key, value)], timeout=self.timeout), 2 * self.timeout + 5
            )
        except TimeoutError as error:
            outcome = error
        if outcome is not None:
            raise await self._failed(producer, outcome)

    async def broadcast(self, topic: str, key: str, value: bytes) -> int:
        """Write one record to every partition of ``topic``; the number of partitions written."""
        producer = await self._kafka.started()
        try:
            return await asyncio.wait_for(producer.broadcast(topic, key, value), self.timeout)
        except Exception as error:  # timed out, broker gone, producer closed: all mean "not now"
            raise await self._failed(producer, error) from None

    async def _failed(self, producer: EventProducer, error: BaseException) -> Unavailable:
        log.warning("operator command: Kafka did not acknowledge (%s)", type(error).__name__)
        await self._kafka.discard(producer)
        return Unavailable("Kafka did not acknowledge in time")

    async def close(self) -> None:
        await self._kafka.close()
