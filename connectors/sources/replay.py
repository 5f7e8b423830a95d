"""Replay a recording into the raw topics, each key's events in event-time order, paced by event time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from connectors.sources.base import PacedRecord, produce_paced
from ioc.recording import RecordedEvent, in_event_time_order
from ioc.settings import Settings


def replay_plan(events: Sequence[RecordedEvent], shift_to: datetime | None = None) -> list[RecordedEvent]:
    """The events in event-time order (ties in file order), moved so the first one is at ``shift_to``."""
    ordered = in_event_time_order(list(events))
    if shift_to is None or not ordered:
        return ordered
    by = shift_to - ordered[0].event_time
    return [event.shifted(by) for event in ordered]


async def replay(
    events: Sequence[RecordedEvent],
    settings: Settings,
    *,
    speed: float | None,
    on_sent: Callable[[int, float], None] | None = None,
) -> int:
    """Produce ``events`` (in this order) to ``settings``' raw topics; returns how many Kafka acknowledged.

    ``speed``: 1 = as fast as they happened, 10 = ten times faster, None = as fast as Kafka takes them.
    """
    records = (
        PacedRecord(settings.raw_topic(e.feed), e.key, e.value, e.event_time.timestamp(), e.headers)
        for e in events
    )
    return await produce_paced(records, settings, speed=speed, on_sent=on_sent)
