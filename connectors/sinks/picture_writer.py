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
from ioc.models.dead_letter import DeadLetter
from ioc.settings import FEEDS, Settings
from ioc.windows import WindowAggregate

REBUILD_BATCH = 2000  # aggregates, or other records, written per Redis round trip in a rebuild


class PictureWriter:
    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.settings = settings
        self.picture = RedisPicture(settings, redis)

    async def aggregates(self, values: Sequence[bytes]) -> None:
        """Store each window unless a newer one is there."""
        await self.picture.write_aggregates(
            [WindowAggregate.model_validate_json(value).published(value) for value in values]
        )

    async def records(self, records: Sequence[tuple[str, bytes]]) -> None:
        """(topic, value) records of the alerts, incidents, silences and dead-letter topics, in order:
        the alerts and incidents in one round trip, then the rarer rest."""
        settings = self.settings
        events: list[AlertEvent | IncidentEvent] = []
        audits: list[audit.AuditEntry] = []
        silences: list[Silence] = []
        dead_letters: list[DeadLetter] = []
        for topic, value in records:
            if topic == settings.alerts_topic:
                event = AlertEvent.model_validate_json(value)
                events.append(event)
                if (entry := audit.of_alert_event(event)) is not None:  # an operator's ack or resolve
                    audits.append(entry)
            elif topic == settings.incidents_topic:
                events.append(IncidentEvent.model_validate_json(value))
            elif topic == settings.silences_topic:
                silences.append(Silence.model_validate_json(value))
            elif topic == settings.dlq_topic:  # per feed and reason (``late`` is the late-events metric)
                dead_letters.append(DeadLetter.model_validate_json(value))
        if events:
            await self.picture.write_records(events)
        for silence in silences:
            await self.picture.write_silence(silence)
            audits.append(audit.of_silence(silence))
        for entry in audits:
            await self.picture.write_audit(entry)
        if dead_letters:
            await self.picture.count_dead_letters(dead_letters)


def aggregate_topics(settings: Settings) -> list[str]:
    """Every window of every feed: the picture shows the latest of each."""
    return [settings.agg_topic(feed, spec.label) for feed in FEEDS for spec in settings.windows_of(feed)]


async def rebuild_picture(
    settings: Settings, on_read: Callable[[int, int], None] | None = None
) -> Counter[str]:
    """Write every retained output record into the picture again; the records read per topic.
    ``on_read(read, total)`` reports progress."""
    writer = PictureWriter(settings, connect(settings))
    aggregated = set(aggregate_topics(settings))
    others = (settings.alerts_topic, settings.incidents_topic, settings.silences_topic)
    read: Counter[str] = Counter()
    windows: list[bytes] = []
    records: list[tuple[str, bytes]] = []
    try:
        for record in read_to_end(settings, [*aggregated, *others], "ioc-picture-rebuild", on_read):
            read[record.topic] += 1
            if record.topic in aggregated:
                windows.append(record.value)
            else:
                records.append((record.topic, record.value))
            if len(windows) >= REBUILD_BATCH:
                await writer.aggregates(windows)
                windows.clear()
            if len(records) >= REBUILD_BATCH:
                await writer.records(records)
                records.clear()
        if windows:
            await writer.aggregates(windows)
        if records:
            await writer.records(records)
    finally:
        await writer.picture.redis.aclose()
    return read
