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

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis

from connectors.kafka import read_to_end
from connectors.sinks.redis_picture import RedisPicture, connect
from ioc.alerts import audit
from ioc.alerts.silence import Silence
from ioc.feeds import FEEDS
from ioc.models.alert import AlertEvent, IncidentEvent
from ioc.models.dead_letter import DeadLetter
from ioc.settings import Settings
from ioc.windows import WindowAggregate

log = logging.getLogger(__name__)

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

    async def records(self, records: PictureRecords) -> None:
        """The alerts and incidents in one round trip, then the rarer rest."""
        if records.events:
            await self.picture.write_records(records.events)
        for silence in records.silences:
            await self.picture.write_silence(silence)
        for entry in records.audits:
            await self.picture.write_audit(entry)
        if records.dead_letters:
            await self.picture.count_dead_letters(records.dead_letters)


@dataclass
class PictureRecords:
    """Records of the alerts, incidents, silences and dead-letter topics, read for the picture."""

    events: list[AlertEvent | IncidentEvent] = field(default_factory=list)
    silences: list[Silence] = field(default_factory=list)
    audits: list[audit.AuditEntry] = field(default_factory=list)  # operators' acks, resolves, silences
    dead_letters: list[DeadLetter] = field(default_factory=list)  # counted per feed and reason
    unreadable: list[tuple[int, ValueError]] = field(default_factory=list)  # (index in the input, why)


def read_records(settings: Settings, records: Sequence[tuple[str, bytes]]) -> PictureRecords:
    """(topic, value) records, in order; those that do not parse are set apart, with why."""
    read = PictureRecords()
    for index, (topic, value) in enumerate(records):
        try:
            if topic == settings.alerts_topic:
                event = AlertEvent.model_validate_json(value)
                read.events.append(event)
                if (entry := audit.of_alert_event(event)) is not None:
                    read.audits.append(entry)
            elif topic == settings.incidents_topic:
                read.events.append(IncidentEvent.model_validate_json(value))
            elif topic == settings.silences_topic:
                silence = Silence.model_validate_json(value)
                read.silences.append(silence)
                read.audits.append(audit.of_silence(silence))
            elif topic == settings.dlq_topic:  # ``late`` is the late-events metric
                read.dead_letters.append(DeadLetter.model_validate_json(value))
        except ValueError as error:
            read.unreadable.append((index, error))
    return read


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
                await write_records(writer, records)
                records.clear()
        if windows:
            await writer.aggregates(windows)
        if records:
            await write_records(writer, records)
    finally:
        await writer.picture.redis.aclose()
    return read


async def write_records(writer: PictureWriter, records: list[tuple[str, bytes]]) -> None:
    read = read_records(writer.settings, records)
    for index, error in read.unreadable:  # the worker dead-lettered them when it met them
        log.warning("picture rebuild: a record of %s does not parse (%s); skipped", records[index][0], error)
    await writer.records(read)
