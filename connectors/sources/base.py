"""A source yields feed events in event-time order; ``run_source`` paces them into Kafka."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator

from connectors.kafka import EventProducer
from ioc.models import Event
from ioc.settings import Settings

BATCH = 500


class Source(ABC):
    @abstractmethod
    def events(self) -> Iterator[Event]:
        """Events in event-time order; may be endless."""


async def run_source(
    source: Source,
    settings: Settings,
    *,
    speed: float | None,
    rate: float | None = None,
    on_sent: Callable[[int, float], None] | None = None,
) -> int:
    """Produce the source's events to their raw topics.

    ``speed`` paces by event time (1 = real time, 10 = ten times faster); ``None`` means as fast as
    possible. ``rate`` caps events per second. ``on_sent(acknowledged, event_seconds)`` reports progress:
    events acknowledged so far and seconds of event time covered. Returns the number acknowledged.
    """
    sent = 0
    first_event_time: float | None = None
    started = time.monotonic()
    batch: list[tuple[str, str, bytes]] = []
    async with EventProducer(settings) as producer:
        for event in source.events():
            moment = event.event_time.timestamp()
            first_event_time = moment if first_event_time is None else first_event_time
            due = started + max(
                (moment - first_event_time) / speed if speed else 0.0,
                (sent + len(batch)) / rate if rate else 0.0,
            )
            if due > time.monotonic() or len(batch) >= BATCH:
                sent += await producer.send_many(batch)
                batch.clear()
                if on_sent:
                    on_sent(sent, moment - first_event_time)
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            batch.append((settings.raw_topic(event.feed), event.sensor_id, event.to_json()))
        sent += await producer.send_many(batch)
    if on_sent and first_event_time is not None:
        on_sent(sent, moment - first_event_time)
    return sent
