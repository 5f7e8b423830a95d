"""The KPIs kept per closed local day (``kpi_days``) against a real PostgreSQL: the report from the kept
days is the report computed from the rows, late data written by the sink's path recomputes its day and
only it, today is computed on every read and never kept, and ``ioc kpi recompute --from --to`` computes a
range's days again."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from ioc.city import load_city
from ioc.history.store import HistoryStore, WindowRow, rider_of_day, upgrade
from ioc.kpis.days import compute_days, from_json
from ioc.kpis.report import read_report
from tests.conftest import settings_env

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
FIRST, LAST = date(2026, 11, 2), date(2026, 11, 4)  # Monday to Wednesday: weekday peaks
AFTER = datetime(2026, 11, 10, 12, tzinfo=UTC)  # every day of the period closed
AIR = ("air-hoan-kiem", "air-hang-dau", "air-nguyen-van-cu")


def midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), ZONE)


def window(feed: str, length: str, sensor: str, start: datetime, means: dict[str, float]) -> WindowRow:
    return WindowRow(feed, length, sensor, start, 12, start, means, json.dumps({"sensorId": sensor}))


def period_rows() -> tuple[list[WindowRow], list[tuple]]:
    """Three local days of air, traffic, water and crowd windows and fare taps, different each day."""
    windows, taps = [], []
    for d in range((LAST - FIRST).days + 1):
        start = midnight(FIRST + timedelta(days=d))
        for n, station in enumerate(AIR):
            hours = 17 if (n, d) == (1, 1) else 24  # Hàng Đậu's Tuesday is not a valid day
            for h in range(hours):
                pm25 = 20.0 + 7.3 * n + 11.1 * d + (h % 7) * 3.7
                means = {"pm25": pm25, "pm10": pm25 * 1.7}
                windows.append(window("air", "1h", station, start + timedelta(hours=h), means))
        for m in range(0, 150, 5):  # 07:00–09:30: the morning peak and after it
            speed = 12.0 + (m + 3 * d) % 25
            means = {"average_vehicle_speed": speed, "intensity": 30.0 + m % 17}
            windows.append(window("traffic", "5m", "traffic-nga-tu-so", start + timedelta(hours=7, minutes=m),
                                  means))  # fmt: skip
        for h, speed in enumerate((8.0, 0.0, 33.0 - d)):
            windows.append(window("traffic", "1h", "traffic-nga-tu-so", start + timedelta(hours=10 + h),
                                  {"average_vehicle_speed": speed, "intensity": 90.0}))  # fmt: skip
        for q in range(8):
            values = {"dissolved_oxygen": 1.0 + q + d, "temperature": 25.0, "ph": 7.2, "bod5": 4.0 + 5 * q,
                      "cod": 10.0 + 9 * q, "nh4_n": 0.3 * q, "coliform": 1000.0 * (q + 1)}  # fmt: skip
            at = start + timedelta(hours=6, minutes=15 * q)
            windows.append(window("water", "15m", "water-ho-tay", at, values))
            if q % 4 == 0:
                windows.append(window("water", "1h", "water-ho-tay", at, values))
        for m in range(0, 120, 5):  # Văn Miếu's crowd over two hours
            people = 200.0 + 40 * ((m // 5 + d) % 9)
            windows.append(window("crowd", "5m", "crowd-van-mieu", start + timedelta(hours=9, minutes=m),
                                  {"people_count": people}))  # fmt: skip
        opening = start + timedelta(hours=6)
        for t in range(12 + 5 * d):  # metro trips Cát Linh → Láng, and boardings at a bus stop
            entered = opening + timedelta(minutes=7 * t)
            rider = rider_of_day(f"card-{d}-{t}", entered.date().isoformat())
            taps.append(("metro-2a-cat-linh", f"e{d}-{t}", entered, "metro", "2A", "ENTRY", rider))
            taps.append(("metro-2a-lang", f"x{d}-{t}", entered + timedelta(minutes=9), "metro", "2A", "EXIT",
                         rider))  # fmt: skip
            taps.append(("bus-kim-ma", f"b{d}-{t}", entered, "bus", "01", "BOARD", f"bus-{d}-{t}"))
    return windows, taps


def write(url: str, windows: list[WindowRow], taps: list[tuple] | None = None) -> None:
    """As the sink writes (it knows the city's zone): the days written are marked stale."""
    store = HistoryStore(url, ZONE.key)
    try:
        store.write(windows, [], [], taps)
    finally:
        store.close()


def kept(url: str) -> dict[date, datetime]:
    with psycopg.connect(url) as connection:
        return dict(connection.execute("SELECT day, computed_at FROM kpi_days").fetchall())


def marked(url: str) -> set[date]:
    with psycopg.connect(url) as connection:
        return {day for (day,) in connection.execute("SELECT day FROM kpi_days_changed").fetchall()}


def test_the_kept_days_give_the_report_computed_from_the_rows_and_late_data_recomputes_its_day(database):
    settings = database
    url = settings.database_address
    upgrade(url)
    city, intervals = load_city(settings.city), settings.reading_interval_seconds
    windows, taps = period_rows()
    write(url, windows, taps)
    assert marked(url) >= {FIRST, FIRST + timedelta(days=1), LAST}

    def report(now: datetime = AFTER, kept_days: bool = True):
        return read_report(url, city, FIRST, LAST, intervals, now, kept_days=kept_days)

    first = report()  # computes the three closed days and keeps them
    assert set(kept(url)) == {FIRST, FIRST + timedelta(days=1), LAST}
    assert not marked(url) & set(kept(url))
    scratch = report(kept_days=False)
    assert first == scratch
    assert first.air[0].days_valid == 8 and first.traffic[0].tti_peak is not None
    assert first.water[0].with_wqi > 0 and first.transit.scopes[0].boardings > 0
    assert first.crowd[0].visitors > 0

    # Each kept day is what the rows give now, value for value.
    with psycopg.connect(url) as connection:
        fresh = compute_days(connection, city, FIRST, LAST, intervals, AFTER)
        bodies = dict(connection.execute("SELECT day, body FROM kpi_days").fetchall())
    assert {day: from_json(day, body) for day, body in bodies.items()} == fresh

    computed_at = kept(url)
    assert report() == scratch  # from the kept days
    assert kept(url) == computed_at

    # A late hour of Hàng Đậu's Tuesday through the sink's path: that day is stale and only it is computed.
    tuesday = FIRST + timedelta(days=1)
    write(url, [window("air", "1h", "air-hang-dau", midnight(tuesday) + timedelta(hours=h), {"pm25": 90.0})
                for h in range(17, 24)])  # fmt: skip
    assert tuesday in marked(url)
    late = report()
    assert late == report(kept_days=False)
    assert late != first and late.air[0].days_valid == 9
    again = kept(url)
    assert again[tuesday] > computed_at[tuesday]
    assert {d: again[d] for d in (FIRST, LAST)} == {d: computed_at[d] for d in (FIRST, LAST)}
    assert tuesday not in marked(url)

    # Wednesday as today: computed from its rows as they are, never kept.
    wednesday_noon = midnight(LAST) + timedelta(hours=12)
    assert report(wednesday_noon) == report(wednesday_noon, kept_days=False)
    assert kept(url)[LAST] == again[LAST]


def test_ioc_kpi_recompute_computes_a_ranges_days_again(database):
    settings = database
    url = settings.database_address
    upgrade(url)
    city, intervals = load_city(settings.city), settings.reading_interval_seconds
    windows, taps = period_rows()
    write(url, windows, taps)
    before = read_report(url, city, FIRST, LAST, intervals, AFTER)
    computed_at = kept(url)

    # Rows changed behind the sink's back (a repair by hand): nothing marks their days.
    with psycopg.connect(url) as connection:
        connection.execute(
            "UPDATE windows SET means = jsonb_build_object('pm25', 300.0) WHERE feed = 'air' "
            "AND start >= %s AND start < %s",
            (midnight(FIRST), midnight(LAST)),
        )
    assert read_report(url, city, FIRST, LAST, intervals, AFTER) == before

    done = subprocess.run(
        [sys.executable, "-m", "ioc", "kpi", "recompute", "--from", FIRST.isoformat(), "--to",
         (LAST - timedelta(days=1)).isoformat()],
        env=settings_env(settings), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "recomputed 2 days, 2026-11-02 to 2026-11-03" in done.stderr
    after = kept(url)
    assert (
        after[FIRST] > computed_at[FIRST]
        and after[FIRST + timedelta(days=1)] > computed_at[FIRST + timedelta(days=1)]
    )
    assert after[LAST] == computed_at[LAST]  # outside the range

    recomputed = read_report(url, city, FIRST, LAST, intervals, AFTER)
    assert recomputed == read_report(url, city, FIRST, LAST, intervals, AFTER, kept_days=False)
    assert recomputed != before
    assert {d.band for d in recomputed.air_days if d.day < LAST and d.valid} == {"nguy_hai"}

    bad = subprocess.run(
        [sys.executable, "-m", "ioc", "kpi", "recompute", "--from", "2026-11-04", "--to", "2026-11-02"],
        env=settings_env(settings), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "--from must not be after --to" in bad.stderr
