"""The KPI set's pure parts: a station's day, a period's figures, MTTA/MTTR, transit flows and boardings,
data completeness."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from ioc.api.kpis import KPI_PERIODS_EXAMPLE, KPIS_EXAMPLE
from ioc.city import load_city
from ioc.indices.air import us_aqi, vn_aqi_daily
from ioc.indices.transit import MetroTap
from ioc.kpis.air import StationDay, day_values, period_kpis, qcvn05_24h_limit
from ioc.kpis.completeness import SensorDay, completeness_scopes, expected_readings
from ioc.kpis.days import KpiDay
from ioc.kpis.ops import Lifecycle, ops_kpis
from ioc.kpis.report import KpiPeriods, Kpis, build_periods, build_report, period_label, period_spans
from ioc.kpis.traffic import Interval, traffic_kpis
from ioc.kpis.transit import StationDayTaps, daily_flows, expected_hours, transit_scopes
from ioc.kpis.water import Sample, meets, water_kpis
from ioc.settings import Settings

DAY = date(2026, 12, 1)


def station_day(pm25: list[float | None], station: str = "air-hoan-kiem", day: date = DAY) -> StationDay:
    return StationDay(station, "hoan-kiem", day, {"pm25": pm25})


def test_a_day_counts_with_18_of_24_hours_and_gives_the_standards_daily_index():
    full = day_values(station_day([60.0] * 24))
    assert full.valid and full.completeness == 1.0
    assert full.aqi == vn_aqi_daily({"pm25": [60.0] * 24}).value and full.band == "kem"
    assert full.means == {"pm25": 60.0} and full.exceeded == ("pm25",)  # above 45 µg/m³

    short = day_values(station_day([60.0] * 17 + [None] * 7))
    assert not short.valid and short.aqi is None and short.exceeded == ()
    assert short.completeness == round(17 / 24, 3)


def test_the_pm25_limit_is_50_until_2025_and_45_from_2026():
    assert qcvn05_24h_limit("pm25", date(2025, 12, 31)) == 50.0
    assert qcvn05_24h_limit("pm25", date(2026, 1, 1)) == 45.0
    assert day_values(station_day([48.0] * 24, day=date(2025, 12, 31))).exceeded == ()
    assert day_values(station_day([48.0] * 24, day=date(2026, 1, 1))).exceeded == ("pm25",)


def test_a_periods_mean_needs_three_quarters_of_its_days():
    days = [day_values(station_day([20.0 + n] * 24, day=DAY + timedelta(days=n))) for n in range(3)]
    three_of_four = period_kpis("air-hoan-kiem", days, stations=1, period_days=4)
    assert three_of_four.completeness == 0.75 and three_of_four.pm25_mean == 21.0
    assert three_of_four.band_days["tot"] == 3 and sum(three_of_four.band_days.values()) == 3
    two_of_four = period_kpis("air-hoan-kiem", days[:2], stations=1, period_days=4)
    assert two_of_four.pm25_mean is None and two_of_four.days_valid == 2


def test_mtta_and_mttr_per_severity_and_feed():
    t0 = datetime(2026, 12, 1, 8, tzinfo=UTC)

    def alert(
        n: int, severity: str, ack: float | None, resolved: float | None, by: str = "system"
    ) -> Lifecycle:
        minute = timedelta(minutes=1)
        return Lifecycle(
            f"a{n}",
            severity,
            "air",
            "dong-da",
            t0,
            t0 + ack * minute if ack is not None else None,
            t0 + resolved * minute if resolved is not None else None,
            by if resolved is not None else None,
        )

    critical, warning = ops_kpis(
        [
            alert(1, "critical", 5, 60, "operator#1"),
            alert(2, "critical", 30, None),
            alert(3, "warning", None, 20),
            alert(4, "critical", 10, 90),
        ]
    )
    assert (critical.severity, critical.alerts, critical.acknowledged, critical.resolved) == (
        "critical",
        3,
        3,
        2,
    )
    assert critical.mtta_minutes is not None and critical.mtta_minutes.median == 10.0
    assert critical.mttr_minutes is not None and critical.mttr_minutes.median == 75.0
    assert critical.acknowledged_within_15_min == pytest.approx(2 / 3)
    assert critical.resolved_by_operator == 1
    assert (
        warning.mtta_minutes is None and warning.mttr_minutes is not None and warning.mttr_minutes.p90 == 20.0
    )


def test_the_travel_time_index_at_weekday_peaks_and_the_congested_hours():
    zone = timezone(timedelta(hours=7))

    def interval(day: int, hour: int, minute: int, speed: float, flow: float = 100.0) -> Interval:
        start = datetime(2026, 12, day, hour, minute, tzinfo=zone)  # 2026-12-01 a Tuesday, 12-05 a Saturday
        return Interval("traffic-nga-tu-so", "dong-da", start, speed, flow, 40.0)

    peaks = [
        interval(1, 7, 0, 20.0, flow=300),  # TTI 2.0, weighing three times as much
        interval(1, 18, 55, 40.0),  # TTI 1.0
        interval(1, 9, 0, 10.0),  # the morning peak has ended
        interval(1, 16, 25, 10.0),  # the evening one has not begun
        interval(5, 8, 0, 10.0),  # a Saturday
        interval(1, 8, 0, 0.0),  # standing still: no index, not an infinite one
    ]
    hours = [interval(1, 8, 0, 10.0), interval(1, 9, 0, 0.0), interval(1, 12, 0, 35.0)]  # F, F, A
    kpis = traffic_kpis("dong-da", peaks, hours)
    assert kpis.peak_intervals == 2 and kpis.tti_peak == round((2.0 * 300 + 1.0 * 100) / 400, 2)
    assert kpis.congested_hours == 2 and kpis.detectors == 1
    assert traffic_kpis("city", [], []).tti_peak is None


CLEAN = {"dissolved_oxygen": 6.5, "temperature": 25.0, "ph": 7.2, "bod5": 4.0, "cod": 10.0, "nh4_n": 0.3,
         "coliform": 1000.0}  # fmt: skip
FOUL = {"dissolved_oxygen": 1.0, "temperature": 25.0, "ph": 7.2, "bod5": 30.0, "cod": 60.0, "nh4_n": 5.0,
        "coliform": 50000.0}  # fmt: skip


def test_water_class_shares_compliance_with_the_stations_class_and_low_oxygen_hours():
    samples = [Sample("water-ho-tay", "tay-ho", "B", CLEAN), Sample("water-ho-tay", "tay-ho", "B", FOUL)]
    kpis = water_kpis("tay-ho", samples, samples)
    assert (kpis.samples, kpis.with_wqi, kpis.judged) == (2, 2, 2)
    assert sum(kpis.wqi_class_share.values()) == 1.0 and len(kpis.wqi_class_share) == 2
    assert kpis.compliance == 0.5 and kpis.low_do_hours == 1  # the foul one: under class B, DO under 2 mg/L
    assert meets(CLEAN, "D") and not meets(FOUL, "B") and meets({}, "B") is None
    unjudged = water_kpis("x", [Sample("water-x", "x", None, CLEAN)], [])
    assert unjudged.compliance is None and unjudged.judged == 0


def test_daily_flows_publish_only_pairs_with_k_trips_summed_over_the_day():
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    morning = datetime(2026, 12, 1, 7, 0, tzinfo=zone)

    def trip(card: str, origin: str, destination: str, at: datetime) -> list[MetroTap]:
        return [
            MetroTap(card, origin, "ENTRY", at),
            MetroTap(card, destination, "EXIT", at + timedelta(minutes=15)),
        ]

    taps = []
    for n in range(6):  # 6 trips at 07:00 and 4 at 17:00: 10 over the day, under 10 in either hour
        taps += trip(f"a{n}", "s1", "s2", morning + timedelta(minutes=n))
    for n in range(4):
        taps += trip(f"b{n}", "s1", "s2", morning + timedelta(hours=10, minutes=n))
    for n in range(9):
        taps += trip(f"c{n}", "s2", "s3", morning + timedelta(minutes=n))
    taps += trip(
        "late", "s3", "s1", morning.replace(hour=2) + timedelta(days=1)
    )  # 02:00: still Dec 1's service
    [day] = daily_flows(taps)
    assert day.day == morning.date()
    assert day.cells == {("s1", "s2"): 10}
    assert (day.trips, day.suppressed_trips, day.suppressed_cells) == (20, 10, 2)


def test_transit_scopes_count_boardings_per_day_and_a_stations_hours_once():
    day = datetime(2026, 12, 1).date()
    days = [
        StationDayTaps("bus-kim-ma", "ba-dinh", "01", day, 30, 8, 10, 17),
        StationDayTaps("bus-kim-ma", "ba-dinh", "09", day, 20, 8, 10, 17),  # same stop, other route
        StationDayTaps("bus-bo-ho", "hoan-kiem", "09", day, 5, 2, 17, 17),
    ]
    scopes = {(s.kind, s.scope): s for s in transit_scopes(days)}
    assert scopes[("city", "city")].boardings == 55 and scopes[("city", "city")].daily_boardings == {day: 55}
    assert scopes[("line", "09")].boardings == 25 and scopes[("area", "ba-dinh")].stations == 1
    assert scopes[("station", "bus-kim-ma")].peak_15min == 8 and scopes[("line", "01")].peak_15min is None
    assert scopes[("station", "bus-kim-ma")].completeness == round(10 / 17, 3)
    assert scopes[("city", "city")].completeness == round(27 / 34, 3)  # Kim Mã's hours once


def test_transit_completeness_expects_a_closed_days_service_hours_and_todays_until_now():
    served = set(range(5, 22))  # 05:00–22:00, 17 hours
    assert expected_hours(served, {7, 8}) == served  # a closed day: a silent hour is a gap
    # Today at 10:xx: 05–09 are over and expected; 10 only once it has a tap; 11–21 are still to come.
    assert expected_hours(served, {7, 8}, hour_now=10) == {5, 6, 7, 8, 9}
    assert expected_hours(served, {7, 8, 10}, hour_now=10) == {5, 6, 7, 8, 9, 10}
    assert expected_hours(served, set(), hour_now=4) == set()  # before service: nothing expected yet
    assert expected_hours(served, {21}, hour_now=23) == served


def test_completeness_caps_each_sensor_day_and_expects_today_until_now():
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    today = datetime(2026, 12, 2).date()
    now = datetime(2026, 12, 2, 6, 0, tzinfo=zone)
    assert expected_readings(today, 60, zone, now) == 360
    assert expected_readings(today - timedelta(days=1), 60, zone, now) == 1440
    assert expected_readings(today + timedelta(days=1), 60, zone, now) == 0
    days = [
        SensorDay("air", "a1", "x", today, 400, 360),  # repeats: counts 360, not 400
        SensorDay("air", "a2", "x", today, 0, 360),
    ]
    scopes = {c.scope: c for c in completeness_scopes(days)}
    assert (scopes["x"].received, scopes["x"].expected, scopes["x"].completeness) == (360, 720, 0.5)
    assert scopes["a1"].daily == {today: 1.0} and scopes["a2"].completeness == 0.0


def test_the_openapi_example_of_get_kpis_is_an_answer_as_the_api_gives_it():
    answer = Kpis.model_validate(KPIS_EXAMPLE)
    assert json.loads(answer.model_dump_json(by_alias=True)) == KPIS_EXAMPLE  # every field, camelCase


def test_a_valid_station_day_carries_us_epas_daily_aqi_from_epas_daily_statistics():
    o3 = [20.0] * 24
    o3[10:18] = [150.0] * 8  # one 8-hour spell
    no2 = [30.0] * 24
    no2[8] = 200.0
    hours = {"pm25": [35.45] * 24, "o3": o3, "no2": no2}
    values = day_values(StationDay("air-hoan-kiem", "hoan-kiem", DAY, hours))
    # EPA's daily statistics: PM2.5's 24-hour mean, O3's highest 8-hour mean, NO2's highest hour.
    expected = us_aqi({"pm25_24h": 35.45, "o3_8h": 150.0, "o3_1h": 150.0, "no2_1h": 200.0})
    assert expected is not None and (values.us_aqi, values.us_band) == (expected.value, expected.band.key)
    assert us_aqi({"pm25_24h": 35.45}).value == 100  # type: ignore[union-attr]  # 35.4 µg/m³ is 100
    # Not of a day without 18 hours.
    short = day_values(StationDay("air-hoan-kiem", "hoan-kiem", DAY, {"pm25": [35.45] * 17 + [None] * 7}))
    assert short.us_aqi is None and short.us_band is None


def test_the_openapi_example_of_get_kpis_by_month_is_an_answer_as_the_api_gives_it():
    answer = KpiPeriods.model_validate(KPI_PERIODS_EXAMPLE)
    assert json.loads(answer.model_dump_json(by_alias=True)) == KPI_PERIODS_EXAMPLE


def test_periods_are_whole_iso_weeks_calendar_months_and_years_the_days_touch():
    first, last = date(2026, 11, 24), date(2026, 12, 3)  # a Tuesday to a Thursday
    assert period_spans(first, last, "week") == [
        (date(2026, 11, 23), date(2026, 11, 29)),
        (date(2026, 11, 30), date(2026, 12, 6)),
    ]
    assert period_spans(first, last, "month") == [
        (date(2026, 11, 1), date(2026, 11, 30)),
        (date(2026, 12, 1), date(2026, 12, 31)),
    ]
    assert period_spans(first, last, "year") == [(date(2026, 1, 1), date(2026, 12, 31))]
    assert period_spans(first, last, "day") == [
        (d, d) for d in map(date.fromordinal, range(first.toordinal(), last.toordinal() + 1))
    ]
    assert period_spans(date(2026, 12, 31), date(2027, 1, 1), "week") == [
        (date(2026, 12, 28), date(2027, 1, 3))
    ]
    assert period_label(date(2026, 12, 28), "week") == "2026-W53"  # ISO: 2026 has 53 weeks
    assert period_label(date(2026, 11, 23), "week") == "2026-W48"
    assert (period_label(date(2026, 12, 1), "month"), period_label(date(2026, 1, 1), "year")) == (
        "2026-12",
        "2026",
    )


def test_a_periods_kpis_are_counted_and_recomputed_over_its_own_days_and_alerts():
    city = load_city(Settings().city)
    zone = ZoneInfo(city.timezone)
    first, last = date(2026, 11, 24), date(2026, 12, 3)
    days = []
    for n in range((last - first).days + 1):
        day = first + timedelta(days=n)
        pm25 = 40.0 if day < date(2026, 11, 30) else 60.0  # moderate, then poor and above 45 µg/m³
        days.append(KpiDay(day, air=[day_values(station_day([pm25] * 24, day=day))]))

    def alert(at: datetime, ack_minutes: float) -> Lifecycle:
        acked = at + timedelta(minutes=ack_minutes)
        return Lifecycle(f"a-{at:%d}", "critical", "air", "hoan-kiem", at, acked, None, None)

    alerts = [
        alert(datetime(2026, 11, 25, 9, tzinfo=zone), 4),
        alert(datetime(2026, 11, 26, 9, tzinfo=zone), 10),
        alert(datetime(2026, 11, 30, 0, 30, tzinfo=zone), 30),
    ]
    today = date(2027, 1, 10)
    weeks = build_periods(period_spans(first, last, "week"), "week", city, days, alerts, [], today)
    w48, w49 = weeks.periods
    assert (w48.period, w49.period, w48.partial, w48.days, w48.days_elapsed) == (
        "2026-W48",
        "2026-W49",
        False,
        7,
        7,
    )
    station = {p.period: next(a for a in p.air if a.scope == "air-hoan-kiem") for p in weeks.periods}
    assert (station["2026-W48"].days_valid, station["2026-W48"].days_expected) == (6, 7)
    assert station["2026-W48"].band_days["trung_binh"] == 6 and station["2026-W48"].exceedance_days == {}
    assert station["2026-W48"].pm25_mean == 40.0  # 6 of 7 days: 86 % ≥ 75 %
    assert station["2026-W49"].band_days["kem"] == 4 and station["2026-W49"].exceedance_days == {"pm25": 4}
    assert station["2026-W49"].pm25_mean is None  # 4 of 7 days: insufficient data
    # MTTA over the week's own alerts: the median of 4 and 10 minutes; Monday 00:30 local is the next week's.
    assert w48.operations[0].mtta_minutes.median == 7.0 and w48.operations[0].alerts == 2  # type: ignore[union-attr]
    assert w49.operations[0].mtta_minutes.median == 30.0  # type: ignore[union-attr]
    assert w48.kpi_version >= 3 and w48.standard.startswith("VN_AQI")

    months = build_periods(
        period_spans(first, last, "month"), "month", city, days, alerts, [], date(2026, 12, 3)
    )
    november, december = months.periods
    assert (november.partial, december.partial, december.days, december.days_elapsed) == (False, True, 31, 3)
    nov = next(a for a in november.air if a.scope == "air-hoan-kiem")
    assert (nov.band_days["trung_binh"], nov.band_days["kem"], nov.exceedance_days) == (6, 1, {"pm25": 1})
    assert nov.days_expected == 30 and nov.pm25_mean is None  # 7 of 30 days
    # Under way: its days until today, all three valid, so its mean counts (and says it is partial).
    dec = next(a for a in december.air if a.scope == "air-hoan-kiem")
    assert (dec.days_expected, dec.days_valid, dec.pm25_mean) == (3, 3, 60.0)
    # The median of the three alerts (4, 10, 30), not a mean of the weeks' medians (7, 30).
    assert november.operations[0].mtta_minutes.median == 10.0  # type: ignore[union-attr]
    assert december.operations == []
    # Each period is the days report of exactly its days.
    report = build_report(
        date(2026, 11, 1), date(2026, 11, 30), city, days[:7], alerts, [], date(2026, 12, 3)
    )
    assert Kpis.model_validate(november.model_dump(include=set(Kpis.model_fields))) == report
