"""The history store against a real PostgreSQL and Kafka: migrations once, the sink (``ioc history``)
writing every window and alert event once across a SIGKILL and a replay, and ``GET /v1/history``."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from connectors.kafka import EventProducer, create_topics
from ioc.alerts.rules import load_rules
from ioc.api import create_app
from ioc.api.examples import EXAMPLES
from ioc.city import load_city
from ioc.history.sink import history_group, history_topics
from ioc.history.store import HistoryStore, WindowRow, alert_row, current_version, migrations, upgrade
from ioc.indices.air import us_aqi, vn_aqi_daily
from ioc.models.alert import Alert, AlertChange, AlertEvent, Incident, IncidentChange, IncidentEvent
from ioc.recording import in_event_time_order, load_events
from ioc.step import OfflineRun
from tests.conftest import TEST_KEYS
from tests.processes import IocProcess, committed_offsets, wait_for

pytestmark = pytest.mark.integration

RECORDING = Path(__file__).parents[2] / "examples" / "hanoi-morning.jsonl.gz"
SENSOR = "air-hoan-kiem"


def test_migrations_are_applied_once_and_in_order(database):
    url = database.database_address
    assert current_version(url) is None
    assert upgrade(url) == [version for version, _, _ in migrations()]
    assert upgrade(url) == []  # a second upgrader finds nothing to do
    assert current_version(url) == migrations()[-1][0]
    with psycopg.connect(url) as connection:
        tables = {
            row[0]
            for row in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    assert {"windows_default", "alert_events", "incident_events", "schema_migrations"} <= tables


def published_windows(settings) -> list[tuple[str, str, bytes]]:
    """Every version of every air window the reading path publishes over the shipped recording, in order,
    as (topic, key, value)."""
    _, events = load_events(RECORDING)
    run = OfflineRun(settings, load_rules(settings.rules), load_city(settings.city))
    records = []
    for event in (e for e in in_event_time_order(events) if e.feed == "air"):
        for feed, result in run.run([event]):  # one at a time: every version of its windows
            for (label, sensor_id, _), window in result.aggregates.items():
                records.append((settings.agg_topic(feed, label), sensor_id, window.json))
    return records


def alert_records(settings) -> list[tuple[str, str, bytes]]:
    alert = Alert.model_validate(EXAMPLES["open_alert"])
    opened = AlertEvent(change=AlertChange.opened, revision=1, at=alert.episode_start, alert=alert)
    updated = opened.model_copy(update={"change": AlertChange.updated, "revision": 2})
    incident = Incident.model_validate(EXAMPLES["incident"])
    grouped = IncidentEvent(
        change=IncidentChange.opened, revision=1, at=incident.started_at, incident=incident
    )
    return [
        *((settings.alerts_topic, e.key, e.to_json()) for e in (opened, updated, opened)),  # one twice
        (settings.incidents_topic, grouped.key, grouped.to_json()),
    ]


async def send(settings, records) -> None:
    async with EventProducer(settings) as producer:
        await producer.send_many(records)


def caught_up(settings) -> bool:
    offsets = committed_offsets(settings, history_group(settings), history_topics(settings))
    return all(done == end for done, end in offsets.values())


def test_the_sink_writes_each_window_and_event_once_across_a_kill_and_a_replay(database, tmp_path):
    settings = database
    create_topics(settings)
    windows = published_windows(settings)
    final: dict[tuple[str, str, str], dict] = {}  # the latest version of each window, as published
    for _, _, value in windows:
        aggregate = json.loads(value)
        final[(aggregate["window"], aggregate["sensorId"], utc(aggregate["windowStart"]))] = aggregate
    assert len(windows) > len(final) > 100  # several versions of most windows
    asyncio.run(send(settings, windows[: len(windows) // 2]))

    def rows() -> dict[tuple[str, str, str], tuple[int, dict]]:
        with psycopg.connect(settings.database_address) as connection:
            found = connection.execute(
                "SELECT window_len, sensor_id, start, count, means FROM windows"
            ).fetchall()
        return {(w, s, utc(start)): (count, means) for w, s, start, count, means in found}

    sink = IocProcess(["history"], settings, tmp_path / "history-1.log")
    try:
        wait_for(lambda: caught_up(settings) and rows(), timeout=90, processes=[sink])
        sink.process.kill()  # SIGKILL: whatever it had not committed is written again by the next one
        sink.stop()
        # The rest, then all of it again (a replay), and the alert and incident events.
        asyncio.run(send(settings, windows[len(windows) // 2 :] + windows + alert_records(settings)))
        sink = IocProcess(["history"], settings, tmp_path / "history-2.log")
        wait_for(lambda: caught_up(settings), timeout=120, processes=[sink])
    finally:
        sink.stop()

    stored = rows()
    assert len(stored) == len(final)
    for key, aggregate in final.items():
        count, means = stored[key]
        assert count == aggregate["count"], key
        assert means == {n: f["mean"] for n, f in aggregate["fields"].items() if f.get("mean") is not None}
    with psycopg.connect(settings.database_address) as connection:
        alerts = connection.execute(
            "SELECT alert_id, revision, change FROM alert_events ORDER BY revision"
        ).fetchall()
        incidents = connection.execute("SELECT count(*) FROM incident_events").fetchone()
    alert_id = EXAMPLES["open_alert"]["id"]
    assert alerts == [(alert_id, 1, "opened"), (alert_id, 2, "updated")]
    assert incidents == (1,)

    # GET /v1/history reads them back: the sensor's hourly PM2.5, and its day averaged by readings.
    hours = sorted(
        (a for (label, sensor_id, _), a in final.items() if label == "1h" and sensor_id == SENSOR),
        key=lambda a: a["windowStart"],
    )
    first = datetime.fromisoformat(hours[0]["windowStart"])
    query = {"sensor": SENSOR, "measure": "pm25", "window": "1h", "from": first.isoformat()}
    query["to"] = (first + timedelta(days=1)).isoformat()
    with TestClient(create_app(settings)) as client:
        headers = {"X-API-Key": TEST_KEYS["operator"]}
        series = client.get("/v1/history", params=query, headers=headers)
        series_csv = client.get("/v1/history", params=query, headers=headers | {"Accept": "text/csv"})
        day = client.get("/v1/history", params=query | {"step": "1d"}, headers=headers)
        unknown = client.get("/v1/history", params=query | {"measure": "speed"}, headers=headers)
        anonymous = client.get("/v1/history", params=query)
        metrics = client.get("/metrics").text
    assert series.status_code == 200, series.text
    points = series.json()["points"]
    assert [(p["readings"], p["mean"]) for p in points] == [
        (a["count"], a["fields"]["pm25"]["mean"]) for a in hours
    ]
    assert series_csv.text.splitlines()[0] == "start,mean,readings"
    assert len(series_csv.text.splitlines()) == len(points) + 1
    weighted = sum(a["count"] * a["fields"]["pm25"]["mean"] for a in hours) / sum(a["count"] for a in hours)
    [whole_day] = day.json()["points"]
    assert whole_day["readings"] == sum(a["count"] for a in hours)
    assert whole_day["mean"] == pytest.approx(weighted)
    assert unknown.status_code == 422 and "speed" in unknown.json()["detail"]
    assert anonymous.status_code == 401
    # The sink's lag, caught up: 0 on every topic it writes.
    for topic in history_topics(settings):
        assert f'ioc_consumer_lag{{stage="history",topic="{topic}"}} 0.0' in metrics


def utc(moment: str | datetime) -> str:
    return (datetime.fromisoformat(moment) if isinstance(moment, str) else moment).astimezone(UTC).isoformat()


def test_the_kpis_over_local_days_from_the_store_and_as_open_data(database, tmp_path):
    """Two stations of Hoàn Kiếm: one with a whole local day of hourly PM2.5 at 60 µg/m³ (over QCVN 05's
    45), one with 17 hours (not a valid day); two critical alerts, one acknowledged after 10 minutes."""
    settings = database
    upgrade(settings.database_address)
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    midnight = datetime(2026, 12, 1, tzinfo=zone)  # local: the day starts at 17:00 UTC the day before

    def hour(sensor_id: str, n: int, pm25: float) -> WindowRow:
        start = midnight + timedelta(hours=n)
        text = json.dumps({"sensorId": sensor_id, "windowStart": start.isoformat()})
        return WindowRow(
            "air", "1h", sensor_id, start, 60, start + timedelta(minutes=59), {"pm25": pm25}, text
        )

    windows = [hour("air-hoan-kiem", n, 60.0) for n in range(24)] + [
        hour("air-hang-dau", n, 20.0) for n in range(17)
    ]
    windows.append(hour("air-hoan-kiem", 24, 500.0))  # the next local day: not in the period

    def traffic(window: str, start: datetime, speed: float) -> WindowRow:
        means = {"average_vehicle_speed": speed, "intensity": 50.0}
        return WindowRow("traffic", window, "traffic-nga-tu-so", start, 5, start, means, "{}")

    # Ngã Tư Sở (free flow 40 km/h) at 20 km/h through the morning peak: TTI 2; one hour at 10 km/h: LOS F.
    windows += [traffic("5m", midnight + timedelta(hours=7, minutes=5 * n), 20.0) for n in range(24)]
    windows += [
        traffic("1h", midnight + timedelta(hours=10), 10.0),
        traffic("1h", midnight + timedelta(hours=11), 35.0),
    ]
    # Hồ Tây (managed for class B): one 15-minute sample far under it, with DO at 1 mg/L for an hour.
    foul = {"dissolved_oxygen": 1.0, "temperature": 25.0, "ph": 7.2, "bod5": 30.0, "cod": 60.0, "nh4_n": 5.0}
    for window in ("15m", "1h"):
        windows.append(
            WindowRow("water", window, "water-ho-tay", midnight + timedelta(hours=5), 1, midnight, foul, "{}")
        )
    alert = Alert.model_validate(EXAMPLES["open_alert"])  # critical, traffic
    opened_at = midnight + timedelta(hours=8)
    opened = AlertEvent(change=AlertChange.opened, revision=1, at=opened_at, alert=alert)
    acknowledged = alert.model_copy(update={"acknowledged_at": opened_at + timedelta(minutes=10)})
    later = AlertEvent(change=AlertChange.acknowledged, revision=2, at=opened_at, alert=acknowledged)
    other = alert.model_copy(update={"id": "a-other"})
    alerts = [alert_row(e.to_json()) for e in (opened, later)]
    alerts.append(
        alert_row(AlertEvent(change=AlertChange.opened, revision=1, at=opened_at, alert=other).to_json())
    )
    store = HistoryStore(settings.database_address)
    try:
        store.write(windows, alerts, [])
    finally:
        store.close()

    with TestClient(create_app(settings)) as client:
        headers = {"X-API-Key": TEST_KEYS["operator"]}
        period = {"from": "2026-12-01", "to": "2026-12-01"}
        answer = client.get("/v1/kpis", params=period, headers=headers)
        table = client.get("/v1/kpis", params=period, headers=headers | {"Accept": "text/csv"})
        day = {"measure": "pm25", "window": "1h", "from": midnight.isoformat()}
        day["to"] = (midnight + timedelta(days=1)).isoformat()
        area_history = client.get(
            "/v1/history", params=day | {"area": "hoan-kiem", "feed": "air"}, headers=headers
        )
        neither = client.get("/v1/history", params=day, headers=headers)
        no_feed = client.get("/v1/history", params=day | {"area": "hoan-kiem"}, headers=headers)
        nowhere = client.get("/v1/history", params=day | {"area": "atlantis", "feed": "air"}, headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    scopes = {scope["scope"]: scope for scope in body["air"]}
    city, area = scopes["city"], scopes["hoan-kiem"]
    assert (city["stations"], city["daysExpected"], city["daysValid"]) == (12, 12, 1)
    assert city["pm25Mean"] is None  # 1 of 12 station-days: far below 75 %
    assert (area["stations"], area["daysValid"], area["exceedanceDays"]) == (2, 1, {"pm25": 1})
    assert scopes["air-hoan-kiem"]["pm25Mean"] == 60.0 and scopes["air-hoan-kiem"]["bandDays"]["kem"] == 1
    days = {(d["station"], d["day"]): d for d in body["airDays"]}
    assert set(days) == {("air-hoan-kiem", "2026-12-01"), ("air-hang-dau", "2026-12-01")}
    assert days[("air-hoan-kiem", "2026-12-01")]["dailyAqi"] == vn_aqi_daily({"pm25": [60.0] * 24}).value
    us = us_aqi({"pm25_24h": 60.0})  # US EPA's daily AQI beside it: PM2.5's 24-hour mean
    assert us is not None and days[("air-hoan-kiem", "2026-12-01")]["dailyUsAqi"] == us.value
    assert days[("air-hoan-kiem", "2026-12-01")]["usBand"] == us.band.key == "unhealthy"
    assert not days[("air-hang-dau", "2026-12-01")]["valid"]
    traffic_scopes = {scope["scope"]: scope for scope in body["traffic"]}
    detector = traffic_scopes["traffic-nga-tu-so"]
    assert traffic_scopes["dong-da"] | {"completeness": None} == detector | {
        "scope": "dong-da",
        "completeness": None,
    }
    # Completeness: readings received / expected from the feed's interval, each sensor-day capped.
    assert detector["completeness"] == round(10 / 288, 3)  # two hours of 5 readings, of 288 a day
    data = {(c["feed"], c["scope"]): c for c in body["dataCompleteness"]}
    assert data[("air", "air-hoan-kiem")]["completeness"] == 1.0
    assert data[("air", "air-hang-dau")]["daily"] == {"2026-12-01": round(17 / 24, 3)}
    assert (data[("air", "city")]["received"], data[("air", "city")]["expected"]) == (41 * 60, 12 * 1440)
    assert data[("air", "hoan-kiem")]["sensors"] == 2 and data[("water", "water-ho-tay")]["expected"] == 96
    assert (traffic_scopes["city"]["ttiPeak"], traffic_scopes["city"]["congestedHours"]) == (2.0, 1)
    assert traffic_scopes["city"]["peakIntervals"] == 24
    # The area's history: its two air stations together, weighted by readings (17 hours of both, 7 of one).
    assert area_history.status_code == 200, area_history.text
    assert area_history.json()["sensors"] == 2 and area_history.json()["area"] == "hoan-kiem"
    points = [(p["mean"], p["readings"]) for p in area_history.json()["points"]]
    assert points == [(40.0, 120)] * 17 + [(60.0, 60)] * 7
    # With the standard's bands behind them: VN_AQI's PM2.5 breakpoints, good from 0 to 25 µg/m³.
    assert [(b["key"], b["lower"], b["upper"]) for b in area_history.json()["bands"][:2]] == [
        ("tot", 0, 25),
        ("trung_binh", 25, 50),
    ]
    assert (neither.status_code, no_feed.status_code, nowhere.status_code) == (422, 422, 404)
    water = {scope["scope"]: scope for scope in body["water"]}["water-ho-tay"]
    assert (water["samples"], water["judged"], water["compliance"], water["lowDoHours"]) == (1, 1, 0.0, 1)
    [critical] = body["operations"]
    assert (critical["severity"], critical["alerts"], critical["acknowledged"]) == ("critical", 2, 1)
    assert critical["mttaMinutes"] == {"median": 10.0, "p90": 10.0}
    assert critical["acknowledgedWithin15Min"] == 0.5
    # The same values as CSV, one row per KPI value.
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    by_key = {(r["kpi"], r["scope"]): r for r in rows}
    assert by_key[("air.exceedance_days.pm25", "hoan-kiem")]["value"] == "1"
    assert by_key[("air.pm25_mean", "air-hoan-kiem")]["value"] == "60.0"
    assert by_key[("air.pm25_mean", "city")]["value"] == ""  # insufficient data, not a number
    assert by_key[("ops.mtta_median", "critical:traffic")]["value"] == "10.0"
    assert by_key[("air.daily_aqi", "air-hoan-kiem")]["standard"] == body["standard"]
    assert by_key[("air.daily_us_aqi", "air-hoan-kiem")]["value"] == str(us.value)
    assert by_key[("traffic.tti_peak", "traffic-nga-tu-so")]["completeness"] == str(round(10 / 288, 3))
    assert by_key[("ops.data_completeness", "air:air-hoan-kiem")]["value"] == "1.0"

    # The period as open data: `ioc export` writes it, the API serves it to anyone.
    out = tmp_path / "open-data"
    period_args = ["--from", "2026-12-01", "--to", "2026-12-01", "--out", str(out)]
    exported = IocProcess(["export", *period_args], settings, tmp_path / "export.log")
    assert exported.process.wait(60) == 0, (tmp_path / "export.log").read_text()
    exported.stop()
    folder = out / "2026-12-01_2026-12-01"
    assert sorted(f.name for f in folder.iterdir()) == [
        "air-daily.csv",
        "kpis.csv",
        "kpis.json",
        "stations.geojson",
    ]
    assert json.loads((folder / "kpis.json").read_text()) == body
    stations = json.loads((folder / "stations.geojson").read_text())
    assert len(stations["features"]) == 12
    [hoan_kiem] = [f for f in stations["features"] if f["properties"]["id"] == "air-hoan-kiem"]
    assert hoan_kiem["properties"]["pm25Mean"] == 60.0 and len(hoan_kiem["geometry"]["coordinates"]) == 2
    # Nothing about a person: no operator, no card, no alert text, no long digit run (a card number).
    everything = "".join(f.read_text() for f in folder.iterdir())
    for personal in ("operator", "acknowledged_by", "acknowledgedBy", "card", "title", "note"):
        assert personal not in everything
    assert not re.search(r"\d{12,}", everything)
    with TestClient(create_app(settings.model_copy(update={"open_data_dir": out}))) as client:
        served = client.get("/open-data/2026-12-01_2026-12-01/air-daily.csv")  # no key
        index = client.get("/open-data/index.json")
        outside = client.get("/open-data/../../etc/passwd")
    assert served.status_code == 200 and served.text == (folder / "air-daily.csv").read_text()
    assert index.json() == {
        "periods": [{"period": folder.name, "files": sorted(f.name for f in folder.iterdir())}]
    }
    assert outside.status_code == 404


def test_windows_past_their_retention_are_deleted_by_length(database):
    settings = database
    upgrade(settings.database_address)
    now = datetime(2026, 12, 4, tzinfo=UTC)

    def row(window: str, days_ago: int) -> WindowRow:
        start = now - timedelta(days=days_ago)
        return WindowRow("air", window, SENSOR, start, 1, start, {"pm25": 1.0}, "{}")

    store = HistoryStore(settings.database_address)
    try:
        store.write([row("1m", 40), row("1m", 1), row("15m", 40), row("1h", 400)], [], [])
        assert store.prune(settings.history_retention_days, now) == 1  # 1m: 30 days; 15m: a year; 1h: kept
        left = store.connection.execute("SELECT window_len, start FROM windows ORDER BY window_len, start")
        assert [(w, (now - start).days) for w, start in left.fetchall()] == [
            ("15m", 40),
            ("1h", 400),
            ("1m", 1),
        ]
    finally:
        store.close()


def test_an_entitys_history_as_ngsi_ld_temporal_entities(database):
    settings = database
    upgrade(settings.database_address)
    start = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    rows = [
        row_of("air-hoan-kiem", "1m", start + timedelta(minutes=n), {"pm25": 50.0 + n, "no2": 30.0})
        for n in range(5)
    ]
    store = HistoryStore(settings.database_address)
    try:
        store.write(rows, [], [])
    finally:
        store.close()
    entity = "urn:ngsi-ld:AirQualityObserved:air-hoan-kiem"
    between = {
        "timerel": "between",
        "timeAt": start.isoformat(),
        "endTimeAt": (start + timedelta(minutes=4)).isoformat(),
    }
    with TestClient(create_app(settings)) as client:
        headers = {"X-API-Key": TEST_KEYS["operator"]}

        def get(**params):
            return client.get(f"/ngsi-ld/v1/temporal/entities/{entity}", params=params, headers=headers)

        normalized = get(**between, attrs="pm25")
        simplified = get(**between, options="temporalValues", lastN=2)
        after = get(timerel="after", timeAt="2026-12-01T01:03:00")  # no offset: UTC
        open_ended = get(timerel="between", timeAt=start.isoformat(), attrs="pm25")  # until now
        wrong = get(timerel="during")
        unknown = client.get(
            "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:air-nowhere", headers=headers
        )
    assert normalized.status_code == 200, normalized.text
    body = normalized.json()
    assert body["id"] == entity and set(body) == {"id", "type", "pm25"}
    assert [(p["value"], p["observedAt"]) for p in body["pm25"]] == [
        (50.0 + n, (start + timedelta(minutes=n)).isoformat().replace("+00:00", "Z")) for n in range(4)
    ]
    assert {p["unitCode"] for p in body["pm25"]} == {"GQ"} and normalized.headers["Link"]
    pairs = simplified.json()
    assert [value for value, _ in pairs["pm25"]["values"]] == [52.0, 53.0] and len(
        pairs["no2"]["values"]
    ) == 2
    assert [p["value"] for p in after.json()["pm25"]] == [53.0, 54.0]
    assert len(open_ended.json()["pm25"]) == 5
    assert wrong.status_code == 422
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("ResourceNotFound")


def row_of(sensor_id: str, window: str, start: datetime, means: dict[str, float]) -> WindowRow:
    return WindowRow("air", window, sensor_id, start, 1, start, means, "{}")
