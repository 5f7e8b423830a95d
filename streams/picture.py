"""Window aggregates, alert and incident events, silences and the audit trail into the Redis live picture;
dead letters and the event-to-picture latency counted there (``connectors.sinks.redis_metrics``)."""

from __future__ import annotations

from datetime import UTC, datetime

import faust

from connectors.sinks.redis_metrics import RedisMetrics
from connectors.sinks.redis_picture import RedisPicture, connect
from ioc.alerts import audit
from ioc.alerts.silence import Silence
from ioc.models.alert import AlertEvent, IncidentEvent
from ioc.models.dead_letter import DeadLetter
from ioc.settings import FEEDS, Settings
from ioc.windows import WindowAggregate
from streams.pipeline import BATCH_WITHIN


def register_picture_sinks(app: faust.App, settings: Settings) -> None:
    # Every window of every feed: the picture shows the latest of each.
    topics = [settings.agg_topic(feed, spec.label) for feed in FEEDS for spec in settings.windows_of(feed)]
    aggregates = app.topic(*topics, partitions=settings.partitions)
    alerts = app.topic(settings.alerts_topic, partitions=settings.partitions)
    incidents = app.topic(settings.incidents_topic, partitions=settings.partitions)
    dead_letters = app.topic(settings.dlq_topic, partitions=settings.partitions)
    silences = app.topic(settings.silences_topic, partitions=settings.partitions)

    @app.agent(aggregates, name="aggregates-picture", concurrency=1)
    async def aggregates_to_picture(stream: faust.StreamT) -> None:
        redis = connect(settings)
        picture, metrics = RedisPicture(settings, redis), RedisMetrics(settings, redis)
        async for batch in stream.take(500, within=BATCH_WITHIN):
            aggregates = [WindowAggregate.model_validate_json(value) for value in batch]
            stored = await picture.write_aggregates(aggregates)
            # Event time → visible in the picture, for each aggregate this batch stored.
            visible = datetime.now(UTC)
            await metrics.observe_latency((a for a, s in zip(aggregates, stored, strict=True) if s), visible)

    @app.agent(alerts, name="alerts-picture", concurrency=1)
    async def alerts_to_picture(stream: faust.StreamT) -> None:
        picture = RedisPicture(settings, connect(settings))
        async for value in stream:
            event = AlertEvent.model_validate_json(value)
            await picture.write_alert(event)
            if (entry := audit.of_alert_event(event)) is not None:  # an operator acknowledged or resolved
                await picture.write_audit(entry)

    @app.agent(silences, name="silences-picture", concurrency=1)
    async def silences_to_picture(stream: faust.StreamT) -> None:
        # Each silence is on every partition: the writes are idempotent (and the alert manager reads the
        # same topic for its own book).
        picture = RedisPicture(settings, connect(settings))
        async for value in stream:
            silence = Silence.model_validate_json(value)
            await picture.write_silence(silence)
            await picture.write_audit(audit.of_silence(silence))

    @app.agent(incidents, name="incidents-picture", concurrency=1)
    async def incidents_to_picture(stream: faust.StreamT) -> None:
        picture = RedisPicture(settings, connect(settings))
        async for value in stream:
            await picture.write_incident(IncidentEvent.model_validate_json(value))

    @app.agent(dead_letters, name="dead-letter-counts", concurrency=1)
    async def count_dead_letters(stream: faust.StreamT) -> None:
        # Per feed and reason (``late`` is the late-events metric); at least once, like any metric.
        picture = RedisPicture(settings, connect(settings))
        async for batch in stream.take(500, within=BATCH_WITHIN):
            await picture.count_dead_letters([DeadLetter.model_validate_json(value) for value in batch])
