"""A district-scoped key's KPIs (``ioc.kpis.scope``): only its districts' rows, nothing of the city's."""

from __future__ import annotations

from datetime import date

from ioc.city import City
from ioc.kpis.report import (
    AirScope,
    CompletenessScope,
    CrowdScope,
    KpiPeriod,
    KpiPeriods,
    Kpis,
    OdCell,
    OdDay,
    OpsScope,
    StationDayValue,
    TrafficScope,
    Transit,
    TransitScope,
    WaterScope,
    csv_rows,
)
from ioc.kpis.scope import (
    WITHHELD_OD,
    WITHHELD_OPERATIONS,
    for_districts,
    in_districts,
    periods_for_districts,
)

DAY = date(2026, 12, 1)
MINE = frozenset({"hk"})


def sensor(sensor_id: str, kind: str, district: str) -> dict:
    return {"id": sensor_id, "kind": kind, "name": sensor_id, "lat": 21.0, "lon": 105.8, "district": district}


CITY = City.model_validate(
    {
        "city": "Test",
        "city_en": "Test",
        "timezone": "Asia/Ho_Chi_Minh",
        "centre": {"lat": 21.0, "lon": 105.8},
        "districts": [
            {"id": "hk", "name": "HK", "lat": 21.0, "lon": 105.8},
            {"id": "dd", "name": "DD", "lat": 21.0, "lon": 105.8},
        ],
        "sensors": [
            sensor("air-hk", "air", "hk"),
            sensor("air-dd", "air", "dd"),
            sensor("traffic-hk", "traffic", "hk"),
            sensor("traffic-dd", "traffic", "dd"),
            sensor("water-hk", "water", "hk"),
            sensor("water-dd", "water", "dd"),
            sensor("stop-hk-1", "transit", "hk"),
            sensor("stop-hk-2", "transit", "hk"),
            sensor("stop-dd", "transit", "dd"),
            sensor("zone-hk", "crowd", "hk"),
            sensor("zone-dd", "crowd", "dd"),
        ],
        "lines": [
            {"id": "inside", "name": "in", "mode": "bus", "stations": ["stop-hk-1", "stop-hk-2"]},
            {"id": "across", "name": "across", "mode": "bus", "stations": ["stop-hk-1", "stop-dd"]},
        ],
    }
)


def air(scope: str) -> AirScope:
    return AirScope(
        scope=scope,
        stations=1,
        days_expected=1,
        days_valid=1,
        completeness=1.0,
        band_days={"tot": 1},
        exceedance_days={},
        pm25_mean=20.0,
        pm10_mean=30.0,
    )


def data(feed: str, scope: str, received: int, expected: int) -> CompletenessScope:
    return CompletenessScope(
        feed=feed,
        scope=scope,
        sensors=1,
        received=received,
        expected=expected,
        completeness=received / expected,
        daily={DAY: received / expected},
    )


def transit(scope: str, kind: str) -> TransitScope:
    return TransitScope(
        scope=scope,
        kind=kind,
        stations=1,
        boardings=10,
        daily_boardings={DAY: 10},
        peak_15min=None,
        completeness=1.0,
    )


