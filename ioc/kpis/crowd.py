"""Crowd KPIs at the heritage and tourist zones: daily visitors per zone and the hours a zone spent at or
over 80 % of its safe capacity, per day and over the period, for the city, each area and each zone. Pure:
zone-days in, figures out; ``ioc.kpis.store.crowd_zone_days`` reads them from the 5-minute windows.

**Daily visitors** are the day's peak: the most people in the zone at once (the largest count of its
5-minute windows). The counters report the people *in* the zone (entries minus exits at a gated site, a
head count from a camera: ``CrowdFlowObserved.peopleCount``), not the people who came in, so the number of
distinct visitors is not in the data. The peak counts everyone in it once for sure, whatever they did
before or after: a lower bound of the day's visitors, which a zone that turns its crowd over during the
day exceeds. Summing the counts' rises instead would add each up-tick of counting noise as visitors, and
estimating visitors from person-hours needs a dwell time the data does not hold. An area's or the city's
daily visitors are the sum of its zones' (the zones are separate places: a visitor of two counts twice).

**Hours over 80 %**: the 5-minute windows whose mean count is at least 80 % of the zone's safe capacity
(the registry's, ``ioc.feeds.crowd.index``: the bands "crowded" and "over capacity"), 5 minutes each,
in hours; an area's and the city's are zone-hours, summed over their zones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

OVER_SHARE = 80.0  # % of the safe capacity: where the band "crowded" starts
WINDOW_MINUTES = 5  # the windows the KPIs are read from


@dataclass(frozen=True)
class ZoneDay:
    """One zone's local day, from its 5-minute windows."""

    zone: str
    area: str
    day: date
    safe_capacity: float  # people, the registry's
    peak_people: int  # the most people at once
    windows_over: int  # 5-minute windows at or over 80 % of the safe capacity
    windows: int  # 5-minute windows with a count (none: a day without data, there for its completeness)
    expected: int  # 5-minute windows the day expects (a day under way: until now)


@dataclass(frozen=True)
class CrowdKpis:
    scope: str
    zones: int  # with at least one window in the period
    visitors: int  # the daily visitors, summed over the days
    daily_visitors: dict[date, int]
    peak_share: float | None  # the most people at once as % of the safe capacity, the worst zone's
    hours_over_80: float
    daily_hours_over_80: dict[date, float]
    completeness: float | None  # 5-minute windows received / expected


def hours(windows: int) -> float:
    return round(windows * WINDOW_MINUTES / 60, 2)


def crowd_kpis(scope: str, days: Sequence[ZoneDay]) -> CrowdKpis:
    """The figures of ``scope`` from its zones' days."""
    visitors: dict[date, int] = {}
    over: dict[date, int] = {}
    for zone_day in sorted(days, key=lambda d: d.day):
        if not zone_day.windows:
            continue  # a day without a count is no data, not a day without visitors
        visitors[zone_day.day] = visitors.get(zone_day.day, 0) + zone_day.peak_people
        over[zone_day.day] = over.get(zone_day.day, 0) + zone_day.windows_over
    expected = sum(d.expected for d in days)
    shares = [100 * d.peak_people / d.safe_capacity for d in days if d.windows and d.safe_capacity > 0]
    return CrowdKpis(
        scope=scope,
        zones=len({d.zone for d in days if d.windows}),
        visitors=sum(visitors.values()),
        daily_visitors=visitors,
        peak_share=round(max(shares), 1) if shares else None,
        hours_over_80=hours(sum(over.values())),
        daily_hours_over_80={day: hours(n) for day, n in over.items()},
        completeness=round(sum(min(d.windows, d.expected) for d in days) / expected, 3) if expected else None,
    )


def crowd_scopes(days: Sequence[ZoneDay]) -> list[CrowdKpis]:
    """The city, then each area, then each zone with a count in the period (the days without one count
    in its completeness and the city's)."""
    scopes = [crowd_kpis("city", days)]
    counted = [d for d in days if d.windows]
    for area in sorted({d.area for d in counted}):
        scopes.append(crowd_kpis(area, [d for d in days if d.area == area]))
    for zone in sorted({d.zone for d in counted}):
        scopes.append(crowd_kpis(zone, [d for d in days if d.zone == zone]))
    return scopes
