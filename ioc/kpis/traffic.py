"""Traffic KPIs (``../shared/reference/kpis.md``): the Travel Time Index at the weekday peaks and the
congested detector-hours. Pure: detector intervals in, figures out; ``ioc.kpis.store`` reads them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time

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


@dataclass(frozen=True)
class DetectorDay:
    """One detector's local day, as much of it as its period's KPIs need: what the day cache keeps."""

    detector: str
    area: str
    day: date
    weighted: float  # Σ TTI × flow weight over the day's peak intervals
    total: float  # Σ flow weight over them
    peak_intervals: int
    congested_hours: int


def detector_days(peaks: Sequence[Interval], hours: Sequence[Interval]) -> list[DetectorDay]:
    """Each detector's local days that have an interval: ``peaks`` its short intervals (5 minutes), of
    which those at a weekday peak count for the TTI; ``hours`` its hourly ones, for the congested hours."""
    sums: dict[tuple[str, str, date], list[float]] = {}
    for interval in peaks:
        day = sums.setdefault((interval.detector, interval.area, interval.start.date()), [0.0, 0.0, 0, 0])
        if not at_peak(interval.start):
            continue
        index = travel_time_index(interval.speed, interval.free_flow) if interval.speed > 0 else None
        if index is None:
            continue
        weight = max(interval.flow, 1.0)  # an interval with no count still says how slow it was
        day[0] += index * weight
        day[1] += weight
        day[2] += 1
    for hour in hours:
        day = sums.setdefault((hour.detector, hour.area, hour.start.date()), [0.0, 0.0, 0, 0])
        # Standing still is F.
        day[3] += hour.speed == 0 or (
            hour.speed > 0 and level_of_service(hour.speed, hour.free_flow) in CONGESTED
        )
    return [
        DetectorDay(detector, area, day, weighted, total, int(counted), int(congested))
        for (detector, area, day), (weighted, total, counted, congested) in sorted(sums.items())
    ]


def period_traffic(scope: str, days: Sequence[DetectorDay]) -> TrafficKpis:
    """The KPIs of ``days`` (the scope's detector-days in the period), summed in day order: the same
    figures whether the days come from the cache or from the windows."""
    weighted = total = 0.0
    for day in days:
        weighted += day.weighted
        total += day.total
    return TrafficKpis(
        scope=scope,
        detectors=len({d.detector for d in days}),
        peak_intervals=sum(d.peak_intervals for d in days),
        tti_peak=round(weighted / total, 2) if total else None,
        congested_hours=sum(d.congested_hours for d in days),
    )


def traffic_kpis(scope: str, peaks: Sequence[Interval], hours: Sequence[Interval]) -> TrafficKpis:
    """``peaks``: the scope's short intervals (5 minutes), of which those at a weekday peak count for the
    TTI; ``hours``: its hourly intervals, for the congested hours."""
    return period_traffic(scope, detector_days(peaks, hours))