def report() -> Kpis:
    """The whole city's report: a city row, both districts' area rows, each one's sensors, and rows of
    what the registry does not place."""
    return Kpis(
        first_day=DAY,
        last_day=DAY,
        timezone="Asia/Ho_Chi_Minh",
        standard="VN_AQI",
        air=[air(s) for s in ("city", "dd", "hk", "air-dd", "air-hk")],
        air_days=[
            StationDayValue(
                station=s,
                area=a,
                day=DAY,
                valid=True,
                completeness=1.0,
                daily_aqi=50,
                band="tot",
                exceeded=[],
            )
            for s, a in (("air-dd", "dd"), ("air-hk", "hk"))
        ],
        traffic=[
            TrafficScope(
                scope=s, detectors=1, peak_intervals=1, tti_peak=1.2, congested_hours=0, completeness=1.0
            )
            for s in ("city", "dd", "hk", "traffic-dd", "traffic-hk")
        ],
        water=[
            WaterScope(
                scope=s,
                stations=1,
                samples=1,
                with_wqi=1,
                wqi_class_share={"tot": 1.0},
                judged=1,
                compliance=1.0,
                low_do_hours=0,
                completeness=1.0,
            )
            for s in ("city", "dd", "hk", "water-dd", "water-hk")
        ],
        operations=[
            OpsScope(
                severity="critical",
                feed="air",
                alerts=5,
                acknowledged=5,
                resolved=5,
                resolved_by_operator=1,
                mtta_minutes=None,
                mttr_minutes=None,
                acknowledged_within_15_min=1.0,
            )
        ],
        data_completeness=[
            data("air", "city", 30, 40),
            data("air", "dd", 10, 20),
            data("air", "hk", 20, 20),
            data("air", "air-dd", 10, 20),
            data("air", "air-hk", 20, 20),
            data("air", "unregistered:x", 1, 1),
        ],
        transit=Transit(
            k=10,
            scopes=[
                transit("city", "city"),
                transit("dd", "area"),
                transit("hk", "area"),
                transit("across", "line"),
                transit("inside", "line"),
                transit("stop-dd", "station"),
                transit("stop-hk-1", "station"),
                transit("stop-hk-2", "station"),
            ],
            od_flows=[
                OdDay(
                    day=DAY,
                    trips=50,
                    suppressed_trips=3,
                    suppressed_cells=1,
                    unmatched_entries=0,
                    unmatched_exits=0,
                    cells=[OdCell(origin="stop-hk-1", destination="stop-hk-2", trips=12)],
                )
            ],
        ),
        crowd=[
            CrowdScope(
                scope=s,
                zones=1,
                visitors=100,
                daily_visitors={DAY: 100},
                peak_share=50.0,
                hours_over_80=0.0,
                daily_hours_over_80={DAY: 0.0},
                completeness=1.0,
            )
            for s in ("city", "dd", "hk", "zone-dd", "zone-hk")
        ],
    )


def test_a_scope_is_a_district_or_a_sensor_the_registry_places_in_one() -> None:
    assert in_districts("hk", CITY, MINE)
    assert in_districts("air-hk", CITY, MINE)
    assert not in_districts("dd", CITY, MINE)
    assert not in_districts("air-dd", CITY, MINE)
    assert not in_districts("city", CITY, MINE)
    assert not in_districts("unregistered:x", CITY, MINE)


def test_only_the_districts_rows_are_kept() -> None:
    cut = for_districts(report(), CITY, MINE)
    assert [a.scope for a in cut.air] == ["hk", "air-hk"]
    assert [d.station for d in cut.air_days] == ["air-hk"]
    assert [t.scope for t in cut.traffic] == ["hk", "traffic-hk"]
    assert [w.scope for w in cut.water] == ["hk", "water-hk"]
    assert [c.scope for c in cut.data_completeness] == ["hk", "air-hk"]
    assert [c.scope for c in cut.crowd] == ["hk", "zone-hk"]
    # A line with a stop in another district would tell that district's boardings: only the line inside.
    assert [t.scope for t in cut.transit.scopes] == ["hk", "inside", "stop-hk-1", "stop-hk-2"]
    assert cut.transit.od_flows == [] and WITHHELD_OD in cut.withheld
    assert cut.districts == ["hk"]
    # The values are the report's own rows, not recomputed.
    assert cut.air[0] == report().air[2]


def test_no_city_row_nor_another_districts_in_the_csv() -> None:
    rows = csv_rows(for_districts(report(), CITY, MINE))
    scopes = {str(row[1]) for row in rows}
    assert rows
    assert not any(s == "city" or s.endswith(":city") for s in scopes)
    assert not any("dd" in s for s in scopes)


def test_operations_are_kept_only_when_built_from_the_districts_alerts() -> None:
    dropped = for_districts(report(), CITY, MINE)
    assert dropped.operations == [] and WITHHELD_OPERATIONS in dropped.withheld
    kept = for_districts(report(), CITY, MINE, operations_of_districts=True)
    assert kept.operations == report().operations and WITHHELD_OPERATIONS not in kept.withheld


def test_each_period_is_cut_and_its_completeness_is_the_districts() -> None:
    period = KpiPeriod(
        **dict(report()),
        period="2026-12",
        partial=False,
        days=31,
        days_elapsed=31,
        completeness=0.75,
        kpi_version=3,
    )
    answer = KpiPeriods(
        period="month",
        first_day=DAY,
        last_day=date(2026, 12, 31),
        timezone="Asia/Ho_Chi_Minh",
        standard="VN_AQI",
        periods=[period],
    )
    cut = periods_for_districts(answer, CITY, MINE)
    (only,) = cut.periods
    assert [a.scope for a in only.air] == ["hk", "air-hk"]
    assert only.completeness == 1.0  # hk's 20 of 20, not the city's 30 of 40
    assert (only.period, only.days, only.kpi_version) == ("2026-12", 31, 3)
    assert cut.districts == ["hk"] and cut.period == "month"
