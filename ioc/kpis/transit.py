"""Transit KPIs (``../shared/reference/kpis.md``): boardings per station, line, area and day, the peak
15 minutes of each station, its completeness (``transit.gate_availability``: the share of its service hours
with a tap, ``expected_hours``), and metro origin–destination flows per day, published only for pairs with at
least k trips (``ioc.indices.transit``: its matching of entries to exits). Pure: counts and taps in,
figures out; ``ioc.kpis.store`` reads them.

Only the daily cells are published: hourly ones would let a reader subtract the published hours from a
published day and recover a suppressed hour.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from ioc.indices.transit import DEFAULT_MIN_TRIPS_PER_CELL, MetroTap, origin_destination_flows, service_day


@dataclass(frozen=True)
class StationDayTaps:
    """One station's boardings on one line in a local day, its busiest 15 minutes (over its lines), and
    the service hours in which it reported a tap."""

    station: str
    area: str
    line: str
    day: date
    boardings: int
    peak_15min: int
    hours_with_taps: int
    service_hours: int


def expected_hours(served: set[int], reported: set[int], hour_now: int | None = None) -> set[int]:
    """The local service hours in which a station is expected to report a tap on a day: every one of a
    closed day; of today (``hour_now``: the local hour now), those already over, and the one under way
    only once it has a tap (an hour is not silent before it ends), as data completeness expects today's
    readings only until now."""
    if hour_now is None:
        return set(served)
    return {hour for hour in served if hour < hour_now or (hour == hour_now and hour in reported)}


@dataclass
class TransitScope:
    scope: str
    kind: str  # city, area, line or station
    stations: int
    boardings: int = 0
    daily_boardings: dict[date, int] = field(default_factory=dict)
    peak_15min: int | None = None  # stations only: their busiest 15 minutes of the period
    completeness: float | None = None  # station service-hours with a tap / station service-hours


def transit_scopes(days: Sequence[StationDayTaps]) -> list[TransitScope]:
    """The city, each area, each line and each station, in that order (each sorted by id)."""
    groups: dict[tuple[str, str], list[StationDayTaps]] = defaultdict(list)
    for d in days:
        for kind in ("area", "line", "station"):
            groups[(kind, getattr(d, kind))].append(d)
    # area < line < station: the kinds sort in the order the answer lists them.
    keys = [("city", "city", list(days))]
    keys += [(scope, kind, group) for (kind, scope), group in sorted(groups.items())]
    scopes = []
    for scope, kind, mine in keys:
        daily: Counter[date] = Counter()
        for d in mine:
            daily[d.day] += d.boardings
        # A station on two lines has one row per line but one set of gates: count its hours once.
        hours = {(d.station, d.day): (d.hours_with_taps, d.service_hours) for d in mine}
        expected = sum(h[1] for h in hours.values())
        scopes.append(
            TransitScope(
                scope=scope,
                kind=kind,
                stations=len({d.station for d in mine}),
                boardings=sum(daily.values()),
                daily_boardings=dict(sorted(daily.items())),
                peak_15min=max((d.peak_15min for d in mine), default=None) if kind == "station" else None,
                completeness=round(sum(h[0] for h in hours.values()) / expected, 3) if expected else None,
            )
        )
    return scopes


@dataclass(frozen=True)
class DayTrips:
    """One service day's metro trips per station pair, every pair (small ones too): what the history
    store keeps per day so that a month is not matched again from its taps; never published as it is."""

    day: date
    pairs: dict[tuple[str, str], int]  # (origin, destination) → trips
    unmatched_entries: int
    unmatched_exits: int


@dataclass(frozen=True)
class DayFlows:
    """One service day's metro trips: the station pairs with at least k trips, and what was left out."""

    day: date
    cells: dict[tuple[str, str], int]  # (origin, destination) → trips, each ≥ k
    trips: int
    suppressed_trips: int
    suppressed_cells: int
    unmatched_entries: int
    unmatched_exits: int


def day_trips(taps: Iterable[MetroTap], day: date | None = None) -> list[DayTrips]:
    """Trips per service day and station pair: each card's entry matched to its next exit
    (``origin_destination_flows``, per hour of entry, summed to the day). ``day``: every tap is of that
    service day (saves finding each one's)."""
    by_day: dict[date, list[MetroTap]] = defaultdict(list)
    if day is not None:
        by_day[day] = list(taps)
    else:
        for tap in taps:
            by_day[service_day(tap.time)].append(tap)
    found = []
    for day, day_taps in sorted(by_day.items()):
        if not day_taps:
            continue
        hourly = origin_destination_flows(day_taps, k=1)  # k=1: every trip; the day's cells are judged
        pairs: Counter[tuple[str, str]] = Counter()
        for (origin, destination, _), trips in hourly.cells.items():
            pairs[(origin, destination)] += trips
        found.append(
            DayTrips(day, dict(sorted(pairs.items())), hourly.unmatched_entries, hourly.unmatched_exits)
        )
    return found


def suppressed(trips: DayTrips, k: int = DEFAULT_MIN_TRIPS_PER_CELL) -> DayFlows:
    """The day as it may be published: pairs under ``k`` trips left out (not rounded), their trips and
    count summed."""
    small = [n for n in trips.pairs.values() if n < k]
    return DayFlows(
        day=trips.day,
        cells={pair: n for pair, n in trips.pairs.items() if n >= k},
        trips=sum(trips.pairs.values()),
        suppressed_trips=sum(small),
        suppressed_cells=len(small),
        unmatched_entries=trips.unmatched_entries,
        unmatched_exits=trips.unmatched_exits,
    )


def daily_flows(taps: Iterable[MetroTap], k: int = DEFAULT_MIN_TRIPS_PER_CELL) -> list[DayFlows]:
    """Trips per service day and station pair, cells under ``k`` trips suppressed."""
    return [suppressed(day, k) for day in day_trips(taps)]
