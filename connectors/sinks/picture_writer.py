"""What a record of each output topic does to the Redis live picture, and the picture rebuilt from Kafka.

The worker's picture agents (``streams/picture.py``) write each record as it comes; ``ioc picture
rebuild`` writes every retained record again, from the beginning of each topic to its end when the
rebuild started. Every write is a compare-and-set (the newest window, the highest revision, the latest
end of a silence wins), so the order across partitions does not matter and a worker may run meanwhile.
The rebuild re-runs nothing upstream, so it publishes nothing to Kafka: the alert events on
``<prefix>.alerts`` stay exactly once. Counters (dead letters, latency) restart from zero, as any
Prometheus counter does after a restart (``connectors.sinks.redis_metrics``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from redis.asyncio import Redis

from connectors.kafka import read_to_end
from connectors.sinks.redis_picture import RedisPicture, connect
from ioc.alerts import audit
from ioc.alerts.silence import Silence
from ioc.models.alert import AlertEvent, IncidentEvent
from ioc.settings import FEEDS, Settings
from ioc.windows import WindowAggregate

REBUILD_BATCH = 2000  # aggregates written per Redis round trip in a rebuild


class PictureWriter:
    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.picture = RedisPicture(settings, redis)

    async def aggregates(self, values: Sequence[bytes]) -> None:
        """Store each window unless a newer one is there."""
        await self.picture.write_aggregates(
            [WindowAggregate.model_validate_json(value).published(value) for value in values]
        )

    async def alert_event(self, value: bytes) -> None:
        event = AlertEvent.model_validate_json(value)
        await self.picture.write_alert(event)
        if (entry := audit.of_alert_event(event)) is not None:  # an operator acknowledged or resolved
            await self.picture.write_audit(entry)

    async def incident_event(self, value: bytes) -> None:
        await self.picture.write_incident(IncidentEvent.model_validate_json(value))

    async def silence(self, value: bytes) -> None:
        silence = Silence.model_validate_json(value)
        await self.picture.write_silence(silence)
        await self.picture.write_audit(audit.of_silence(silence))


def aggregate_topics(settings: Settings) -> list[str]:
    """Every window of every feed: the picture shows the latest of each."""
    return [settings.agg_topic(feed, spec.label) for feed in FEEDS for spec in settings.windows_of(feed)]


async def rebuild_picture(
    settings: Settings, on_read: Callable[[int, int], None] | None = None
) -> Counter[str]:
    """Write every retained output record into the picture again; the records read per topic.
    ``on_read(read, total)`` reports progress."""
    writer = PictureWriter(settings, connect(settings))
    single = {
        settings.alerts_topic: writer.alert_event,
        settings.incidents_topic: writer.incident_event,
        settings.silences_topic: writer.silence,
    }
    aggregated = set(aggregate_topics(settings))
    read: Counter[str] = Counter()
    pending: list[bytes] = []
    try:
        for record in read_to_end(settings, [*aggregated, *single], "ioc-picture-rebuild", on_read):
            read[record.topic] += 1
            if record.topic in aggregated:
                pending.append(record.value)
                if len(pending) >= REBUILD_BATCH:
                    await writer.aggregates(pending)
                    pending.clear()
            else:
                await single[record.topic](record.value)
        if pending:
            await writer.aggregates(pending)
    finally:
        await writer.picture.redis.aclose()
    return read
