"""The API's pool of history-store connections against a real PostgreSQL: every history, KPI and NGSI-LD
temporal read borrows from one pool of at most ``IOC_DATABASE_POOL_SIZE`` connections, kept between
requests and closed at shutdown; without a store the API starts and its history routes say 503."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from ioc.api import create_app
from ioc.api.database import APPLICATION_NAME, WAIT_SECONDS
from ioc.history.store import HistoryStore, WindowRow, upgrade
from tests.conftest import TEST_KEYS, free_port

pytestmark = pytest.mark.integration

SENSOR = "air-hoan-kiem"
HEADERS = {"X-API-Key": TEST_KEYS["operator"]}


def sessions(settings, name: str) -> list[int]:
    """The backend pids of the API's sessions on the test's database."""
    database = settings.database_address.rsplit("/", 1)[1]
    with psycopg.connect(settings.database_address) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            (database, name),
        ).fetchall()
    return sorted(pid for (pid,) in rows)


def test_every_history_route_shares_one_pool_kept_between_requests_and_closed_at_shutdown(database):
    settings = database.model_copy(update={"database_pool_size": 2})
    upgrade(settings.database_address)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    store = HistoryStore(settings.database_address)
    try:
        rows = [
            WindowRow("air", "1h", SENSOR, start + timedelta(hours=h), 60, start, {"pm25": 40.0 + h}, "{}")
            for h in range(24)
        ]
        store.write(rows, [], [])
    finally:
        store.close()
    week = {
        "sensor": SENSOR,
        "measure": "pm25",
        "from": start.isoformat(),
        "to": (start + timedelta(days=1)).isoformat(),
    }
    reads = [
        ("/v1/history", week),
        ("/v1/kpis", {"from": "2026-12-01", "to": "2026-12-01"}),
        ("/v1/history/alerts", {"from": start.isoformat()}),
        ("/v1/history/incidents", {"from": start.isoformat()}),
        ("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:air-hoan-kiem", {}),
    ]
    with TestClient(create_app(settings)) as client:
        assert sessions(settings, APPLICATION_NAME) == []  # nothing opened before a read needs it

        def read(n: int) -> int:
            path, params = reads[n % len(reads)]
            return client.get(path, params=params, headers=HEADERS).status_code

        with ThreadPoolExecutor(6) as requests:  # more at once than the pool holds: they wait their turn
            statuses = list(requests.map(read, range(30)))
        assert statuses == [200] * 30
        kept = sessions(settings, APPLICATION_NAME)
        assert 1 <= len(kept) <= 2  # at most IOC_DATABASE_POOL_SIZE, and kept open between requests
        for n in range(len(reads)):
            assert read(n) == 200
        assert set(sessions(settings, APPLICATION_NAME)) <= set(kept)  # the same sessions, none new
    assert sessions(settings, APPLICATION_NAME) == []  # closed at shutdown


def test_without_a_store_the_api_starts_and_its_history_routes_say_503(settings):
    nowhere = settings.model_copy(update={"database_url": f"postgresql://ioc@127.0.0.1:{free_port()}/ioc"})
    with TestClient(create_app(nowhere)) as client:
        assert client.get("/healthz").status_code == 200
        began = time.monotonic()
        answer = client.get("/v1/kpis", params={"from": "2026-12-01", "to": "2026-12-01"}, headers=HEADERS)
        waited = time.monotonic() - began
    assert answer.status_code == 503
    assert answer.json()["detail"] == "The history store is not reachable."
    assert waited < WAIT_SECONDS + 5  # the pool's wait, not a hang
