"""Simulated crowds: one CrowdFlowObserved per zone every 5 minutes, and the crowd scenarios.

Signal model: people = safe capacity × the zone's share for the hour (its kind's daily profile, on a
weekday, a weekend day, or the walking street's Friday-evening-to-Sunday opening) × the day's factor
(Tết, national holidays, New Year's Eve, a festival night) × persistent lognormal noise (AR(1)); an
ordinary day stays under 80 % of the safe capacity, so what crosses it is a scenario. From the density
(people per m² of the walkable area): the walking speed (Weidmann's fundamental diagram, at a tourist's
stroll) and the share of the time the walkway is occupied.

The zone's kind is its registry ``site_type``: ``walking street`` (Hoàn Kiếm lake, whose streets close
to traffic from Friday 19:00 to Sunday 24:00), ``old quarter`` (night market Friday to Sunday),
``monument`` (Văn Miếu, the Imperial Citadel: open 8:00–17:00), ``square`` (Ba Đình: the mausoleum's
morning visits, the flag ceremonies at 6:00 and 21:00), ``market`` (Đồng Xuân).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from connectors.sources.simulator.kinds import FeedScenario
from connectors.sources.simulator.periodic import PeriodicSimulator
from connectors.sources.simulator.profiles import ar1_step, interpolate, step_rho
from ioc.city import City, Sensor
from ioc.feeds import SimulationOptions
from ioc.feeds.crowd.index import safe_capacity
from ioc.feeds.crowd.model import CrowdFlowObserved
from ioc.models import Event

if TYPE_CHECKING:
    from connectors.sources.simulator.scenarios import Scenario

DEFAULT_INTERVAL = timedelta(minutes=5)
HOURLY_RHO, NOISE_SIGMA = 0.8, 0.12
ORDINARY_CEILING = 0.8  # an ordinary day's share of the safe capacity stays under this

# Share of the safe capacity by local hour (0–23), per kind of zone and kind of day.
PROFILES: dict[str, dict[str, tuple[float, ...]]] = {
    "walking street": {
        # The lake's paths on a weekday: morning exercise, an evening stroll.
        "weekday": (0.02, 0.01, 0.01, 0.01, 0.03, 0.12, 0.15, 0.10, 0.08, 0.08, 0.09, 0.09,
                    0.08, 0.08, 0.09, 0.10, 0.12, 0.16, 0.22, 0.28, 0.30, 0.26, 0.16, 0.06),
        # Walking-street days: the streets closed to traffic, the evenings full.
        "open": (0.12, 0.05, 0.02, 0.01, 0.03, 0.12, 0.16, 0.18, 0.22, 0.28, 0.32, 0.33,
                 0.30, 0.30, 0.32, 0.36, 0.42, 0.50, 0.60, 0.70, 0.74, 0.70, 0.58, 0.35),
    },
    "old quarter": {
        "weekday": (0.04, 0.02, 0.01, 0.01, 0.02, 0.05, 0.10, 0.16, 0.20, 0.22, 0.24, 0.24,
                    0.22, 0.20, 0.22, 0.24, 0.28, 0.32, 0.38, 0.42, 0.42, 0.38, 0.26, 0.10),
        "open": (0.10, 0.04, 0.02, 0.01, 0.02, 0.05, 0.10, 0.16, 0.22, 0.26, 0.30, 0.30,
                 0.28, 0.28, 0.30, 0.32, 0.36, 0.42, 0.52, 0.62, 0.66, 0.62, 0.44, 0.20),
    },
    "monument": {
        "weekday": (0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.03, 0.18, 0.30, 0.34, 0.30,
                    0.22, 0.26, 0.30, 0.28, 0.20, 0.03, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01),
        "open": (0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.03, 0.26, 0.42, 0.48, 0.44,
                 0.34, 0.38, 0.42, 0.40, 0.30, 0.04, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01),
    },
    "square": {
        "weekday": (0.01, 0.01, 0.01, 0.01, 0.02, 0.06, 0.14, 0.20, 0.24, 0.22, 0.14, 0.08,
                    0.06, 0.06, 0.07, 0.08, 0.10, 0.12, 0.14, 0.16, 0.18, 0.22, 0.08, 0.02),
        "open": (0.02, 0.01, 0.01, 0.01, 0.02, 0.08, 0.18, 0.28, 0.34, 0.32, 0.22, 0.12,
                 0.08, 0.08, 0.10, 0.12, 0.16, 0.20, 0.24, 0.28, 0.30, 0.32, 0.12, 0.04),
    },
    "market": {
        "weekday": (0.01, 0.01, 0.01, 0.02, 0.06, 0.14, 0.24, 0.32, 0.36, 0.38, 0.36, 0.30,
                    0.26, 0.26, 0.30, 0.32, 0.30, 0.22, 0.12, 0.10, 0.08, 0.06, 0.03, 0.01),
        "open": (0.02, 0.01, 0.01, 0.02, 0.06, 0.14, 0.26, 0.36, 0.42, 0.44, 0.42, 0.36,
                 0.30, 0.30, 0.34, 0.36, 0.34, 0.28, 0.26, 0.32, 0.34, 0.30, 0.14, 0.04),
    },
}  # fmt: skip

# Days that move crowds, by kind of zone (others: 1). Tết's dates follow the lunar calendar: the table
# covers 2026–2027 (extend it for later years).
TET = (date(2026, 2, 17), date(2027, 2, 6))  # the first day of the lunar new year
NATIONAL_HOLIDAYS = frozenset(
    {date(2026, 1, 1), date(2026, 4, 26), date(2026, 4, 30), date(2026, 5, 1), date(2026, 9, 2),
     date(2027, 1, 1), date(2027, 4, 16), date(2027, 4, 30), date(2027, 5, 1), date(2027, 9, 2)}
)  # fmt: skip
FESTIVAL_NIGHTS = frozenset({date(2026, 9, 25), date(2027, 9, 15)})  # Mid-Autumn: lanterns, Hàng Mã
NEW_YEARS_EVE = frozenset({date(2026, 12, 31), date(2027, 12, 31)})
TET_FACTOR = {"walking street": 1.6, "old quarter": 1.2, "monument": 1.8, "square": 1.3, "market": 0.1}
HOLIDAY_FACTOR = {"walking street": 1.4, "old quarter": 1.3, "monument": 1.5, "square": 1.6, "market": 1.1}
FESTIVAL_FACTOR = {"walking street": 1.3, "old quarter": 1.8}  # evenings
NEW_YEARS_EVE_FACTOR = {"walking street": 1.5, "old quarter": 1.3}  # evenings

STROLL = 0.75  # tourists walk at three quarters of commuters' free speed


def open_weight(kind: str, local: datetime) -> float:
    """How far the zone runs its busy day (0–1): the weekend, and for the walking street and the old
    quarter's night market Friday evening too, filling from 17:00 to 20:00 (crowds come over hours)."""
    weekday = local.weekday()
    if weekday >= 5:
        return 1.0
    if weekday == 4 and kind in ("walking street", "old quarter"):
        return _evening_ramp(local)
    return 0.0


