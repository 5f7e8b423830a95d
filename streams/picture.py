"""Alert and incident events, silences and dead letters into the Redis live picture (each record written by
``connectors.sinks.picture_writer``, as ``ioc picture rebuild`` writes it; dead letters counted by feed
and reason). Window aggregates need no agent here: the pipeline writes its own (``streams.pipeline``).

One agent over the four topics; a batch's records are written once the checkpoint has them, and
acknowledged after (``streams.checkpointing``): every write is a compare-and-set or a counter, so a record
written twice after a crash leaves the picture as once (the counters count it again, as any metric may).
While Redis is down the agent holds its batch and tries again with back-off, unacknowledged; the rest of
the worker streams on (a Redis that comes back empty is refilled by ``ioc picture rebuild``). A record
that does not parse is a dead letter (reason ``invalid``), not a failed batch.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import faust
import redis.exceptions

from connectors.sinks.picture_writer import PictureRecords, PictureWriter, read_records
from connectors.sinks.redis_picture import connect
from ioc.settings import Settings
from streams.checkpointing import Admission, Batch, Checkpointer, refuse
from streams.pipeline import PICTURE_WITHIN

log = logging.getLogger(__name__)

BATCH_MAX = 500
REDIS_RETRY_SECONDS = (0.5, 1, 2, 5, 10)  # back-off between attempts while Redis is down; then the last


def register_picture_sinks(app: faust.App, settings: Settings) -> None:
    topics = (settings.alerts_topic, settings.incidents_topic, settings.silences_topic, settings.dlq_topic)
    source = app.topic(*topics, partitions=settings.partitions)
    dead_letters = app.topic(settings.dlq_topic, partitions=settings.partitions)
    # What a record that does not parse is dead-lettered as, by its topic.
    kinds = {
        settings.alerts_topic: "alerts",
        settings.incidents_topic: "incidents",
        settings.silences_topic: "silences",
    }
    checkpoints = Checkpointer(app, "picture", settings.bootstrap_servers, settings.partitions)
    writers: list[PictureWriter] = []  # connected in the agent's own event loop

    @app.agent(source, name="picture", concurrency=1)
    async def to_picture(stream: faust.StreamT) -> None:
        writers.append(PictureWriter(settings, connect(settings)))
        await checkpoints.run(
            stream, handle, batch_max=BATCH_MAX, within=PICTURE_WITHIN, outputs=[dead_letters]
        )

    async def handle(events: list[tuple[Any, Admission]], batch: Batch) -> None:
        read = read_records(settings, [(event.message.topic, event.value) for event, _ in events])
        for index, error in read.unreadable:
            event = events[index][0]
            if event.message.topic == settings.dlq_topic:  # not into the topic it came from
                log.warning("picture: a dead letter at %s does not parse: %s", event.message.tp, error)
            else:
                refuse(batch, settings.dlq_topic, event, kinds[event.message.topic], error)
        batch.after_outputs(lambda: write_until_stored(read))

    async def write_until_stored(read: PictureRecords) -> None:
        # Silences are on every partition, alerts and incidents kept at their highest revision: writing
        # one again changes nothing.
        for attempt in itertools.count():
            try:
                return await writers[0].records(read)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
                pause = REDIS_RETRY_SECONDS[min(attempt, len(REDIS_RETRY_SECONDS) - 1)]
                log.warning("picture: %d records wait for Redis (%s)", len(read.events), error)
                await asyncio.sleep(pause)
