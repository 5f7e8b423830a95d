"""Window aggregates and alert events into the Redis live picture."""

from __future__ import annotations

import faust

from connectors.sinks.redis_picture import RedisPicture, connect
from ioc.models.alert import AlertEvent
from ioc.settings import FEEDS, Settings
from ioc.windows import WindowAggregate


def register_picture_sinks(app: faust.App, settings: Settings) -> None:
    # Every window of every feed: the picture shows the latest of each.
    topics = [settings.agg_topic(feed, spec.label) for feed in FEEDS for spec in settings.windows_of(feed)]
    aggregates = app.topic(*topics, partitions=settings.partitions)
    alerts = app.topic(settings.alerts_topic, partitions=settings.partitions)

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
