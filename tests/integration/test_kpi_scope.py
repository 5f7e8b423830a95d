"""``GET /v1/kpis`` for a district-scoped operator key against a real PostgreSQL (least privilege): the
days of ``test_kpi_periods`` (Hoàn Kiếm's air, Đống Đa's traffic, Tây Hồ's water, Ba Đình's boardings)
and an alert in each of Hoàn Kiếm and Đống Đa. A key scoped to Hoàn Kiếm gets, per day and per month, in
JSON and CSV, only Hoàn Kiếm's and its stations' rows, as the city's answer has them, no ``city`` row,
and MTTA of its own alert; the unscoped operator's answer is the whole city's, as before."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ioc.api import create_app
from ioc.city import load_city
from ioc.history.store import HistoryStore, upgrade
from ioc.kpis.report import Kpis
from tests.conftest import TEST_KEYS
from tests.integration.test_kpi_periods import FIRST, LAST, ZONE, acknowledged, rows

pytestmark = pytest.mark.integration

HK_KEY = "kpi-scope-hoan-kiem-key"
HK = {"X-API-Key": HK_KEY}
CITY = {"X-API-Key": TEST_KEYS["operator"]}
SPAN = {"from": FIRST.isoformat(), "to": LAST.isoformat()}


def in_hoan_kiem(scope: str) -> bool:
    sensor = load_city("hanoi").sensor(scope)
    return scope == "hoan-kiem" or (sensor is not None and sensor.district == "hoan-kiem")


def scopes(report: dict) -> set[str]:
    """Every scope a report's rows name, of every KPI family."""
    found = {r["scope"] for family in ("air", "traffic", "water", "crowd", "dataCompleteness")
             for r in report[family]}  # fmt: skip
    found |= {r["scope"] for r in report["transit"]["scopes"]}
    found |= {d["station"] for d in report["airDays"]}
    found |= {
        c[end] for d in report["transit"]["odFlows"] for c in d["cells"] for end in ("origin", "destination")
    }
    return found


def test_a_scoped_key_gets_its_districts_kpis_and_the_city_key_the_citys(database):
    settings = database
    url = settings.database_address
    upgrade(url)
    windows, taps = rows()
    alerts = acknowledged("a-hk", datetime(2025, 11, 26, 9, tzinfo=ZONE), 4, "hoan-kiem")
    alerts += acknowledged("a-dd", datetime(2025, 11, 27, 9, tzinfo=ZONE), 30, "dong-da")
    store = HistoryStore(url, ZONE.key)
    try:
        store.write(windows, alerts, [], taps)
    finally:
        store.close()
    keys = f"{settings.api_keys.get_secret_value()},hk:operator@hoan-kiem:{HK_KEY}"
    settings = settings.model_copy(update={"api_keys": SecretStr(keys)})

    with TestClient(create_app(settings)) as client:

        def get(headers: dict, csv_: bool = False, **params: str):
            accept = {"Accept": "text/csv"} if csv_ else {}
            answer = client.get("/v1/kpis", params=SPAN | params, headers=headers | accept)
            assert answer.status_code == 200, answer.text
            return answer

        mine, city = get(HK).json(), get(CITY).json()
        mine_month, city_month = get(HK, period="month").json(), get(CITY, period="month").json()
        table, month_table = get(HK, True).text, get(HK, True, period="month").text
        city_table = get(CITY, True).text

    # The city key: today's answer, every district and the city, nothing a scoped answer adds.
    assert set(city) == {field.alias for field in Kpis.model_fields.values()}
    assert {"city", "hoan-kiem", "dong-da", "air-hoan-kiem", "traffic-nga-tu-so", "water-ho-tay"} <= scopes(
        city
    )
    assert [o["alerts"] for o in city["operations"]] == [2]
    assert "districts" not in city_month and all("districts" not in p for p in city_month["periods"])
    assert ",city," in city_table and "traffic-nga-tu-so" in city_table

    # The scoped key: Hoàn Kiếm's rows only, the same rows the city's answer has.
    assert mine["districts"] == ["hoan-kiem"] and mine["withheld"]
    assert all(in_hoan_kiem(s) for s in scopes(mine)), scopes(mine)
    assert {"hoan-kiem", "air-hoan-kiem"} <= scopes(mine)
    hk = next(a for a in mine["air"] if a["scope"] == "air-hoan-kiem")
    assert hk == next(a for a in city["air"] if a["scope"] == "air-hoan-kiem")
    assert mine["airDays"] and {d["station"] for d in mine["airDays"]} <= {"air-hoan-kiem", "air-hang-dau"}
    assert mine["transit"]["odFlows"] == []
    # MTTA of its own alert only (4 minutes), not of Đống Đa's (30).
    assert [(o["alerts"], o["mttaMinutes"]["median"]) for o in mine["operations"]] == [(1, 4.0)]

    # Per month: each period cut the same way, its completeness Hoàn Kiếm's.
    assert mine_month["districts"] == ["hoan-kiem"]
    for period, whole in zip(mine_month["periods"], city_month["periods"], strict=True):
        assert period["period"] == whole["period"]
        assert all(in_hoan_kiem(s) for s in scopes(period)), scopes(period)
        assert "air-hoan-kiem" in scopes(period)
    november = mine_month["periods"][0]
    assert [(o["alerts"], o["mttaMinutes"]["median"]) for o in november["operations"]] == [(1, 4.0)]
    hk_data = [c for c in november["dataCompleteness"] if c["scope"] == "hoan-kiem"]
    assert november["completeness"] == round(
        sum(c["received"] for c in hk_data) / sum(c["expected"] for c in hk_data), 3
    )

    # CSV, per day and per month: the same scopes, no city row.
    for text in (table, month_table):
        found = list(csv.DictReader(io.StringIO(text)))
        assert found
        for row in found:
            scope = row["scope"].rsplit(":", 1)[-1]  # ops rows: severity:feed; completeness: feed:scope
            if row["kpi"].startswith("ops.") and row["kpi"] != "ops.data_completeness":
                continue
            assert in_hoan_kiem(scope), row
