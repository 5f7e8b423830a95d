"""A district-scoped key's KPIs (``operator@hoan-kiem+dong-da``, least privilege): the report cut down to
what belongs to its districts, nothing recomputed, nothing of another district or of the whole city.

Kept: the rows whose scope is one of the districts (each area's own row, computed per area by the report)
or a station, detector, sensor or zone the registry places in one of them; the station-days of their air
stations; a transit line only when every station of it is in them. Dropped: every ``city`` row, what the
registry does not place (``unregistered:`` sensors), and the metro origin–destination flows (each day's
totals, suppressed and unmatched trips are the whole network's). The ``operations`` rows (MTTA, MTTR) are
kept only when the report was built from the districts' own alert lifecycles (``read_report``'s
``districts``): the city's would count every district's alerts.
"""

from __future__ import annotations

from collections.abc import Collection

from pydantic import Field

from ioc.city import City
from ioc.kpis.report import KpiPeriod, KpiPeriods, Kpis, Transit

# What a scoped answer leaves out, and why: said in the answer (``withheld``), not left to be guessed.
WITHHELD_OD = "transit.odFlows: each day's trips, suppressed and unmatched totals are the whole network's"
WITHHELD_LINES = "transit lines with a station outside the districts"
WITHHELD_OPERATIONS = "operations: not built from the districts' own alerts"


class DistrictKpis(Kpis):
    """A report cut down to districts (``for_districts``)."""

    districts: list[str] = Field(description="The districts the key is scoped to: the only ones reported.")
    withheld: list[str] = Field(description="What the whole city's answer has that this one leaves out.")


class DistrictKpiPeriods(KpiPeriods):
    """Each period's report cut down to districts (``periods_for_districts``)."""

    districts: list[str] = Field(description="The districts the key is scoped to: the only ones reported.")
    withheld: list[str] = Field(description="What the whole city's answer has that this one leaves out.")


def in_districts(scope: str, city: City, districts: Collection[str]) -> bool:
    """Whether a KPI row's scope is one of ``districts`` or a sensor (station, detector, zone …) the
    registry places in one; ``city`` and unregistered sensors are in none."""
    if scope in districts:
        return True
    sensor = city.sensor(scope)
    return sensor is not None and sensor.district in districts


def for_districts(
    report: Kpis, city: City, districts: frozenset[str], operations_of_districts: bool = False
) -> DistrictKpis:
    """``report`` with only ``districts``' rows (pure). ``operations_of_districts``: the report's
    ``operations`` were computed from the districts' alerts only, so they are kept; else dropped."""
    return DistrictKpis(**_cut(report, city, districts, operations_of_districts))


def periods_for_districts(
    answer: KpiPeriods, city: City, districts: frozenset[str], operations_of_districts: bool = False
) -> DistrictKpiPeriods:
    """Each period's report cut down as ``for_districts`` does; a period's ``completeness`` becomes its
    districts' (their area rows' received / expected), not the city's."""
    periods = []
    for period in answer.periods:
        fields = _cut(period, city, districts, operations_of_districts)
        areas = [c for c in fields["data_completeness"] if c.scope in districts]
        expected = sum(c.expected for c in areas)
        received = sum(c.received for c in areas)
        fields["completeness"] = round(received / expected, 3) if expected else None
        del fields["districts"], fields["withheld"]
        periods.append(KpiPeriod(**fields))
    return DistrictKpiPeriods(
        period=answer.period,
        first_day=answer.first_day,
        last_day=answer.last_day,
        timezone=answer.timezone,
        standard=answer.standard,
        periods=periods,
        districts=sorted(districts),
        withheld=_withheld(operations_of_districts),
    )


def _cut(report: Kpis, city: City, districts: frozenset[str], operations_of_districts: bool) -> dict:
    def mine(scope: str) -> bool:
        return in_districts(scope, city, districts)

    def line_inside(line_id: str) -> bool:
        line = city.line(line_id)
        return line is not None and all(mine(station) for station in line.stations)

    scopes = [
        t
        for t in report.transit.scopes
        if (t.kind == "line" and line_inside(t.scope)) or (t.kind in ("area", "station") and mine(t.scope))
    ]
    return {
        **dict(report),
        "air": [a for a in report.air if mine(a.scope)],
        "air_days": [d for d in report.air_days if mine(d.station)],
        "traffic": [t for t in report.traffic if mine(t.scope)],
        "water": [w for w in report.water if mine(w.scope)],
        "operations": list(report.operations) if operations_of_districts else [],
        "data_completeness": [c for c in report.data_completeness if mine(c.scope)],
        "transit": Transit(k=report.transit.k, scopes=scopes, od_flows=[]),
        "crowd": [c for c in report.crowd if mine(c.scope)],
        "districts": sorted(districts),
        "withheld": _withheld(operations_of_districts),
    }


def _withheld(operations_of_districts: bool) -> list[str]:
    return [WITHHELD_OD, WITHHELD_LINES] + ([] if operations_of_districts else [WITHHELD_OPERATIONS])