def day_factor(kind: str, local: datetime) -> float:
    """What the calendar does to the zone's crowd at this local time (an evening's festival builds up
    from 17:00 to 20:00)."""
    day = local.date()
    factor = 1.0
    if any(timedelta(days=-1) <= day - first <= timedelta(days=4) for first in TET):
        factor *= TET_FACTOR.get(kind, 1.0)
    elif day in NATIONAL_HOLIDAYS:
        factor *= HOLIDAY_FACTOR.get(kind, 1.0)
    evening = _evening_ramp(local)
    if day in FESTIVAL_NIGHTS:
        factor *= 1 + (FESTIVAL_FACTOR.get(kind, 1.0) - 1) * evening
    if day in NEW_YEARS_EVE:
        factor *= 1 + (NEW_YEARS_EVE_FACTOR.get(kind, 1.0) - 1) * evening
    return factor


def _evening_ramp(local: datetime) -> float:
    hour = local.hour + local.minute / 60
    return min(1.0, max(0.0, (hour - 17) / 3))


def walking_speed(density: float) -> float:
    """Mean walking speed, km/h, at ``density`` people per m² (Weidmann 1993, at a stroll)."""
    if density <= 0:
        return round(3.6 * 1.34 * STROLL, 1)
    free = 1 - math.exp(-1.913 * (1 / density - 1 / 5.4))
    return round(max(0.0, 3.6 * 1.34 * STROLL * free), 1)


