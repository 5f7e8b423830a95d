"""Scenario kinds a feed brings itself: its simulator module's ``SCENARIOS`` (kind → ``FeedScenario``),
which ``ioc simulate --scenarios`` plans and injects beside the built-in kinds
(``connectors.sources.simulator.scenarios``), with their ground truth."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import time, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.sources.simulator.scenarios import Scenario
    from ioc.city import City
    from ioc.models import Event


@dataclass(frozen=True)
class FeedScenario:
    rules: tuple[str, ...]  # the alert rules it should fire (the ground truth)
    minutes: tuple[int, int]  # shortest and longest window, minutes
    entities: Callable[[City, random.Random], list[str]]  # where: the first is the main one; [] none fits
    # A reading of one of its entities while it lasts, as the scenario makes it (None: dropped); the city
    # is the registry the run simulates.
    alter: Callable[[Event, Scenario, City], Event | None]
    # The local hours it may start in, [first, last) (rain slows a full road, not an empty night one);
    # None: any time.
    starts: tuple[time, time] | None = None
    # How far into a run it may start at the earliest: what must be learned first (an area's slow-down
    # is told from a rush hour by each road's normal for that hour of the week, learned over a week).
    after: timedelta = timedelta(0)

    def starts_at(self, local: time) -> bool:
        return self.starts is None or self.starts[0] <= local < self.starts[1]
