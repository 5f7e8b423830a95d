"""The shipped recording replayed twice, each into a fresh namespace with its own worker, history sink and
PostgreSQL database, through the real broker: the same history rows (windows, alert and incident events;
the recording has no fare taps) and the same KPI values both times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from ioc.city import load_city
from ioc.feeds import FEEDS
from ioc.kpis.report import read_report
from ioc.settings import Settings
from tests.conftest import isolated_settings
from tests.integration.test_history import caught_up
from tests.online_offline import settled
from tests.processes import IocProcess, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RECORDING = Path(__file__).parents[2] / "examples" / "hanoi-morning.jsonl.gz"
ROWS = {
    "windows": "SELECT feed, window_len, sensor_id, start, count, last_event, means FROM windows "
    "ORDER BY feed, window_len, sensor_id, start",
    "alert_events": "SELECT alert_id, revision, change, at, status, event FROM alert_events "
    "ORDER BY alert_id, revision",
    "incident_events": "SELECT incident_id, revision, change, at, event FROM incident_events "
    "ORDER BY incident_id, revision",
}


def replayed(live: Settings, name: str, tmp: Path) -> tuple[dict[str, list[tuple]], dict]:
    """The recording into namespace ``name`` with a database of its own: its rows and its KPIs."""
    server = live.database_address.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    with_db = live.model_copy(update={"database_url": f"{server}/{name}"})
    space = with_db.in_namespace(name)
    replay = IocProcess(["replay", str(RECORDING), "--speed", "max", "--namespace", name], with_db,
                        tmp / f"replay-{name}.log")  # fmt: skip
    assert replay.process.wait(180) == 0, replay.log_file.read_text()
    worker = IocProcess(["worker", "--namespace", name], with_db, tmp / f"worker-{name}.log")
    sink = IocProcess(["history", "--namespace", name], with_db, tmp / f"history-{name}.log")
    try:
        wait_for(lambda: settled(space, list(FEEDS)), timeout=400, every=3, processes=[worker, sink])
        worker.stop()
        wait_for(lambda: caught_up(space), timeout=180, every=2, processes=[sink])
    finally:
        worker.stop()
        sink.stop()
    with psycopg.connect(space.database_address) as connection:
        rows = {table: connection.execute(sql).fetchall() for table, sql in ROWS.items()}
    zone = ZoneInfo(load_city(live.city).timezone)
    starts = [row[3] for row in rows["windows"]]
    first, last = min(starts).astimezone(zone).date(), max(starts).astimezone(zone).date()
    later = datetime.combine(last + timedelta(days=2), datetime.min.time(), UTC)  # every day is past
    report = read_report(space.database_address, load_city(live.city), first, last,
                         live.reading_interval_seconds, later)  # fmt: skip
    return rows, report.model_dump(by_alias=True, mode="json")


def test_two_replays_into_fresh_namespaces_give_the_same_history_and_kpis(servers, tmp_path):
    live = isolated_settings(servers)
    names = [f"{live.topic_prefix}h{n}" for n in (1, 2)]
    try:
        (first_rows, first_kpis), (second_rows, second_kpis) = (replayed(live, n, tmp_path) for n in names)
    finally:
        server = live.database_address.rsplit("/", 1)[0]
        with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
            for name in names:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert len(first_rows["windows"]) > 1000 and len(first_rows["alert_events"]) >= 10
    for table in ROWS:
        assert first_rows[table] == second_rows[table], table
    assert any(c["received"] for c in first_kpis["dataCompleteness"]) and first_kpis["operations"]
    assert first_kpis == second_kpis
