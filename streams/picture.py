"""Window aggregates into the Redis live picture."""

from __future__ import annotations

import faust

from connectors.sinks.redis_picture import RedisPicture, connect
from ioc.settings import Settings
from ioc.windows import WindowAggregate


def register_picture_sink(app: faust.App, settings: Settings, feed: str) -> None:
    aggregates = app.topic(settings.agg_topic(feed), partitions=settings.partitions)

    @app.agent(aggregates, name=f"{feed}-picture", concurrency=1)
    async def to_picture(stream: faust.StreamT) -> None:
        picture = RedisPicture(settings, connect(settings))
        async for value in stream:
            await picture.write_aggregate(WindowAggregate.model_validate_json(value))
