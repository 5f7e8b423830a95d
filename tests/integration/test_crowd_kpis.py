"""Crowd KPIs against a real Kafka and PostgreSQL: counters' readings through the reading path's windows,
published and written by ``ioc history`` into the store, then daily visitors per zone, area and the city
and the hours at or over 80 % of the safe capacity in ``GET /v1/kpis`` and its CSV."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from connectors.kafka import create_topics
from ioc.alerts.rules import load_rules
from ioc.api import create_app
from ioc.city import load_city
from ioc.feeds.crowd.model import CrowdFlowObserved
from ioc.history.store import upgrade
from ioc.recording import RecordedEvent
from ioc.step import OfflineRun
from tests.conftest import TEST_KEYS
from tests.integration.test_history import caught_up, send
from tests.processes import IocProcess, wait_for

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = datetime(2026, 12, 1, tzinfo=ZONE)
# The registry's safe capacities: Văn Miếu 10,000 (Đống Đa), the Imperial Citadel 15,000 and Ba Đình
# square 16,000 (both Ba Đình).
VAN_MIEU, HOANG_THANH, BA_DINH = "crowd-van-mieu", "crowd-hoang-thanh", "crowd-quang-truong-ba-dinh"


def counts(zone: str, start: datetime, people: list[int]) -> list[CrowdFlowObserved]:
    """One reading every 5 minutes from ``start``."""
    return [
        CrowdFlowObserved(sensor_id=zone, date_observed=start + timedelta(minutes=5 * n), people_count=p)
        for n, p in enumerate(people)
    ]


def test_daily_visitors_and_hours_over_80_percent_from_the_stored_windows(database, tmp_path):
    settings = database
    upgrade(settings.database_address)
    create_topics(settings)
    # Văn Miếu 08:00–12:00: 4,000 people but for half an hour at 85 % and a peak of 9,000 within it.
    van_mieu = [4000] * 12 + [8500, 8500, 9000, 8500, 8500, 8500] + [4000] * 30
    readings = counts(VAN_MIEU, DAY + timedelta(hours=8), van_mieu)
    readings += counts(HOANG_THANH, DAY + timedelta(hours=10), [6000] * 12)  # 40 %: never over
    readings += counts(BA_DINH, DAY + timedelta(hours=21), [16000])  # the flag ceremony: 100 %, 5 minutes
    readings += counts(VAN_MIEU, DAY + timedelta(days=1, hours=9), [3000, 3500])  # the next day

    # The reading path's windows, every version as it publishes them, through the sink into the store.
    run = OfflineRun(settings, load_rules(settings.rules), load_city(settings.city))
    records = []
    for reading in readings:
        for feed, result in run.run([RecordedEvent.of(reading)]):
            for (label, sensor_id, _), window in result.aggregates.items():
                records.append((settings.agg_topic(feed, label), sensor_id, window.json))
    asyncio.run(send(settings, records))
    sink = IocProcess(["history"], settings, tmp_path / "history.log")
    try:
        wait_for(lambda: caught_up(settings), timeout=90, processes=[sink])
    finally:
        sink.stop()
    with psycopg.connect(settings.database_address) as connection:
        stored = dict(
            connection.execute(
                "SELECT window_len, count(*) FROM windows WHERE feed = 'crowd' GROUP BY 1"
            ).fetchall()
        )
    assert stored == {"5m": len(readings), "1h": 4 + 1 + 1 + 1}

    headers = {"X-API-Key": TEST_KEYS["operator"]}
    with TestClient(create_app(settings)) as client:
        one_day = client.get("/v1/kpis", params={"from": "2026-12-01", "to": "2026-12-01"}, headers=headers)
        two_days = client.get("/v1/kpis", params={"from": "2026-12-01", "to": "2026-12-02"}, headers=headers)
        table = client.get(
            "/v1/kpis",
            params={"from": "2026-12-01", "to": "2026-12-01"},
            headers=headers | {"Accept": "text/csv"},
        )
    assert one_day.status_code == 200, one_day.text
    scopes = {scope["scope"]: scope for scope in one_day.json()["crowd"]}
    # The city, its areas with a count, then its zones with one (by id).
    assert list(scopes) == ["city", "ba-dinh", "dong-da", HOANG_THANH, BA_DINH, VAN_MIEU]
    # Daily visitors: each zone's peak, summed; hours over 80 %: 6 + 1 windows of 5 minutes.
    city = scopes["city"]
    assert city["zones"] == 3
    assert city["dailyVisitors"] == {"2026-12-01": 9000 + 6000 + 16000}
    assert city["visitors"] == 31000
    assert city["hoursOver80"] == round(7 * 5 / 60, 2)
    assert city["dailyHoursOver80"] == {"2026-12-01": round(7 * 5 / 60, 2)}
    assert city["peakShare"] == 100.0
    assert scopes["ba-dinh"]["dailyVisitors"] == {"2026-12-01": 6000 + 16000}
    assert scopes["ba-dinh"]["hoursOver80"] == round(5 / 60, 2)
    van_mieu_scope = scopes[VAN_MIEU]
    assert (van_mieu_scope["visitors"], van_mieu_scope["hoursOver80"], van_mieu_scope["peakShare"]) == (
        9000,
        0.5,
        90.0,
    )
    assert van_mieu_scope["completeness"] == round(48 / 288, 3)  # 4 hours of a day's 288 counts
    assert scopes[HOANG_THANH]["hoursOver80"] == 0.0 and scopes[HOANG_THANH]["peakShare"] == 40.0
    # A city zone without a count in the period is no data: neither a zone nor a day of no visitors.
    assert "crowd-pho-co" not in scopes
    # Two days: one figure a day.
    assert two_days.status_code == 200, two_days.text
    two = {scope["scope"]: scope for scope in two_days.json()["crowd"]}
    assert two[VAN_MIEU]["dailyVisitors"] == {"2026-12-01": 9000, "2026-12-02": 3500}
    assert two[VAN_MIEU]["dailyHoursOver80"] == {"2026-12-01": 0.5, "2026-12-02": 0.0}
    assert two["city"]["visitors"] == 31000 + 3500

    # The same values as CSV, one row per KPI value.
    rows = list(csv.DictReader(io.StringIO(table.text)))
    crowd_rows = {
        (r["kpi"], r["scope"], r["from"], r["to"]): r for r in rows if r["kpi"].startswith("crowd.")
    }
    day = ("2026-12-01", "2026-12-01")
    assert crowd_rows[("crowd.daily_visitors", "city", *day)]["value"] == "31000"
    assert crowd_rows[("crowd.daily_visitors", "city", *day)]["unit"] == "people"
    assert crowd_rows[("crowd.hours_over_80", VAN_MIEU, *day)]["value"] == "0.5"
    assert crowd_rows[("crowd.peak_share", "dong-da", *day)]["value"] == "90.0"
