"""The KPIs' local days, each closed one kept in the history store (``kpi_days``) so that a month is not
computed again from its windows on every read.

A day's values are its finest scopes': each air station-day, traffic detector-day, water station-day,
transit station-day per line, crowd zone-day and sensor-day of readings. A period's stations, areas and
city are put together from them on every read (``ioc.kpis.report``): a month's mean of daily means or its
flow-weighted TTI is not a sum of daily area figures. Today (and any day after it) is computed on every
read and never kept; a closed day is computed once, then again when the sink wrote a window or fare tap of
it since (``kpi_days_changed``: late data), when it was kept under other definitions, standard, registry or
reading intervals (its ``basis``), or by ``ioc kpi recompute``. The alert KPIs (MTTA, MTTR) are read from
the alert events every time (an alert opened on a past day is acknowledged and resolved later, and daily
medians do not make a month's), and the metro flows have a day cache of their own (``metro_trips``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from ioc.city import City
from ioc.kpis import air, traffic, water
from ioc.kpis.completeness import SensorDay
from ioc.kpis.crowd import ZoneDay
from ioc.kpis.store import (
    crowd_zone_days,
    readings_per_day,
    rematch_days,
    station_days,
    traffic_intervals,
    transit_station_days,
    water_samples,
)
from ioc.kpis.transit import StationDayTaps

# The day values' definitions: bump it when one changes, and every kept day is computed again.
KPI_VERSION = 3  # 2: crowd zone-days; 3: a station-day's US AQI
RECOMPUTE_DAYS = 31  # days computed per pass by a recompute: a month's windows at a time


@dataclass(frozen=True)
class KpiDay:
    """One local day's values of every station, detector and sensor."""

    day: date
    air: list[air.DayValues] = field(default_factory=list)
    traffic: list[traffic.DetectorDay] = field(default_factory=list)
    water: list[water.StationDay] = field(default_factory=list)
    transit: list[StationDayTaps] = field(default_factory=list)
    readings: list[SensorDay] = field(default_factory=list)
    crowd: list[ZoneDay] = field(default_factory=list)


KINDS: dict[str, type] = {
    "air": air.DayValues,
    "traffic": traffic.DetectorDay,
    "water": water.StationDay,
    "transit": StationDayTaps,
    "readings": SensorDay,
    "crowd": ZoneDay,
}


def basis(city: City, intervals: Mapping[str, int]) -> str:
    """What a day's values were computed with: the definitions' version, the standard, the registry
    (areas, free-flow speeds, water classes, lines) and the reading intervals."""
    text = f"{KPI_VERSION}|{air.STANDARD}|{city.model_dump_json()}|{sorted(intervals.items())}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@cache
def _names(kind: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(kind) if f.name != "day")


@cache
def _day_at(kind: type) -> int:
    """Where ``day`` is among ``kind``'s fields (a kept row leaves it out)."""
    return [f.name for f in fields(kind)].index("day")


def to_json(day: KpiDay) -> str:
    """A day as kept: per kind, each value's fields but its day, in field order."""
    return json.dumps(
        {kind: [[getattr(value, name) for name in _names(cls)] for value in getattr(day, kind)]
         for kind, cls in KINDS.items()}
    )  # fmt: skip


def from_json(day: date, body: Mapping[str, list[list[Any]]]) -> KpiDay:
    """The day ``to_json`` kept."""
    found: dict[str, list[Any]] = {}
    for kind, cls in KINDS.items():
        at, size = _day_at(cls), len(_names(cls))
        if any(len(row) != size for row in body[kind]):
            raise ValueError(f"a kept {kind} value of {day} has not the fields of {cls.__name__}")
        # Positionally: thousands of values a month, and keywords would cost about twice as much.
        found[kind] = [cls(*row[:at], day, *row[at:]) for row in body[kind]]
    # JSON has no tuples: a day's exceeded pollutants come back as one.
    found["air"] = [_with_tuple(v) for v in found["air"]]
    return KpiDay(day, **found)


def _with_tuple(values: air.DayValues) -> air.DayValues:
    return air.DayValues(**{**vars(values), "exceeded": tuple(values.exceeded)})


def each_day(first: date, last: date) -> Iterator[date]:
    for n in range((last - first).days + 1):
        yield first + timedelta(days=n)


def runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive ones, [first, last] each."""
    found: list[tuple[date, date]] = []
    for day in days:
        if found and found[-1][1] + timedelta(days=1) == day:
            found[-1] = (found[-1][0], day)
        else:
            found.append((day, day))
    return found


def compute_days(
    connection: psycopg.Connection,
    city: City,
    first: date,
    last: date,
    intervals: Mapping[str, int],
    now: datetime,
) -> dict[date, KpiDay]:
    """The local days [first, last] from the windows and counts as they are now."""
    today = now.astimezone(ZoneInfo(city.timezone)).date()
    days = {day: KpiDay(day) for day in each_day(first, last)}
    traffic_windows = [traffic_intervals(connection, city, first, last, w) for w in ("5m", "1h")]
    water_windows = [water_samples(connection, city, first, last, w) for w in ("15m", "1h")]
    found: list[tuple[str, list[Any]]] = [
        ("air", [air.day_values(d) for d in station_days(connection, city, first, last)]),
        ("traffic", traffic.detector_days(*traffic_windows)),
        ("water", water.station_days(*water_windows)),
        # A day to come has no station-days of taps yet (not zeros).
        (
            "transit",
            transit_station_days(connection, city, first, min(last, today), now) if first <= today else [],
        ),
        ("readings", readings_per_day(connection, city, first, last, dict(intervals), now)),
        ("crowd", crowd_zone_days(connection, city, first, last, now)),
    ]
    for kind, values in found:
        for value in values:
            getattr(days[value.day], kind).append(value)
    return days


def kpi_days(
    connection: psycopg.Connection,
    city: City,
    first: date,
    last: date,
    intervals: Mapping[str, int],
    now: datetime,
    kept_days: bool = True,
) -> list[KpiDay]:
    """The local days [first, last]: each closed one as kept, unless it is not kept yet, stale (late data)
    or of another basis, which is computed and kept; today and later days computed. Without
    ``kept_days``, every day computed from the rows and nothing kept (what the kept days must equal)."""
    if not kept_days:
        return list(compute_days(connection, city, first, last, intervals, now).values())
    today = now.astimezone(ZoneInfo(city.timezone)).date()
    closed = min(last, today - timedelta(days=1))
    current = basis(city, intervals)
    kept: dict[date, Any] = {}
    marks: dict[date, datetime] = {}
    if first <= closed:
        marks = dict(connection.execute(
            "SELECT day, changed_at FROM kpi_days_changed WHERE day BETWEEN %s AND %s", (first, closed)
        ).fetchall())  # fmt: skip
        kept = dict(connection.execute(
            "SELECT day, body FROM kpi_days WHERE day BETWEEN %s AND %s AND basis = %s",
            (first, closed, current),
        ).fetchall())  # fmt: skip
    wanted = [day for day in each_day(first, last) if day > closed or day not in kept or day in marks]
    computed: dict[date, KpiDay] = {}
    for run_first, run_last in runs(wanted):
        computed |= compute_days(connection, city, run_first, run_last, intervals, now)
    keep(connection, [day for day in computed.values() if day.day <= closed], current, marks)
    return [computed[day] if day in computed else from_json(day, kept[day]) for day in each_day(first, last)]


def keep(
    connection: psycopg.Connection, days: list[KpiDay], current: str, marks: Mapping[date, datetime]
) -> None:
    """Keep closed ``days`` (replacing what was kept) and clear their stale marks, each unless the sink
    marked it again since it was read (its new rows then count at the next read)."""
    if not days:
        return
    connection.execute(
        "INSERT INTO kpi_days (day, basis, computed_at, body) "
        "SELECT day, %s, now(), body FROM unnest(%s::date[], %s::json[]) AS kept (day, body) "
        "ON CONFLICT (day) DO UPDATE SET basis = excluded.basis, computed_at = excluded.computed_at, "
        "body = excluded.body",
        (current, [d.day for d in days], [to_json(d) for d in days]),
    )
    for day in sorted(d.day for d in days if d.day in marks):  # in day order, as the sink marks them
        connection.execute(
            "DELETE FROM kpi_days_changed WHERE day = %s AND changed_at = %s", (day, marks[day])
        )


def recompute(
    url: str, city: City, first: date, last: date, intervals: Mapping[str, int], now: datetime
) -> list[date]:
    """Compute the closed local days of [first, last] again from the store's rows and keep them, their
    metro trips matched again too; the days done. Today and later days are computed on every read."""
    today = now.astimezone(ZoneInfo(city.timezone)).date()
    closed = min(last, today - timedelta(days=1))
    current = basis(city, intervals)
    done: list[date] = []
    for start in each_day(first, closed):
        if (start - first).days % RECOMPUTE_DAYS:
            continue
        end = min(start + timedelta(days=RECOMPUTE_DAYS - 1), closed)
        with psycopg.connect(url) as connection:  # a pass per transaction: kept as it goes
            marks = dict(connection.execute(
                "SELECT day, changed_at FROM kpi_days_changed WHERE day BETWEEN %s AND %s", (start, end)
            ).fetchall())  # fmt: skip
            computed = compute_days(connection, city, start, end, intervals, now)
            keep(connection, list(computed.values()), current, marks)
            rematch_days(connection, city, start, end)
        done += sorted(computed)
    return done