class CrowdSimulator(PeriodicSimulator):
    """One CrowdFlowObserved per zone every ``interval`` of event time (``dateObserved`` = start)."""

    feed = "crowd"
    default_interval = DEFAULT_INTERVAL

    def __init__(self, city: City, **options: object) -> None:
        super().__init__(city, **options)  # type: ignore[arg-type]
        self.sensors = [zone for zone in self.sensors if safe_capacity(zone) and _area(zone)]

    def events(self) -> Iterator[CrowdFlowObserved]:
        rng = random.Random(f"crowd-{self.seed}")
        rho = step_rho(HOURLY_RHO, self.interval)
        noise = {zone.id: rng.gauss(0, NOISE_SIGMA) for zone in self.sensors}
        before: dict[str, int] = {}
        for moment in self.moments():
            for zone in self.sensors:
                noise[zone.id] = ar1_step(noise[zone.id], rho, NOISE_SIGMA, rng)
                reading = self._reading(zone, moment, noise[zone.id], before.get(zone.id))
                before[zone.id] = reading.people_count or 0
                yield reading

    def _reading(self, zone: Sensor, moment: datetime, noise: float, before: int | None) -> CrowdFlowObserved:
        local = moment.astimezone(self.zone)
        kind = zone.site_type or "monument"
        profiles = PROFILES.get(kind, PROFILES["monument"])
        hour, weight = local.hour + local.minute / 60, open_weight(kind, local)
        usual = (1 - weight) * interpolate(profiles["weekday"], hour) + weight * interpolate(
            profiles["open"], hour
        )
        share = usual * day_factor(kind, local)
        share = min(ORDINARY_CEILING, share * math.exp(noise - NOISE_SIGMA**2 / 2))
        capacity, area = safe_capacity(zone) or 0.0, _area(zone)
        people = round(capacity * share)
        return _with_people(
            CrowdFlowObserved(
                sensor_id=zone.id,
                date_observed=moment,
                interval_seconds=int(self.interval.total_seconds()),
            ),
            people,
            capacity,
            area,
            before,
        )


def _area(zone: Sensor) -> float:
    value = zone.attributes.get("area_m2")
    return float(value) if isinstance(value, int | float) and value > 0 else 0.0


def _with_people(
    reading: CrowdFlowObserved, people: int, capacity: float, area: float, before: int | None
) -> CrowdFlowObserved:
    """The reading with ``people`` in the zone, and what follows from them: the walking speed, the share
    of the time the walkway is occupied, congestion (90 % of the safe capacity) and the flow's way."""
    density = people / area
    return reading.model_copy(
        update={
            "people_count": people,
            "occupancy": round(1 - math.exp(-3 * density), 3),
            "average_crowd_speed": walking_speed(density),
            "congested": people >= 0.9 * capacity,
            "direction": "inbound" if before is None or people >= before else "outbound",
        }
    )


def simulate(city: City, options: SimulationOptions) -> CrowdSimulator:
    return CrowdSimulator(
        city, start=options.start, duration=options.duration, seed=options.seed, interval=options.interval
    )


# --- scenarios, with their ground truth (``ioc simulate --scenarios``) ---------------------------------

OVERCROWDED_SHARE = 1.2  # an overcrowded zone holds this much of its safe capacity
SURGE_RISE, SURGE_CEILING = 0.4, 0.88  # a surge adds this share within minutes, up to this share


def _zone(city: City, rng: random.Random) -> list[str]:
    zones = [zone.id for zone in city.sensors_of("crowd") if safe_capacity(zone) and _area(zone)]
    return [rng.choice(zones)] if zones else []


def _scaled(event: Event, city: City, people_of: Callable[[int, float], int]) -> Event:
    """The reading with the people the scenario puts in the zone, and what follows from them."""
    assert isinstance(event, CrowdFlowObserved)
    zone = city.sensor(event.sensor_id)
    capacity, area = safe_capacity(zone), _area(zone) if zone else 0.0
    if capacity is None or not area:
        return event
    people = people_of(event.people_count or 0, capacity)
    return _with_people(event, people, capacity, area, event.people_count)


def _overcrowded(event: Event, scenario: Scenario, city: City) -> Event | None:
    return _scaled(event, city, lambda people, capacity: max(people, round(OVERCROWDED_SHARE * capacity)))


def _surged(event: Event, scenario: Scenario, city: City) -> Event | None:
    def surge(people: int, capacity: float) -> int:
        return max(people, min(round(SURGE_CEILING * capacity), people + round(SURGE_RISE * capacity)))

    return _scaled(event, city, surge)


def _offline(event: Event, scenario: Scenario, city: City) -> Event | None:
    return None


SCENARIOS = {
    # A zone over its safe capacity for one to two hours (a festival crowd, an event let out).
    "crowd_overcrowding": FeedScenario(("crowd.over_capacity",), (60, 120), _zone, _overcrowded),
    # Four tenths of the safe capacity more within minutes (a show's end, a rain shower's shelter).
    "crowd_surge": FeedScenario(("crowd.surge",), (30, 45), _zone, _surged),
    # The zone's counter stops reporting for one to two hours.
    "counter_offline": FeedScenario(("health.stale",), (60, 120), _zone, _offline),
}
