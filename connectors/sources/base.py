"""A source yields feed events in event-time order; ``produce_paced`` paces records into Kafka.

``run_source`` produces a ``Source`` (the simulator); ``connectors.sources.replay`` produces a recording.
Both stop cleanly when cancelled (Ctrl-C under ``asyncio.run``): what was handed to Kafka is awaited
and counted, nothing more is sent.

Such a source may run ahead of the wall clock (``ioc simulate --speed 10`` from now, a replay shifted to
now at full speed). The worker refuses a record dated more than ``IOC_FUTURE_TOLERANCE_SECONDS`` after
its Kafka timestamp (``ioc.step``), so a source that keeps its own clock (``own_clock``) stamps such a
record with its event time instead of the wall clock: Kafka's time is then the simulated present.
"""

from __future__ import annotations

import asyncio
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple

from connectors.kafka import EventProducer
from ioc.models import Event
from ioc.settings import Settings

# Records awaited together, and the producer's batch bytes: at no pacing these set the throughput
# (a simulated week replays at ~68k events/s with them, ~31k with 500 records and 16 KiB).
BATCH = 5000
BATCH_BYTES = 256 * 1024


class Source(ABC):
    @abstractmethod
    def events(self) -> Iterator[Event]:
        """Events in event-time order; may be endless."""


class PacedRecord(NamedTuple):
    topic: str
    key: str
    value: bytes
    event_time: float  # seconds since the epoch: what pacing follows
    headers: Sequence[tuple[str, bytes]] = ()


async def run_source(
    source: Source,
    settings: Settings,
    *,
    speed: float | None,
    rate: float | None = None,
    on_sent: Callable[[int, float], None] | None = None,
) -> int:
    """Produce the source's events to their raw topics (see ``produce_paced``)."""
    records = (
        PacedRecord(settings.raw_topic(e.feed), e.sensor_id, e.to_json(), e.event_time.timestamp())
        for e in source.events()
    )
    # The simulator's time is its own: ahead of the wall clock when it runs faster than real time.
    return await produce_paced(records, settings, speed=speed, rate=rate, on_sent=on_sent, own_clock=True)


async def produce_paced(
    records: Iterable[PacedRecord],
    settings: Settings,
    *,
    speed: float | None,
    rate: float | None = None,
    on_sent: Callable[[int, float], None] | None = None,
    own_clock: bool = False,
) -> int:
    """Produce records in the given order, in acknowledged batches.

    ``speed`` paces by event time (1 = real time, 10 = ten times faster); ``None`` means as fast as
    possible. ``rate`` caps records per second. ``on_sent(acknowledged, event_seconds)`` reports progress:
    records acknowledged so far and seconds of event time covered. Returns the number acknowledged,
    also when cancelled (then it stops after the batch in flight). ``own_clock``: a record whose event
    time is ahead of the wall clock when it is sent gets its event time as its Kafka timestamp.
    """
    sent = 0
    first_event_time: float | None = None
    covered = 0.0
    started = time.monotonic()
    batch: list[PacedRecord] = []

    async def flush() -> None:
        nonlocal sent
        # Shielded: a cancel lets the batch in flight finish, so the count stays exact.
        now_ms = time.time() * 1000
        sending = asyncio.ensure_future(
            producer.send_many(
                [(r.topic, r.key, r.value, r.headers, _stamp(r, now_ms, own_clock)) for r in batch]
            )
        )
        batch.clear()
        try:
            sent += await asyncio.shield(sending)
        except asyncio.CancelledError:
            sent += await sending
            raise
        if on_sent:
            on_sent(sent, covered)

    async with EventProducer(settings, max_batch_size=BATCH_BYTES) as producer:
        try:
            for record in records:
                moment = record.event_time
                first_event_time = moment if first_event_time is None else first_event_time
                due = started + max(
                    (moment - first_event_time) / speed if speed else 0.0,
                    (sent + len(batch)) / rate if rate else 0.0,
                )
                if due > time.monotonic() or len(batch) >= BATCH:
                    await flush()
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                batch.append(record)
                covered = moment - first_event_time
            await flush()
        except asyncio.CancelledError:
            pass  # a clean stop: what Kafka acknowledged is counted, nothing else goes out
    return sent


def _stamp(record: PacedRecord, now_ms: float, own_clock: bool) -> int | None:
    """The record's Kafka timestamp: its event time when the source keeps its own clock and is ahead of
    the wall clock, else None (the producer's clock)."""
    event_ms = math.ceil(record.event_time * 1000)
    return event_ms if own_clock and event_ms > now_ms else None
