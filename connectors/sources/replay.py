"""Replay a recording into the raw topics, each key's events in event-time order, paced by event time.

A replay writes straight to the raw topics, past the ingest edge, so it applies the edge's bound on
event time itself: an event dated more than ``IOC_FUTURE_TOLERANCE_SECONDS`` ahead of the wall clock when
it is about to be sent (a recording from a clock gone wrong, or one shifted to now and replayed faster
than real time) is refused and reported, unless the user asks for it (``allow_future``, ``ioc replay
--allow-future``). Then the replay keeps its own clock: such a record's Kafka timestamp is its event
time, so the worker's own bound (event time against Kafka's) lets it through too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

from connectors.sources.base import PacedRecord, produce_paced
from ioc.ingest.edge import too_far_ahead
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
    allow_future: bool = False,
    on_refused: Callable[[RecordedEvent, str], None] | None = None,
) -> int:
    """Produce ``events`` (in this order) to ``settings``' raw topics; returns how many Kafka acknowledged.

    ``speed``: 1 = as fast as they happened, 10 = ten times faster, None = as fast as Kafka takes them.
    Unless ``allow_future``, an event dated beyond the wall clock + ``settings.future_tolerance_seconds``
    when its turn comes is not sent: ``on_refused(event, reason)`` hears of it.
    """
    tolerance = None if allow_future else timedelta(seconds=settings.future_tolerance_seconds)
    records = (
        PacedRecord(settings.raw_topic(e.feed), e.key, e.value, e.event_time.timestamp(), e.headers)
        for e in _bounded(events, tolerance, on_refused or (lambda event, reason: None))
    )
    return await produce_paced(records, settings, speed=speed, on_sent=on_sent, own_clock=allow_future)


def _bounded(
    events: Sequence[RecordedEvent],
    tolerance: timedelta | None,
    on_refused: Callable[[RecordedEvent, str], None],
) -> Iterator[RecordedEvent]:
    """The events, without those too far ahead of the wall clock when their turn comes (pacing takes
    each just before it is sent, so the clock read here is the sending time, give or take a batch)."""
    for event in events:
        if tolerance is not None:
            reason = too_far_ahead(
                event.event_time, datetime.fromtimestamp(time.time(), UTC), tolerance, "it was replayed"
            )
            if reason is not None:
                on_refused(event, reason)
                continue
        yield event
