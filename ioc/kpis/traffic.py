"""Traffic KPIs (``../shared/reference/kpis.md``): the Travel Time Index at the weekday peaks and the
congested detector-hours. Pure: detector intervals in, figures out; ``ioc.kpis.store`` reads them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time

from ioc.indices.traffic import level_of_service, travel_time_index

# The weekday peaks, local time: an interval counts when it starts inside one.
PEAKS = ((time(7, 0), time(9, 0)), (time(16, 30), time(19, 0)))
CONGESTED = frozenset({"E", "F"})


@dataclass(frozen=True)
class Interval:
    """One detector's window: its local start, mean speed (km/h) and flow (vehicles), and the
    detector's free-flow speed from the registry."""

    detector: str
    area: str
    start: datetime  # local
    speed: float
    flow: float
    free_flow: float


def at_peak(start: datetime) -> bool:
    return start.weekday() < 5 and any(begin <= start.time() < end for begin, end in PEAKS)


@dataclass(frozen=True)
class TrafficKpis:
    scope: str
    detectors: int  # with at least one interval in the period
    peak_intervals: int
    tti_peak: float | None  # flow-weighted mean of free-flow / observed speed over peak intervals
    congested_hours: int  # detector-hours at level of service E or F


def traffic_kpis(scope: str, peaks: Sequence[Interval], hours: Sequence[Interval]) -> TrafficKpis:
    """``peaks``: the scope's short intervals (5 minutes), of which those at a weekday peak count for the
    TTI; ``hours``: its hourly intervals, for the congested hours."""
    weighted = total = 0.0
    counted = 0
    for interval in peaks:
        if not at_peak(interval.start):
            continue
        index = travel_time_index(interval.speed, interval.free_flow) if interval.speed > 0 else None
        if index is None:
            continue
        weight = max(interval.flow, 1.0)  # an interval with no count still says how slow it was
        weighted += index * weight
        total += weight
        counted += 1
    congested = sum(1 for h in hours if h.speed > 0 and level_of_service(h.speed, h.free_flow) in CONGESTED)
    congested += sum(1 for h in hours if h.speed == 0)  # standing still is F
    return TrafficKpis(
        scope=scope,
        detectors=len({i.detector for i in (*peaks, *hours)}),
        peak_intervals=counted,
        tti_peak=round(weighted / total, 2) if total else None,
        congested_hours=congested,
    )
