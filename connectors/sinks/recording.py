"""Record the raw topics: every retained event whose event time falls in [start, end), to a recording.

Kafka's record timestamps are when an event was produced, not when it happened (a replay or a late
sensor differs), so the recorder reads each partition from its beginning to the end it had when the
recording started and keeps events by their own ``dateObserved``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from connectors.kafka import read_to_end
from ioc.recording import RecordedEvent, in_event_time_order
from ioc.settings import Settings


@dataclass
class Recorded:
    events: list[RecordedEvent] = field(default_factory=list)
    read: int = 0  # records read from Kafka
    unreadable: int = 0  # values that are no feed event JSON (left out)


def record_topics(
    settings: Settings,
    feeds: Sequence[str],
    start: datetime | None,
    end: datetime | None,
    on_read: Callable[[int, int], None] | None = None,
) -> Recorded:
    """The feeds' events in [start, end) of event time, sorted by event time (each key keeps its order).

    ``on_read(read, total)`` reports progress in records.
    """
    topics = {settings.raw_topic(feed): feed for feed in feeds}
    result = Recorded()
    for message in read_to_end(settings, topics, "ioc-recorder", on_read):
        result.read += 1
        event = _event(topics[message.topic], message.key, message.value, message.headers)
        if event is None:
            result.unreadable += 1
        elif (start is None or event.event_time >= start) and (end is None or event.event_time < end):
            result.events.append(event)
    result.events = in_event_time_order(result.events)
    return result


def _event(feed: str, key: bytes | None, value: bytes | None, headers) -> RecordedEvent | None:
    try:
        document = json.loads(value or b"")
        event_time = datetime.fromisoformat(document["dateObserved"])
        sensor = key.decode() if key else document["sensorId"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if event_time.tzinfo is None:
        return None
    kept_headers = tuple((name, data or b"") for name, data in headers)
    return RecordedEvent(feed, sensor, event_time, value, kept_headers)
