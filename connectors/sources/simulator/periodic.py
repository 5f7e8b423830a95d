"""What the sampled feeds (air, traffic, water) share: every sensor of a kind reports once an interval."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo

from connectors.sources.base import Source
from ioc.city import City


class PeriodicSimulator(Source):
    feed: ClassVar[str]
    default_interval: ClassVar[timedelta]

    def __init__(
        self,
        city: City,
        *,
        start: datetime,
        interval: timedelta | None = None,
        duration: timedelta | None = None,
        seed: int = 1,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.sensors = city.sensors_of(self.feed)
        self.zone = ZoneInfo(city.timezone)
        self.start, self.duration, self.seed = start, duration, seed
        self.interval = interval or self.default_interval

    def moments(self) -> Iterator[datetime]:
        """Event times of the reporting rounds, from ``start`` for ``duration`` (endless without)."""
        moment = self.start
        while self.duration is None or moment < self.start + self.duration:
            yield moment
            moment += self.interval
