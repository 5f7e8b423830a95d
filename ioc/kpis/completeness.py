"""Data completeness (``../shared/reference/kpis.md``, ``ops.data_completeness``): readings received over
readings expected from each sensor's reporting interval, per sensor, area and city, per local day and
over the period. Pure: sensor-days in, figures out; ``ioc.kpis.store`` counts the readings.

A sensor-day counts at most what it was expected to send, so one sensor's repeats cannot make up for
another's silence; today is expected only up to now.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class SensorDay:
    feed: str
    sensor: str
    area: str
    day: date
    received: int
    expected: int

    @property
    def counted(self) -> int:
        return min(self.received, self.expected)


def expected_readings(day: date, interval_seconds: int, zone: ZoneInfo, now: datetime) -> int:
    """Readings a sensor reporting every ``interval_seconds`` sends in the local ``day`` until ``now``."""
    start = datetime.combine(day, time(), zone)
    end = min(datetime.combine(day + timedelta(days=1), time(), zone), now)
    return max(int((end - start).total_seconds() // interval_seconds), 0)


@dataclass
class CompletenessScope:
    feed: str
    scope: str  # city, an area, or a sensor
    sensors: int
    received: int  # readings, each sensor-day at most its expected count
    expected: int
    completeness: float | None
    daily: dict[date, float] = field(default_factory=dict)  # local day → completeness


def completeness_scopes(days: Sequence[SensorDay]) -> list[CompletenessScope]:
    """Per feed: the city, each area, each sensor (each sorted by id)."""
    scopes = []
    for feed in sorted({d.feed for d in days}):
        mine = [d for d in days if d.feed == feed]
        areas: dict[str, list[SensorDay]] = defaultdict(list)
        sensors: dict[str, list[SensorDay]] = defaultdict(list)
        for d in mine:
            areas[d.area].append(d)
            sensors[d.sensor].append(d)
        groups = [("city", mine), *sorted(areas.items()), *sorted(sensors.items())]
        scopes += [_scope(feed, scope, group) for scope, group in groups]
    return scopes


def _scope(feed: str, scope: str, days: Sequence[SensorDay]) -> CompletenessScope:
    per_day: dict[date, list[int]] = {}
    received = expected = 0
    for d in days:  # one pass: a month of a city's sensor-days, three times over (city, area, sensor)
        counted, totals = d.counted, per_day.setdefault(d.day, [0, 0])
        totals[0] += counted
        totals[1] += d.expected
        received += counted
        expected += d.expected
    return CompletenessScope(
        feed=feed,
        scope=scope,
        sensors=len({d.sensor for d in days}),
        received=received,
        expected=expected,
        completeness=_share(received, expected),
        daily={day: share for day, (n, e) in sorted(per_day.items()) if (share := _share(n, e)) is not None},
    )


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None
