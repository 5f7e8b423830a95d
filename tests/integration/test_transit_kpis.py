"""Transit KPIs against a real Kafka and PostgreSQL: fare taps from the raw topic through ``ioc history``
into the store (no card id kept), boardings per station, line, area and day, and metro
origin–destination flows with every pair under k = 10 trips suppressed in ``GET /v1/kpis``, its CSV and
the open data."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from connectors.kafka import create_topics
from ioc.api import create_app
from ioc.city import load_city
from ioc.history.store import HistoryStore, upgrade
from ioc.kpis.report import read_report
from ioc.kpis.store import service_hours
from tests.conftest import TEST_KEYS
from tests.integration.test_history import caught_up, send
from tests.processes import IocProcess, wait_for

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = datetime(2026, 12, 1, tzinfo=ZONE)
CAT_LINH, LANG, THAI_HA = "metro-2a-cat-linh", "metro-2a-lang", "metro-2a-thai-ha"
BUS_STOP = "bus-kim-ma"  # lines 01 and 09


@dataclass(frozen=True)
class Tap:
    """A fare tap as the raw topic carries it (the transit feed's wire fields)."""

    station: str
    card_id_hash: str
    at: datetime
    direction: str
    line: str = "2A"
    mode: str = "metro"

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "sensorId": self.station,
                "dateObserved": self.at.isoformat(),
                "eventId": str(uuid.uuid4()),
                "cardIdHash": self.card_id_hash,
                "cardKeyId": "k1",
                "cardType": "adult",
                "mode": self.mode,
                "line": self.line,
                "deviceId": f"{self.station}-g1",
                "direction": self.direction,
                "fare": 8000 if self.direction == "EXIT" else 0,
            }
        ).encode()


def trips(origin: str, destination: str, count: int, first: datetime) -> list[Tap]:
    """``count`` cards each entering at ``origin`` and leaving at ``destination`` 20 minutes later."""
    found = []
    for n in range(count):
        card = uuid.uuid4().hex * 2  # 64 hex digits, like an HMAC
        entered = first + timedelta(minutes=n)
        found += [
            Tap(origin, card, entered, "ENTRY"),
            Tap(destination, card, entered + timedelta(minutes=20), "EXIT"),
        ]
    return found


