"""Window aggregates, alert and incident events into the Redis live picture; dead letters counted there."""

from __future__ import annotations

import faust

from connectors.sinks.redis_picture import RedisPicture, connect
from ioc.models.alert import AlertEvent, IncidentEvent
from ioc.models.dead_letter import DeadLetter
from ioc.settings import FEEDS, Settings
from ioc.windows import WindowAggregate


def register_picture_sinks(app: faust.App, settings: Settings) -> None:
    # Every window of every feed: the picture shows the latest of each.
    topics = [settings.agg_topic(feed, spec.label) for feed in FEEDS for spec in settings.windows_of(feed)]
    aggregates = app.topic(*topics, partitions=settings.partitions)
    alerts = app.topic(settings.alerts_topic, partitions=settings.partitions)
    incidents = app.topic(settings.incidents_topic, partitions=settings.partitions)
    dead_letters = app.topic(settings.dlq_topic, partitions=settings.partitions)

    @app.agent(aggregates, name="aggregates-picture", concurrency=1)
    async def aggregates_to_picture(stream: faust.StreamT) -> None:
        picture = RedisPicture(settings, connect(settings))
        async for batch in stream.take(500, within=0.5):
            await picture.write_aggregates([WindowAggregate.model_validate_json(value) for value in batch])

    @app.agent(alerts, name="alerts-picture", concurrency=1)
    async def alerts_to_picture(stream: faust.StreamT) -> None:
        picture = RedisPicture(settings, connect(settings))
        async for value in stream:
            await picture.write_alert(AlertEvent.model_validate_json(value))

    @app.agent(incidents, name="incidents-picture", concurrency=1)
    async def incidents_to_picture(stream: faust.StreamT) -> None:
        picture = RedisPicture(settings, connect(settings))
        async for value in stream:
            await picture.write_incident(IncidentEvent.model_validate_json(value))

    @app.agent(dead_letters, name="dead-letter-counts", concurrency=1)
    async def count_dead_letters(stream: faust.StreamT) -> None:
        # Per feed and reason (``late`` is the late-events metric); at least once, like any metric.
        picture = RedisPicture(settings, connect(settings))
        async for batch in stream.take(500, within=0.5):
            await picture.count_dead_letters([DeadLetter.model_validate_json(value) for value in batch])
