"""Simulated road traffic: one TrafficFlowObserved per detector per counting interval (default 5 min).

Signal model (../shared/reference/hanoi.md, traffic_transit.md):

- Demand, in PCU/h, is the detector's capacity × a peak saturation (hotspots > 1, arterials < 1) × a
  daily profile (weekday peaks 07–09 and 16:30–19, Friday evening worst, weekends lighter and flatter)
  × persistent lognormal noise (AR(1)).
- Speed follows a BPR-type curve, v = v_free / (1 + 1.5·x³) with x = demand / capacity: near free flow
  at night, v_free / 2.5 (16–20 km/h for 40–50 km/h roads) at saturation, lower when over it.
- Measured flow is demand capped at capacity; density = flow / speed; occupancy = density per lane ×
  the effective length of a PCU (car plus detector), capped below 1. Motorcycles are ~85% of vehicles.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from connectors.sources.simulator.kinds import FeedScenario
from connectors.sources.simulator.periodic import PeriodicSimulator
from connectors.sources.simulator.profiles import ar1_step, interpolate, local_hour, poisson, step_rho
from ioc.city import City, Sensor
from ioc.feeds import SimulationOptions
from ioc.feeds.traffic.model import TrafficFlowObserved
from ioc.models import Event

if TYPE_CHECKING:
    from connectors.sources.simulator.scenarios import Scenario

DEFAULT_INTERVAL = timedelta(minutes=5)

# Relative demand by local hour, 1 = the weekday peak: 07–09 and 16:30–19.
WEEKDAY_PROFILE = (
    0.12, 0.08, 0.06, 0.05, 0.08, 0.25, 0.60, 0.95, 1.00, 0.80, 0.65, 0.65,
    0.60, 0.60, 0.65, 0.72, 0.88, 1.00, 1.00, 0.80, 0.60, 0.48, 0.35, 0.20,
)  # fmt: skip
# Weekends: no commute, a late-morning and an evening hump, everything lighter.
WEEKEND_PROFILE = (
    0.15, 0.10, 0.07, 0.05, 0.06, 0.14, 0.30, 0.45, 0.55, 0.60, 0.62, 0.60,
    0.55, 0.52, 0.55, 0.58, 0.62, 0.66, 0.68, 0.65, 0.58, 0.48, 0.36, 0.24,
)  # fmt: skip
# Friday evening is the worst of the week: everyone leaves town or goes out at once.
FRIDAY_EVENING_BOOST = 1.12

# PCU per vehicle class (motorcycle ≈ 0.25–0.3, car 1, bus ≈ 2.5–3) and their daytime share.
PCU = {"motorcycle": 0.28, "car": 1.0, "bus": 2.8, "truck": 2.0}
DAY_SHARE = {"motorcycle": 0.855, "car": 0.12, "bus": 0.015, "truck": 0.01}
# Trucks are banned from the inner city by day; at night they make up a larger share.
NIGHT_SHARE = {"motorcycle": 0.80, "car": 0.13, "bus": 0.01, "truck": 0.06}

PCU_CAPACITY_PER_LANE = 900  # signalised urban arterial, PCU/h/lane (green time about half)
EFFECTIVE_PCU_LENGTH_M = 6.5  # a car's length plus the detector zone
BPR_ALPHA, BPR_BETA = 1.5, 3
MAX_OCCUPANCY = 0.95
HOURLY_RHO, NOISE_SIGMA = 0.8, 0.08


@dataclass(frozen=True)
class Road:
    """What the simulator assumes about the carriageway a detector watches."""

    lanes: int
    free_flow_speed: float  # km/h
    peak_saturation: float  # demand / capacity at the weekday peak

    @property
    def capacity_pcu(self) -> float:
        return self.lanes * PCU_CAPACITY_PER_LANE


def road_of(detector: Sensor) -> Road:
    """Hotspots are saturated at peak; ring roads (fast, wide) less so than inner arterials."""
    free_flow = detector.free_flow_speed or 45.0
    if detector.site_type == "hotspot":
        return Road(lanes=4, free_flow_speed=free_flow, peak_saturation=1.08)
    if free_flow >= 60:
        return Road(lanes=4, free_flow_speed=free_flow, peak_saturation=0.85)
    return Road(lanes=3, free_flow_speed=free_flow, peak_saturation=0.95)


def demand_factor(local: datetime) -> float:
    """Relative demand at a local time: weekday or weekend profile, Friday evening boosted."""
    hour = local_hour(local)
    weekday = local.weekday()
    if weekday >= 5:
        return interpolate(WEEKEND_PROFILE, hour)
    factor = interpolate(WEEKDAY_PROFILE, hour)
    if weekday == 4:  # over 16:00–20:00, reached and left over an hour as people leave work
        ramp = max(0.0, min(1.0, hour - 15.5, 20.5 - hour))
        factor *= 1 + (FRIDAY_EVENING_BOOST - 1) * ramp
    return factor


def bpr_speed(free_flow_speed: float, saturation: float) -> float:
    """Speed, km/h, at a demand/capacity ratio (BPR form with a steep congested tail)."""
    return free_flow_speed / (1 + BPR_ALPHA * saturation**BPR_BETA)


def class_mix(local: datetime) -> dict[str, float]:
    return NIGHT_SHARE if local.hour >= 22 or local.hour < 6 else DAY_SHARE


def pcu_per_vehicle(mix: dict[str, float]) -> float:
    return sum(share * PCU[name] for name, share in mix.items())


def occupancy_of(flow_pcu: float, speed: float, lanes: int) -> float:
    """Fraction of time a lane detector is occupied: density per lane × effective PCU length."""
    density_per_lane_km = flow_pcu / speed / lanes
    return min(MAX_OCCUPANCY, density_per_lane_km * EFFECTIVE_PCU_LENGTH_M / 1000)


class TrafficSimulator(PeriodicSimulator):
    """One TrafficFlowObserved per detector every ``interval`` of event time (``dateObserved`` = start)."""

    feed = "traffic"
    default_interval = DEFAULT_INTERVAL

    def events(self) -> Iterator[TrafficFlowObserved]:
        rng = random.Random(f"traffic-{self.seed}")
        rho = step_rho(HOURLY_RHO, self.interval)
        noise = {d.id: rng.gauss(0, NOISE_SIGMA) for d in self.sensors}
        for moment in self.moments():
            for detector in self.sensors:
                noise[detector.id] = ar1_step(noise[detector.id], rho, NOISE_SIGMA, rng)
                yield self._observation(detector, moment, noise[detector.id], rng)

    def _observation(
        self, detector: Sensor, moment: datetime, noise: float, rng: random.Random
    ) -> TrafficFlowObserved:
        local = moment.astimezone(self.zone)
        road = road_of(detector)
        saturation = road.peak_saturation * demand_factor(local) * math.exp(noise - NOISE_SIGMA**2 / 2)
        speed = bpr_speed(road.free_flow_speed, saturation) * rng.uniform(0.95, 1.05)
        # A detector counts what passes: flow cannot exceed capacity, the queue shows as lower speed.
        flow_pcu = min(saturation, 1.0) * road.capacity_pcu
        mix = class_mix(local)
        seconds = self.interval.total_seconds()
        intensity = poisson(rng, flow_pcu / pcu_per_vehicle(mix) * seconds / 3600)
        counts = split_by_class(intensity, mix, rng)
        counted_pcu = sum(counts[name] * PCU[name] for name in counts) * 3600 / seconds
        return TrafficFlowObserved(
            sensor_id=detector.id,
            date_observed=moment,
            interval_seconds=int(seconds),
            intensity=intensity,
            flow=round(intensity * 3600 / seconds, 1),
            average_vehicle_speed=round(speed, 1),
            occupancy=round(occupancy_of(counted_pcu, speed, road.lanes), 3),
            motorcycle_count=counts["motorcycle"],
            car_count=counts["car"],
            bus_count=counts["bus"],
            truck_count=counts["truck"],
        )


def split_by_class(total: int, mix: dict[str, float], rng: random.Random) -> dict[str, int]:
    """Split a vehicle count by class; motorcycles take the remainder so the counts add up to total."""
    counts = {
        name: min(total, poisson(rng, total * share)) for name, share in mix.items() if name != "motorcycle"
    }
    while sum(counts.values()) > total:
        largest = max(counts, key=counts.__getitem__)
        counts[largest] -= 1
    return {"motorcycle": total - sum(counts.values()), **counts}


def simulate(city: City, options: SimulationOptions) -> TrafficSimulator:
    return TrafficSimulator(
        city, start=options.start, duration=options.duration, seed=options.seed, interval=options.interval
    )


# --- scenarios, with their ground truth (``ioc simulate --scenarios``) ---------------------------------

AREA_SLOWDOWN_SPEED = 0.6  # heavy rain: speed multiplied by this over a whole area
AREA_RAMP = timedelta(minutes=20)  # the rain sets in: the factor falls from 1 to it over this long
AREA_HOPS = 2  # the area: the detector and every detector within this many registry hops
# It starts by day: at night free-flowing traffic barely slows in the rain, so no slow-down shows.
AREA_STARTS = (time(6, 0), time(21, 0))


def _area(city: City, rng: random.Random) -> list[str]:
    """A detector with two or more neighbours, then its area, nearer hops first, by id within one."""
    candidates = sorted((d for d in city.sensors_of("traffic") if len(d.neighbours) >= 2), key=lambda d: d.id)
    if not candidates:
        return []
    centre = rng.choice(candidates)
    area, ring = [centre.id], [centre.id]
    for _ in range(AREA_HOPS):
        ring = sorted({n for s in ring for n in city.sensor(s).neighbours} - set(area))
        area += ring
    return area


def _rained_on(event: Event, scenario: Scenario, city: City) -> Event | None:
    """Speed down to AREA_SLOWDOWN_SPEED as the rain sets in, occupancy up to match.

    Flow and the counts are kept: the same vehicles pass, slower, so density (flow / speed) and with
    it occupancy rise by 1 / factor; cutting flow would also mean re-splitting the class counts."""
    if not isinstance(event, TrafficFlowObserved) or event.average_vehicle_speed is None:
        return event
    setting_in = min(1.0, max(0.0, (event.date_observed - scenario.start) / AREA_RAMP))
    factor = 1 - (1 - AREA_SLOWDOWN_SPEED) * setting_in
    update: dict[str, float] = {"average_vehicle_speed": round(event.average_vehicle_speed * factor, 1)}
    if event.occupancy is not None:
        update["occupancy"] = round(min(MAX_OCCUPANCY, event.occupancy / factor), 3)
    return event.model_copy(update=update)


SCENARIOS = {
    # Heavy rain over part of the city for one and a half to three hours: a detector and its area slow.
    "area_slowdown": FeedScenario(
        ("traffic.area_slowdown",), (90, 180), _area, _rained_on, AREA_STARTS, after=timedelta(days=7)
    ),
}
