"""``GET /v1/kpis?period=week|month|year`` against a real PostgreSQL: ten local days across a week's and
a month's boundary (Tuesday 2025-11-25 to Thursday 2025-12-04), each period a report of its own days with
hand-checked figures per KPI family (air band and exceedance days and the 75 % rule of a mean, traffic's
flow-weighted TTI and congested hours, water's low-oxygen hours, boardings, MTTA over the period's own
alerts), its completeness, `partial` for one under way, and the same as CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from ioc.api import create_app
from ioc.api.examples import EXAMPLES
from ioc.history.store import HistoryStore, WindowRow, alert_row, upgrade
from ioc.models.alert import Alert, AlertChange, AlertEvent, AlertStatus
from tests.conftest import TEST_KEYS

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
FIRST, LAST = date(2025, 11, 25), date(2025, 12, 4)
HEADERS = {"X-API-Key": TEST_KEYS["operator"]}
FREE_FLOW = 40.0  # traffic-nga-tu-so's in the registry


def midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), ZONE)


def window(feed: str, length: str, sensor: str, start: datetime, means: dict[str, float]) -> WindowRow:
    return WindowRow(feed, length, sensor, start, 12, start, means, json.dumps({"sensorId": sensor}))


def rows() -> tuple[list[WindowRow], list[tuple]]:
    """Each day: Hoàn Kiếm's 24 hourly PM2.5 means (40 µg/m³ in November: moderate, under 2025's 50 limit;
    60 in December: poor, above it), an hour of Ngã Tư Sở standing still, 12 five-minute intervals of the
    morning peak (November at half the free-flow speed and 30 vehicles, December at 32 km/h and 60), an hour
    of Hồ Tây with dissolved oxygen at 1 mg/L, and two boardings at a bus stop."""
    windows, taps = [], []
    for n in range((LAST - FIRST).days + 1):
        day = FIRST + timedelta(days=n)
        start = midnight(day)
        november = day.month == 11
        for h in range(24):
            pm25 = 40.0 if november else 60.0
            windows.append(window("air", "1h", "air-hoan-kiem", start + timedelta(hours=h), {"pm25": pm25}))
        windows.append(window("traffic", "1h", "traffic-nga-tu-so", start + timedelta(hours=12),
                              {"average_vehicle_speed": 0.0, "intensity": 90.0}))  # fmt: skip
        speed, flow = (FREE_FLOW / 2, 30.0) if november else (32.0, 60.0)
        for m in range(0, 60, 5):
            windows.append(window("traffic", "5m", "traffic-nga-tu-so", start + timedelta(hours=7, minutes=m),
                                  {"average_vehicle_speed": speed, "intensity": flow}))  # fmt: skip
        windows.append(window("water", "1h", "water-ho-tay", start + timedelta(hours=6),
                              {"dissolved_oxygen": 1.0, "temperature": 25.0, "ph": 7.2}))  # fmt: skip
        for t in range(2):
            at = start + timedelta(hours=8, minutes=t)
            taps.append(("bus-kim-ma", f"b{n}-{t}", at, "bus", "01", "BOARD", f"bus-{n}-{t}"))
    return windows, taps


def acknowledged(alert_id: str, opened: datetime, minutes: float, district: str = "dong-da") -> list[tuple]:
    alert = Alert.model_validate(EXAMPLES["open_alert"]).model_copy(
        update={"id": alert_id, "episode_start": opened, "district": district}
    )
    acked = alert.model_copy(
        update={"status": AlertStatus.acknowledged, "acknowledged_at": opened + timedelta(minutes=minutes),
                "acknowledged_by": "operator"}
    )  # fmt: skip
    events = [
        AlertEvent(change=AlertChange.opened, revision=1, at=opened, alert=alert),
        AlertEvent(change=AlertChange.acknowledged, revision=2, at=opened + timedelta(minutes=minutes),
                   alert=acked),
    ]  # fmt: skip
    return [alert_row(e.to_json()) for e in events]


def test_kpis_per_week_month_and_year_of_ten_days(database):
    settings = database
    url = settings.database_address
    upgrade(url)
    windows, taps = rows()
    alerts = acknowledged("a-26", datetime(2025, 11, 26, 9, tzinfo=ZONE), 4)
    alerts += acknowledged("a-27", datetime(2025, 11, 27, 9, tzinfo=ZONE), 10)
    alerts += acknowledged("a-01", datetime(2025, 12, 1, 0, 30, tzinfo=ZONE), 30)  # Monday: week 49
    store = HistoryStore(url, ZONE.key)
    try:
        store.write(windows, alerts, [], taps)
    finally:
        store.close()

    span = {"from": FIRST.isoformat(), "to": LAST.isoformat()}
    today = datetime.now(ZONE).date()
    with TestClient(create_app(settings)) as client:

        def get(**params):
            return client.get("/v1/kpis", params=span | params, headers=HEADERS)

        weeks, months, year, days = get(period="week"), get(period="month"), get(period="year"), get()
        table = client.get(
            "/v1/kpis", params=span | {"period": "week"}, headers=HEADERS | {"Accept": "text/csv"}
        )
        november_alone = get(period="day", **{"from": "2025-11-01", "to": "2025-11-30"})
        this_month = client.get(
            "/v1/kpis", params={"from": today.isoformat(), "to": today.isoformat(), "period": "month"},
            headers=HEADERS,
        )  # fmt: skip
        unknown = get(period="fortnight")

    assert weeks.status_code == 200, weeks.text
    answer = weeks.json()
    assert (answer["period"], answer["firstDay"], answer["lastDay"]) == ("week", "2025-11-24", "2025-12-07")
    w48, w49 = answer["periods"]
    assert [(p["period"], p["firstDay"], p["lastDay"], p["days"], p["daysElapsed"], p["partial"])
            for p in (w48, w49)] == [("2025-W48", "2025-11-24", "2025-11-30", 7, 7, False),
                                     ("2025-W49", "2025-12-01", "2025-12-07", 7, 7, False)]  # fmt: skip
    assert w48["standard"].startswith("VN_AQI") and w48["kpiVersion"] >= 3
    assert 0 < w48["completeness"] < 1  # the registry's other sensors sent nothing

    def scope(period: dict, family: str, name: str) -> dict:
        items = period[family]["scopes"] if family == "transit" else period[family]
        return next(s for s in items if s["scope"] == name)

    # Air: 6 valid days of 7 in week 48 (86 % ≥ 75 %: a mean), 4 of 7 in week 49 (insufficient: null).
    hk48, hk49 = scope(w48, "air", "air-hoan-kiem"), scope(w49, "air", "air-hoan-kiem")
    assert (hk48["daysValid"], hk48["daysExpected"], hk48["completeness"]) == (6, 7, 0.857)
    assert (hk48["bandDays"]["trung_binh"], hk48["exceedanceDays"], hk48["pm25Mean"]) == (6, {}, 40.0)
    assert (hk49["bandDays"]["kem"], hk49["exceedanceDays"], hk49["pm25Mean"]) == (4, {"pm25": 4}, None)
    assert scope(w49, "air", "city")["bandDays"]["kem"] == 4  # the city: its station-days
    # Traffic: TTI at the weekday peaks (week 48: Tue–Fri at half the free-flow speed; 29th, 30th a weekend).
    t48, t49 = scope(w48, "traffic", "traffic-nga-tu-so"), scope(w49, "traffic", "traffic-nga-tu-so")
    assert (t48["ttiPeak"], t48["peakIntervals"], t48["congestedHours"]) == (2.0, 48, 6)
    assert (t49["ttiPeak"], t49["peakIntervals"], t49["congestedHours"]) == (1.25, 48, 4)
    assert (
        scope(w48, "water", "water-ho-tay")["lowDoHours"],
        scope(w49, "water", "water-ho-tay")["lowDoHours"],
    ) == (6, 4)
    assert (
        scope(w48, "transit", "bus-kim-ma")["boardings"],
        scope(w49, "transit", "bus-kim-ma")["boardings"],
    ) == (12, 8)
    # MTTA over each week's own alerts.
    assert [(o["alerts"], o["mttaMinutes"]["median"]) for o in w48["operations"]] == [(2, 7.0)]
    assert [(o["alerts"], o["mttaMinutes"]["median"]) for o in w49["operations"]] == [(1, 30.0)]

    assert months.status_code == 200, months.text
    november, december = months.json()["periods"]
    assert (november["period"], november["days"], december["period"], december["days"]) == (
        "2025-11",
        30,
        "2025-12",
        31,
    )
    hk11 = scope(november, "air", "air-hoan-kiem")
    assert (hk11["daysValid"], hk11["daysExpected"], hk11["pm25Mean"]) == (6, 30, None)  # 20 %: insufficient
    assert scope(december, "traffic", "traffic-nga-tu-so")["congestedHours"] == 4
    assert [o["mttaMinutes"]["median"] for o in november["operations"]] == [7.0]
    # The month is the days report over exactly its days.
    alone = november_alone.json()
    assert {k: november[k] for k in alone} == alone

    # A year: the TTI weighted by flow over all its peak intervals, (4·12·30·2 + 4·12·60·1.25) / (4·12·90) =
    # 1.5 (a mean of the two months' would be 1.625); MTTA the median of the three alerts (4, 10, 30).
    [whole] = year.json()["periods"]
    assert whole["period"] == "2025" and whole["days"] == 365
    assert scope(whole, "traffic", "traffic-nga-tu-so")["ttiPeak"] == 1.5
    assert [o["mttaMinutes"]["median"] for o in whole["operations"]] == [10.0]
    assert scope(whole, "air", "air-hoan-kiem")["bandDays"]["kem"] == 4

    # period=day (the default) is the report of the days as before.
    assert (
        days.status_code == 200 and "periods" not in days.json() and days.json()["firstDay"] == "2025-11-25"
    )

    assert table.headers["content-type"].startswith("text/csv")
    found = list(csv.DictReader(io.StringIO(table.text)))
    assert list(found[0]) == ["kpi", "scope", "from", "to", "value", "unit", "completeness", "stations",
                              "standard", "period", "partial"]  # fmt: skip
    band = {(r["period"], r["from"], r["to"], r["value"], r["partial"]) for r in found
            if r["kpi"] == "air.band_days.trung_binh" and r["scope"] == "air-hoan-kiem"}  # fmt: skip
    assert band == {("2025-W48", "2025-11-24", "2025-11-30", "6", "False"),
                    ("2025-W49", "2025-12-01", "2025-12-07", "0", "False")}  # fmt: skip

    # The month under way says so, its days counted until today.
    [current] = this_month.json()["periods"]
    assert current["partial"] is True and current["daysElapsed"] == today.day
    assert unknown.status_code == 422


def test_a_period_widened_beyond_the_calendar_is_refused(database):
    with TestClient(create_app(database)) as client:
        answers = [
            client.get("/v1/kpis", params={"from": "9999-12-28", "to": "9999-12-29", "period": period},
                       headers=HEADERS).status_code
            for period in ("week", "month", "year")
        ]  # fmt: skip
    assert answers == [422, 422, 422]  # its week, month and year end after 9999-12-31
