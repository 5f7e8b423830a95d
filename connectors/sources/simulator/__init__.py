"""Simulated Hanoi feeds, one module per feed, and ``CitySimulator`` that merges them.

Every simulator is deterministic: the same seed, start and options give byte-identical events.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta

from connectors.sources.base import Source
from connectors.sources.simulator.air import AirSimulator
from connectors.sources.simulator.traffic import TrafficSimulator
from connectors.sources.simulator.transit import TransitSimulator
from connectors.sources.simulator.water import WaterSimulator
from ioc.city import City
from ioc.models import Event
from ioc.settings import FEEDS

# Equal event times across feeds come out in this fixed order, so a merged run is reproducible.
FEED_RANK = {feed: rank for rank, feed in enumerate(FEEDS)}


class CitySimulator(Source):
    """Several feed sources merged into one stream in event-time order."""

    def __init__(self, sources: Sequence[Source]) -> None:
        self.sources = list(sources)

    def events(self) -> Iterator[Event]:
        # Each source is already in event-time order; heapq.merge keeps ties in source order.
        return heapq.merge(*(source.events() for source in self.sources), key=_merge_key)


def _merge_key(event: Event) -> tuple[datetime, int]:
    return event.event_time, FEED_RANK[event.feed]


def parse_feeds(spec: str) -> list[str]:
    """``"air,traffic"`` → ``["traffic", "air"]`` (canonical order); unknown names are an error."""
    names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = sorted(set(names) - set(FEEDS))
    if unknown or not names:
        raise ValueError(
            f"unknown feed(s) {', '.join(unknown) or '(none given)'}: choose from {', '.join(FEEDS)}"
        )
    return [feed for feed in FEEDS if feed in names]


def city_simulator(
    city: City,
    feeds: Iterable[str],
    *,
    start: datetime,
    duration: timedelta | None,
    seed: int,
    card_key: bytes,
    card_key_id: str,
    interval: timedelta | None = None,
) -> CitySimulator:
    """The chosen feeds' simulators merged. ``interval`` overrides each sampled feed's default."""
    common = {"start": start, "duration": duration, "seed": seed}
    builders = {
        "air": lambda: AirSimulator(city, **common, interval=interval),
        "traffic": lambda: TrafficSimulator(city, **common, interval=interval),
        "water": lambda: WaterSimulator(city, **common, interval=interval),
        "transit": lambda: TransitSimulator(city, **common, card_key=card_key, card_key_id=card_key_id),
    }
    chosen = sorted(set(feeds), key=FEED_RANK.__getitem__)
    return CitySimulator([builders[feed]() for feed in chosen])


__all__ = [
    "AirSimulator",
    "CitySimulator",
    "TrafficSimulator",
    "TransitSimulator",
    "WaterSimulator",
    "city_simulator",
    "parse_feeds",
]
