"""The KPIs' kept days, the pure parts: a day's values as kept and back, runs of days to compute, the local
days a batch of rows marks stale, and the per-day traffic and water partials against the whole period's."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from ioc.city import load_city
from ioc.history.store import local_days
from ioc.kpis import air, traffic, water
from ioc.kpis.completeness import SensorDay
from ioc.kpis.crowd import ZoneDay
from ioc.kpis.days import KpiDay, basis, from_json, runs, to_json
from ioc.kpis.traffic import Interval
from ioc.kpis.transit import StationDayTaps
from ioc.settings import Settings

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = date(2026, 11, 3)


def test_a_day_comes_back_as_it_was_kept_floats_bit_for_bit():
    day = KpiDay(
        DAY,
        air=[
            air.DayValues(
                "air-a",
                "hoan-kiem",
                DAY,
                True,
                0.958,
                87,
                "trung_binh",
                {"pm25": 0.1 + 0.2},
                ("pm10", "pm25"),
            )
        ],  # fmt: skip
        traffic=[traffic.DetectorDay("traffic-a", "dong-da", DAY, 1 / 3, 1e-7, 4, 2)],
        water=[water.StationDay("water-a", "tay-ho", DAY, 8, 6, {"tot": 2, "xau": 4}, 8, 3, 1)],
        transit=[StationDayTaps("metro-a", "dong-da", "2A", DAY, 1300, 41, 17, 19)],
        readings=[SensorDay("air", "air-a", "hoan-kiem", DAY, 1441, 1440)],
        crowd=[ZoneDay("crowd-a", "dong-da", DAY, 2000.0, 812, 3, 288, 288)],
    )
    kept = json.loads(to_json(day))  # as PostgreSQL's json gives it back
    assert from_json(DAY, kept) == day
    assert from_json(DAY, kept).air[0].exceeded == ("pm10", "pm25")


def test_days_to_compute_go_in_runs_of_consecutive_days():
    days = [DAY, DAY + timedelta(days=1), DAY + timedelta(days=3), DAY + timedelta(days=9)]
    assert runs(days) == [
        (DAY, DAY + timedelta(days=1)),
        (DAY + timedelta(days=3), DAY + timedelta(days=3)),
        (DAY + timedelta(days=9), DAY + timedelta(days=9)),
    ]
    assert runs([]) == []


def test_a_batch_marks_its_local_days_and_without_a_zone_every_day_it_may_fall_on():
    evening = datetime(2026, 11, 3, 18, tzinfo=UTC)  # 01:00 on the 4th in Hà Nội
    assert local_days([evening, evening], ZONE) == {date(2026, 11, 4)}
    assert local_days([evening], None) >= {date(2026, 11, 3), date(2026, 11, 4)}


def test_the_basis_changes_with_the_registry_and_the_reading_intervals():
    city = load_city(Settings().city)
    intervals = {"air": 60, "traffic": 300}
    assert basis(city, intervals) == basis(city, dict(intervals))
    assert basis(city, intervals | {"air": 120}) != basis(city, intervals)
    moved = city.model_copy(update={"timezone": "Asia/Bangkok"})
    assert basis(moved, intervals) != basis(city, intervals)


def test_traffic_summed_per_detector_day_is_the_periods_figure():
    """Two detectors over two weekday mornings and a weekend one; the days' partials add up to the
    period's KPIs: intervals counted, detectors, congested hours, the flow-weighted TTI."""
    start = datetime(2026, 11, 5, 7, tzinfo=ZONE)  # a Thursday
    peaks = [
        Interval(detector, "dong-da", start + timedelta(days=d, minutes=5 * m), 10.0 + m + d, 20.0 + m, 40.0)
        for detector in ("traffic-a", "traffic-b")
        for d in range(3)
        for m in range(24)
    ]
    hours = [
        Interval("traffic-a", "dong-da", start + timedelta(days=d, hours=3), 0.0, 0.0, 40.0) for d in range(3)
    ]
    days = traffic.detector_days(peaks, hours)
    assert len(days) == 6 and sum(d.peak_intervals for d in days) == 2 * 2 * 24  # Saturday is no peak
    whole = traffic.traffic_kpis("dong-da", peaks, hours)
    assert traffic.period_traffic("dong-da", days) == whole
    assert whole.detectors == 2 and whole.congested_hours == 3 and whole.tti_peak is not None
