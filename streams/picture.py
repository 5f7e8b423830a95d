"""Window aggregates, alert and incident events, silences and the audit trail into the Redis live picture
(each record written by ``connectors.sinks.picture_writer``, as ``ioc picture rebuild`` writes it); dead
letters and the event-to-picture latency counted there (``connectors.sinks.redis_metrics``)."""

from __future__ import annotations

from datetime import UTC, datetime

import faust

from connectors.sinks.picture_writer import PictureWriter, aggregate_topics
from connectors.sinks.redis_metrics import RedisMetrics
from connectors.sinks.redis_picture import RedisPicture, connect
from ioc.models.dead_letter import DeadLetter
from ioc.settings import Settings
from streams.pipeline import BATCH_WITHIN


def register_picture_sinks(app: faust.App, settings: Settings) -> None:
    aggregates = app.topic(*aggregate_topics(settings), partitions=settings.partitions)
    alerts = app.topic(settings.alerts_topic, partitions=settings.partitions)
    incidents = app.topic(settings.incidents_topic, partitions=settings.partitions)
    dead_letters = app.topic(settings.dlq_topic, partitions=settings.partitions)
    silences = app.topic(settings.silences_topic, partitions=settings.partitions)

    @app.agent(aggregates, name="aggregates-picture", concurrency=1)
    async def aggregates_to_picture(stream: faust.StreamT) -> None:
        redis = connect(settings)
        writer, metrics = PictureWriter(settings, redis), RedisMetrics(settings, redis)
        async for batch in stream.take(500, within=BATCH_WITHIN):
            stored = await writer.aggregates(batch)
            # Event time → visible in the picture, for each aggregate this batch stored.
            await metrics.observe_latency(stored, datetime.now(UTC))

    @app.agent(alerts, name="alerts-picture", concurrency=1)
    async def alerts_to_picture(stream: faust.StreamT) -> None:
        writer = PictureWriter(settings, connect(settings))
        async for value in stream:
            await writer.alert_event(value)

    @app.agent(silences, name="silences-picture", concurrency=1)
    async def silences_to_picture(stream: faust.StreamT) -> None:
        # Each silence is on every partition: the writes are idempotent (and the alert manager reads the
        # same topic for its own book).
        writer = PictureWriter(settings, connect(settings))
        async for value in stream:
            await writer.silence(value)

    @app.agent(incidents, name="incidents-picture", concurrency=1)
    async def incidents_to_picture(stream: faust.StreamT) -> None:
        writer = PictureWriter(settings, connect(settings))
        async for value in stream:
            await writer.incident_event(value)

    @app.agent(dead_letters, name="dead-letter-counts", concurrency=1)
    async def count_dead_letters(stream: faust.StreamT) -> None:
        # Per feed and reason (``late`` is the late-events metric); at least once, like any metric.
        picture = RedisPicture(settings, connect(settings))
        async for batch in stream.take(500, within=BATCH_WITHIN):
            await picture.count_dead_letters([DeadLetter.model_validate_json(value) for value in batch])
