"""Simulated Hanoi feeds: ``CitySimulator`` merges the registered feeds' simulators (each in its feed's
package, ``ioc/feeds/<feed>/simulator.py``), and the machinery they share (``periodic``, ``profiles``).

Every simulator is deterministic: the same seed, start and options give byte-identical events.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta

from connectors.sources.base import Source
from ioc.city import City
from ioc.feeds import FEEDS, SimulationOptions, feed
from ioc.models import Event

# Equal event times across feeds come out in this fixed order, so a merged run is reproducible.
FEED_RANK = {name: rank for rank, name in enumerate(FEEDS)}


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
    options = SimulationOptions(start, duration, seed, interval, card_key, card_key_id)
    chosen = sorted(set(feeds), key=FEED_RANK.__getitem__)
    return CitySimulator([feed(name).simulate(city, options) for name in chosen])


__all__ = ["CitySimulator", "city_simulator", "parse_feeds"]
