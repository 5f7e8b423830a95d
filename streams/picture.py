"""Alert and incident events, silences and dead letters into the Redis live picture (each record written by
``connectors.sinks.picture_writer``, as ``ioc picture rebuild`` writes it; dead letters counted by feed
and reason). Window aggregates need no agent here: the pipeline writes its own (``streams.pipeline``).

One agent over the four topics; a batch's records are written once the checkpoint has them, and
acknowledged after (``streams.checkpointing``): every write is a compare-and-set or a counter, so a record
written twice after a crash leaves the picture as once (the counters count it again, as any metric may).
While Redis is down the agent holds its batch and tries again with back-off, unacknowledged; the rest of
the worker streams on (a Redis that comes back empty is refilled by ``ioc picture rebuild``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import faust
import redis.exceptions

from connectors.sinks.picture_writer import PictureWriter
from connectors.sinks.redis_picture import connect
from ioc.settings import Settings
from streams.checkpointing import Admission, Batch, Checkpointer
from streams.pipeline import BATCH_WITHIN

log = logging.getLogger(__name__)

BATCH_MAX = 500
REDIS_RETRY_SECONDS = (0.5, 1, 2, 5, 10)  # back-off between attempts while Redis is down; then the last


def register_picture_sinks(app: faust.App, settings: Settings) -> None:
    topics = (settings.alerts_topic, settings.incidents_topic, settings.silences_topic, settings.dlq_topic)
    source = app.topic(*topics, partitions=settings.partitions)
    checkpoints = Checkpointer(app, "picture", settings.bootstrap_servers, settings.partitions)
    writers: list[PictureWriter] = []  # connected in the agent's own event loop

    @app.agent(source, name="picture", concurrency=1)
    async def to_picture(stream: faust.StreamT) -> None:
        writers.append(PictureWriter(settings, connect(settings)))
        await checkpoints.run(stream, handle, batch_max=BATCH_MAX, within=BATCH_WITHIN)

    async def handle(events: list[tuple[Any, Admission]], batch: Batch) -> None:
        values = [(event.message.topic, event.value) for event, _ in events]
        batch.after_outputs(lambda: write_until_stored(values))

    async def write_until_stored(values: list[tuple[str, bytes]]) -> None:
        for attempt in itertools.count():
            try:
                return await write(values)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
                pause = REDIS_RETRY_SECONDS[min(attempt, len(REDIS_RETRY_SECONDS) - 1)]
                log.warning("picture: %d records wait for Redis (%s)", len(values), error)
                await asyncio.sleep(pause)

    async def write(values: list[tuple[str, bytes]]) -> None:
        # Each silence is on every partition: its writes are idempotent.
        await writers[0].records(values)