def test_boardings_and_k_anonymous_flows_from_the_raw_taps(database, tmp_path):
    settings = database
    create_topics(settings)
    upgrade(settings.database_address)
    morning = DAY + timedelta(hours=7)
    taps = trips(CAT_LINH, LANG, 10, morning)  # k trips: published
    taps += trips(CAT_LINH, THAI_HA, 9, morning + timedelta(hours=1))  # k - 1: suppressed
    taps += trips(LANG, CAT_LINH, 4, morning + timedelta(days=1))  # the next day, outside the period
    card = "ab" * 32
    taps += [Tap(BUS_STOP, card, morning + timedelta(minutes=m), "BOARD", line="09", mode="bus")
             for m in range(3)]  # fmt: skip
    taps.append(Tap(LANG, "cd" * 32, morning + timedelta(hours=3), "ENTRY"))  # never exits
    records = [(settings.raw_topic("transit"), t.station, t.to_json()) for t in taps]
    asyncio.run(send(settings, records + records[:5]))  # the first taps twice: stored once

    sink = IocProcess(["history"], settings, tmp_path / "history.log")
    try:
        wait_for(lambda: caught_up(settings), timeout=90, processes=[sink])
    finally:
        sink.stop()
    with psycopg.connect(settings.database_address) as connection:
        stored = connection.execute("SELECT count(*), count(DISTINCT rider) FROM transit_taps").fetchone()
        riders = {row[0] for row in connection.execute("SELECT rider FROM transit_taps")}
    assert stored == (len(taps), 10 + 9 + 4 + 1 + 1)
    assert not riders & {t.card_id_hash for t in taps}  # no card id, not even its HMAC

    out = tmp_path / "open-data"
    period = {"from": "2026-12-01", "to": "2026-12-01"}
    with TestClient(create_app(settings)) as client:
        headers = {"X-API-Key": TEST_KEYS["operator"]}
        answer = client.get("/v1/kpis", params=period, headers=headers)
        table = client.get("/v1/kpis", params=period, headers=headers | {"Accept": "text/csv"})
    assert answer.status_code == 200, answer.text
    transit = answer.json()["transit"]
    scopes = {scope["scope"]: scope for scope in transit["scopes"]}
    # Boardings: entries and bus boardings, not exits; per day, station, line and area.
    assert scopes["city"]["boardings"] == 10 + 9 + 1 + 3
    assert scopes["city"]["dailyBoardings"] == {"2026-12-01": 23}
    assert scopes[CAT_LINH]["boardings"] == 19 and scopes[LANG]["boardings"] == 1
    assert (
        scopes["2A"]["boardings"] == 20 and scopes["09"]["boardings"] == 3 and scopes["01"]["boardings"] == 0
    )
    assert scopes[BUS_STOP]["kind"] == "station" and scopes[BUS_STOP]["peak15Min"] == 3
    assert scopes[CAT_LINH]["peak15Min"] == 10  # 07:00–07:15 holds the first ten entries
    assert scopes["dong-da"]["kind"] == "area" and scopes["city"]["stations"] == 42
    # Cát Linh reported in 2 of its 17 service hours (05–21).
    assert scopes[CAT_LINH]["completeness"] == round(2 / 17, 3)
    [day] = transit["odFlows"]
    assert transit["k"] == 10
    assert day["cells"] == [{"origin": CAT_LINH, "destination": LANG, "trips": 10}]
    assert (day["trips"], day["suppressedTrips"], day["suppressedCells"]) == (19, 9, 1)
    assert (day["unmatchedEntries"], day["unmatchedExits"]) == (1, 0)

    rows = list(csv.DictReader(io.StringIO(table.text)))
    flows = [r for r in rows if r["kpi"] == "transit.od_flows"]
    assert [(r["scope"], r["value"]) for r in flows] == [(f"{CAT_LINH}>{LANG}", "10")]
    by_key = {(r["kpi"], r["scope"], r["from"]): r for r in rows}
    assert by_key[("transit.boardings", "2A", "2026-12-01")]["value"] == "20"
    assert by_key[("transit.od_suppressed_trips", "city", "2026-12-01")]["value"] == "9"
    assert by_key[("transit.gate_availability", CAT_LINH, "2026-12-01")]["value"] == str(round(2 / 17, 3))

    exported = IocProcess(
        ["export", "--from", "2026-12-01", "--to", "2026-12-01", "--out", str(out)],
        settings,
        tmp_path / "export.log",
    )
    assert exported.process.wait(60) == 0, (tmp_path / "export.log").read_text()
    exported.stop()
    folder = out / "2026-12-01_2026-12-01"
    published = {f.name: f.read_text() for f in folder.iterdir()}
    assert json.loads(published["kpis.json"])["transit"] == transit
    # No flow under k anywhere: every published cell has k trips or more, and the 9-trip pair is absent.
    for text in (*published.values(), answer.text, table.text):
        assert f"{CAT_LINH}>{THAI_HA}" not in text
        assert not any(t.card_id_hash in text for t in taps) and not any(r in text for r in riders)
    cells = [c for d in json.loads(published["kpis.json"])["transit"]["odFlows"] for c in d["cells"]]
    assert cells and all(c["trips"] >= 10 for c in cells)
    assert all(int(r["value"]) >= 10 for r in csv.DictReader(io.StringIO(published["kpis.csv"]))
               if r["kpi"] == "transit.od_flows")  # fmt: skip
    assert not any(c["destination"] == THAI_HA for d in transit["odFlows"] for c in d["cells"])

    # A late trip makes the suppressed pair k strong: the day's cached flows are matched again.
    late = trips(CAT_LINH, THAI_HA, 1, morning + timedelta(hours=2))
    asyncio.run(send(settings, [(settings.raw_topic("transit"), t.station, t.to_json()) for t in late]))
    sink = IocProcess(["history"], settings, tmp_path / "history-2.log")
    try:
        wait_for(lambda: caught_up(settings), timeout=90, processes=[sink])
    finally:
        sink.stop()
    with TestClient(create_app(settings)) as client:
        again = client.get("/v1/kpis", params=period, headers={"X-API-Key": TEST_KEYS["operator"]})
    [day] = again.json()["transit"]["odFlows"]
    assert day["cells"] == [
        {"origin": CAT_LINH, "destination": LANG, "trips": 10},
        {"origin": CAT_LINH, "destination": THAI_HA, "trips": 10},
    ]
    assert (day["trips"], day["suppressedTrips"], day["suppressedCells"]) == (20, 0, 0)


def test_transit_completeness_of_today_expects_the_service_hours_until_now(database):
    """A station's completeness is the share of its service hours in which it reported a tap: of a
    closed day every service hour, of today only those over (and the one under way once it has a tap)."""
    settings = database
    upgrade(settings.database_address)
    city = load_city(settings.city)
    taps = [
        (CAT_LINH, f"e{hour}", DAY + timedelta(hours=hour, minutes=10), "metro", "2A", "ENTRY", f"r{hour}")
        for hour in (7, 8, 10)
    ]
    store = HistoryStore(settings.database_address, city.timezone)
    try:
        store.write([], [], [], taps)
    finally:
        store.close()
    served = service_hours(city, CAT_LINH)
    day = DAY.date()

    def completeness(now: datetime) -> float:
        report = read_report(
            settings.database_address, city, day, day, settings.reading_interval_seconds, now
        )
        return {s.scope: s for s in report.transit.scopes}[CAT_LINH].completeness

    # 10:30: the hours before 10 are over; 10 is under way and has a tap; 11 and later are to come.
    so_far = {hour for hour in served if hour < 10} | {10}
    assert completeness(DAY + timedelta(hours=10, minutes=30)) == round(3 / len(so_far), 3)
    # 09:30: 09 is under way without a tap yet: not a gap.
    assert completeness(DAY + timedelta(hours=9, minutes=30)) == round(
        2 / len({h for h in served if h < 9}), 3
    )
    # The next day: every service hour of the closed day.
    assert completeness(DAY + timedelta(days=1, hours=1)) == round(3 / len(served), 3)
