"""Cheap answers for what is asked over and over: ``GET /readyz`` (load balancers, orchestrators) and
``GET /metrics`` (Prometheus, often a pair of them).

* **Clients reused.** Readiness pings Redis through the API's own pool and asks Kafka for metadata over one
  long-lived client, created at the first probe and dropped after a failure (the next probe starts
  afresh); ``/metrics`` keeps its Kafka clients likewise (``ioc.api.metrics.KafkaOffsets``). No probe or
  scrape opens a connection while the servers answer.
* **A short cache.** One answer serves every probe of an API process for ``IOC_READYZ_MAX_AGE_SECONDS``
  (every scrape for ``IOC_METRICS_MAX_AGE_SECONDS``; one missing Kafka or Redis for a second at most), and
  at most one is computed at a time: probes that arrive together wait for the same one.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Generic, TypeVar

from aiokafka import AIOKafkaClient
from redis.asyncio import Redis

from connectors.kafka import aiokafka_options
from ioc.settings import Settings

T = TypeVar("T")

PROBE_TIMEOUT = 3.0  # seconds readiness waits for each of Kafka and Redis
INCOMPLETE_MAX_AGE = 1.0  # seconds an answer missing Kafka or Redis is served again


class Recent(Generic[T]):
    """The newest value computed, served for ``max_age`` seconds, and one computation at a time. A value
    ``complete`` finds wanting (a source did not answer) is served for ``INCOMPLETE_MAX_AGE`` at most: the
    next request soon asks again, while a crowd of requests during an outage still waits for one answer."""

    def __init__(self, max_age: float, complete: Callable[[T], bool] = lambda _: True) -> None:
        self.max_age = max_age
        self.complete = complete
        self._value: T | None = None
        self._until = -math.inf  # monotonic time the value is served until
        self._lock = asyncio.Lock()

    async def get(self, compute: Callable[[], Awaitable[T]]) -> T:
        if self._value is not None and time.monotonic() < self._until:
            return self._value
        async with self._lock:
            # Computed while this request waited for the lock: that one is fresh enough.
            if self._value is None or time.monotonic() >= self._until:
                value = await compute()
                age = self.max_age if self.complete(value) else min(self.max_age, INCOMPLETE_MAX_AGE)
                self._value, self._until = value, time.monotonic() + age
            return self._value


class Readiness:
    """``GET /readyz``'s checks: ``{"redis": "ok", "kafka": "ok"}`` or what did not answer."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis
        self._kafka: AIOKafkaClient | None = None
        self._recent: Recent[dict[str, str]] = Recent(
            settings.readyz_max_age_seconds, lambda checks: all(v == "ok" for v in checks.values())
        )

    async def checks(self) -> dict[str, str]:
        return dict(await self._recent.get(self._probe))

    async def _probe(self) -> dict[str, str]:
        redis, kafka = await asyncio.gather(_check(self.redis.ping()), _check(self._ask_kafka()))
        return {"redis": redis, "kafka": kafka}

    async def _ask_kafka(self) -> None:
        try:
            if self._kafka is None:
                client = AIOKafkaClient(**aiokafka_options(self.settings), client_id="ioc-ready")
                self._kafka = client
                await client.bootstrap()
            else:
                await self._kafka.fetch_all_metadata()  # over the connection it holds
        except BaseException:
            await self.close()  # the next probe bootstraps again (the broker may have moved)
            raise

    async def close(self) -> None:
        client, self._kafka = self._kafka, None
        if client is not None:
            with suppress(Exception):
                await asyncio.wait_for(client.close(), 2.0)


async def _check(probe: Awaitable[object]) -> str:
    try:
        await asyncio.wait_for(probe, PROBE_TIMEOUT)
        return "ok"
    except Exception as error:  # a readiness probe reports every failure, whatever its kind
        return f"unreachable: {type(error).__name__}"
