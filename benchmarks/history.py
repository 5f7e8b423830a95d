"""The history store's figures: a week of one sensor's 1-minute windows resampled to 500 points, a month of
daily KPIs for every area (with a month of fare taps at the simulator's volume behind the transit KPIs),
and the sink's rate from Kafka into PostgreSQL.

    python benchmarks/history.py                      # own Kafka and PostgreSQL (ioc infra), ~2 min
    python benchmarks/history.py --database postgresql://… --kafka HOST:9092

Targets (issue 19): the week resampled to 500 points at p95 ≤ 50 ms; a month of KPIs for every area
≤ 200 ms (from the days kept after the first read; also with a late window of one day before each read);
the sink at the worker's catch-up rate (a few thousand windows a second) with its lag back to 0.
The store is filled directly (12 air stations: a week of 1-minute windows, a month of hourly ones; every
line's stations: a month of taps, metro trips matched into origin–destination flows), the sink's part
through Kafka (``--sink-windows`` aggregates, then ``ioc history`` until its group has
committed them all).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from benchmarks.servers import bench_servers  # noqa: E402
from connectors.kafka import EventProducer, create_topics  # noqa: E402
from ioc.api import create_app  # noqa: E402
from ioc.city import load_city  # noqa: E402
from ioc.history.sink import history_group, history_topics  # noqa: E402
from ioc.history.store import HistoryStore, WindowRow, rider_of_day, upgrade  # noqa: E402
from ioc.indices.transit import service_day  # noqa: E402
from ioc.infra import LocalPostgres  # noqa: E402
from tests.conftest import TEST_KEYS, free_port, settings_env  # noqa: E402
from tests.processes import committed_offsets  # noqa: E402

END = datetime(2026, 12, 1, tzinfo=UTC)


def row(sensor_id: str, window: str, start: datetime, pm25: float) -> WindowRow:
    return WindowRow("air", window, sensor_id, start, 60, start, {"pm25": pm25, "pm10": pm25 * 1.6}, "{}")


def fill(url: str, stations: list[str]) -> int:
    """A week of 1-minute windows and a month of hourly ones per station, in batches as the sink writes."""
    store = HistoryStore(url)
    rows = 0
    try:
        for n, sensor_id in enumerate(stations):
            minutes = [
                row(sensor_id, "1m", END - timedelta(minutes=m), 30 + (m + n) % 40)
                for m in range(1, 7 * 1440 + 1)
            ]
            hours = [
                row(sensor_id, "1h", END - timedelta(hours=h), 30 + (h + n) % 40)
                for h in range(1, 31 * 24 + 1)
            ]
            for first in range(0, len(minutes), 5000):
                store.write(minutes[first : first + 5000], [], [])
            store.write(hours, [], [])
            rows += len(minutes) + len(hours)
    finally:
        store.close()
    return rows


TRIPS_PER_DAY = {"metro": 1300, "brt": 1200, "bus": 800}  # per station or stop, as the simulator


def fill_taps(url: str, city, days: int) -> int:
    """``days`` of fare taps before END on every line: metro entries with their exits (a card per trip),
    BRT and bus boardings; the volume of ``ioc simulate``'s transit feed (about 31,000 taps a day on 2A)."""
    zone = ZoneInfo(city.timezone)
    rng = random.Random(19)
    store = HistoryStore(url, city.timezone)
    written = 0
    try:
        for day in range(days):
            opening = (END - timedelta(days=day + 1)).astimezone(zone).replace(hour=5, minute=30)
            taps = []
            for line in city.lines:
                for position, station in enumerate(line.stations):
                    for _ in range(TRIPS_PER_DAY[line.mode]):
                        entered = opening + timedelta(seconds=rng.randrange(16 * 3600))
                        if line.mode != "metro":
                            card = rider_of_day(f"{rng.getrandbits(128):032x}", entered.date().isoformat())
                            event = f"{rng.getrandbits(64):x}"
                            taps.append((station, event, entered, line.mode, line.id, "BOARD", card))
                            continue
                        other = rng.choice([s for s in line.stations if s != station])
                        hops = abs(line.stations.index(other) - position)
                        left = entered + timedelta(minutes=5 + 2 * hops)
                        card = rider_of_day(f"{rng.getrandbits(128):032x}", service_day(entered).isoformat())
                        taps.append(
                            (station, f"{rng.getrandbits(64):x}", entered, "metro", line.id, "ENTRY", card)
                        )
                        taps.append((other, f"{rng.getrandbits(64):x}", left, "metro", line.id, "EXIT", card))
            for first in range(0, len(taps), 20_000):
                store.write([], [], [], taps[first : first + 20_000])
            written += len(taps)
    finally:
        store.close()
    return written


def timed(call, times: int) -> list[float]:
    spent = []
    for _ in range(times):
        began = time.perf_counter()
        call()
        spent.append((time.perf_counter() - began) * 1000)
    return spent


def late_reads(client, url: str, city, station: str, params: dict, headers: dict, times: int) -> list[float]:
    """``times`` reads of the month, each after a late hourly window of one of its past days came as the
    sink writes it (that day marked stale, so the read computes it again)."""
    store = HistoryStore(url, city.timezone)
    spent = []
    try:
        for n in range(times):
            store.write([row(station, "1h", END - timedelta(days=2 + n % 28, hours=1), 99.0 + n)], [], [])
            began = time.perf_counter()
            client.get("/v1/kpis", params=params, headers=headers)
            spent.append((time.perf_counter() - began) * 1000)
    finally:
        store.close()
    return spent


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def sink_rate(settings, windows: int, log: Path) -> dict:
    """``windows`` aggregates onto the 1-minute topic, then ``ioc history`` until it has committed them."""
    create_topics(settings)
    topic = settings.agg_topic("air", "1m")
    start = END - timedelta(days=60)
    records = []
    for n in range(windows):
        sensor_id, at = f"air-s{n % 200}", start + timedelta(minutes=n // 200)
        value = {
            "schemaVersion": 1, "feed": "air", "sensorId": sensor_id, "window": "1m",
            "windowStart": at.isoformat(), "windowEnd": (at + timedelta(minutes=1)).isoformat(), "count": 1,
            "lastEventTime": at.isoformat(),
            "fields": {"pm25": {"count": 1, "mean": 30.0, "min": 30.0, "max": 30.0, "last": 30.0,
                                "unit": ""}},
            "indices": {},
        }  # fmt: skip
        records.append((topic, sensor_id, json.dumps(value).encode()))

    async def send() -> None:
        async with EventProducer(settings, linger_ms=20, max_batch_size=262_144) as producer:
            for first in range(0, len(records), 5000):
                await producer.send_many(records[first : first + 5000])

    asyncio.run(send())
    with log.open("wb") as output:
        began = time.perf_counter()
        sink = subprocess.Popen(
            [sys.executable, "-m", "ioc", "history"], env=settings_env(settings), stdout=output, stderr=output
        )
        try:
            while True:
                offsets = committed_offsets(settings, history_group(settings), history_topics(settings))
                if all(done == end for done, end in offsets.values()):
                    break
                if sink.poll() is not None:
                    raise RuntimeError(f"ioc history exited {sink.returncode}; see {log}")
                time.sleep(0.2)
            seconds = time.perf_counter() - began
        finally:
            sink.terminate()
            sink.wait(30)
    return {"windows": windows, "seconds": round(seconds, 2), "windows_per_second": round(windows / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", help="existing PostgreSQL (a role that may create databases)")
    parser.add_argument("--kafka", help="existing bootstrap servers (default: start a local broker)")
    parser.add_argument("--queries", type=int, default=50, help="timed queries of each kind")
    parser.add_argument("--sink-windows", type=int, default=100_000, help="aggregates through the sink")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    with bench_servers(args.kafka, "redis://127.0.0.1:1/0") as servers:
        database = args.database
        postgres = None
        if database is None:
            local = servers.fresh_namespace(1).model_copy(
                update={
                    "run_dir": Path(tempfile.mkdtemp(prefix="ioc-bench-pg-")),
                    "postgres_port": free_port(),
                }
            )
            postgres = LocalPostgres(local)
            postgres.start()
            database = local.database_address
        settings = servers.fresh_namespace(4)
        name = settings.worker_id
        server = database.rsplit("/", 1)[0]
        with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        keys = SecretStr(",".join(f"{role}:{key}" for role, key in TEST_KEYS.items()))
        settings = settings.model_copy(update={"database_url": f"{server}/{name}", "api_keys": keys})
        try:
            upgrade(settings.database_address)
            city = load_city(settings.city)
            stations = [s.id for s in city.sensors if s.kind == "air"]
            began = time.perf_counter()
            rows = fill(settings.database_address, stations)
            print(
                f"filled {rows:,} windows of {len(stations)} stations in {time.perf_counter() - began:.1f} s"
            )
            began = time.perf_counter()
            taps = fill_taps(settings.database_address, city, 30)
            print(f"filled {taps:,} fare taps of a month in {time.perf_counter() - began:.1f} s")
            week = {
                "sensor": stations[0],
                "measure": "pm25",
                "window": "1m",
                "from": (END - timedelta(days=7)).isoformat(),
                "to": END.isoformat(),
                "step": f"{7 * 86400 // 500}s",
            }
            month = {"from": "2026-11-01", "to": "2026-11-30"}
            headers = {"X-API-Key": TEST_KEYS["operator"]}
            with TestClient(create_app(settings)) as client:
                first = client.get("/v1/history", params=week, headers=headers)
                assert first.status_code == 200, first.text
                points = len(first.json()["points"])
                history_ms = timed(
                    lambda: client.get("/v1/history", params=week, headers=headers), args.queries
                )
                # The first read matches the month's metro taps into daily flows, computes its days' KPI
                # values, and keeps both.
                began = time.perf_counter()
                areas = len(client.get("/v1/kpis", params=month, headers=headers).json()["air"])
                first_kpis_ms = (time.perf_counter() - began) * 1000
                kpi_ms = timed(
                    lambda: client.get("/v1/kpis", params=month, headers=headers), args.queries // 5
                )
                late_ms = late_reads(
                    client, settings.database_address, city, stations[0], month, headers, args.queries // 5
                )
            figures = {
                "history_week_1m_to_points": points,
                "history_p50_ms": round(statistics.median(history_ms), 1),
                "history_p95_ms": round(p95(history_ms), 1),
                "kpis_month_scopes": areas,
                "fare_taps": taps,
                "kpis_month_first_ms": round(first_kpis_ms),
                "kpis_month_p50_ms": round(statistics.median(kpi_ms), 1),
                "kpis_month_p95_ms": round(p95(kpi_ms), 1),
                "kpis_month_late_day_p50_ms": round(statistics.median(late_ms), 1),
                "kpis_month_late_day_p95_ms": round(p95(late_ms), 1),
            }
            print(
                f"a week of 1-minute windows → {points} points: p50 {figures['history_p50_ms']} ms, "
                f"p95 {figures['history_p95_ms']} ms (target ≤ 50)"
            )
            print(
                f"a month of KPIs ({areas} air scopes, {taps:,} fare taps): first read (matching the "
                f"month's metro trips, computing and keeping its days) {figures['kpis_month_first_ms']} ms; "
                f"then p50 {figures['kpis_month_p50_ms']} ms, p95 {figures['kpis_month_p95_ms']} ms "
                "(target ≤ 200)"
            )
            print(
                "a month of KPIs with a late window before each read (its day computed again): "
                f"p50 {figures['kpis_month_late_day_p50_ms']} ms, "
                f"p95 {figures['kpis_month_late_day_p95_ms']} ms"
            )
            sink = sink_rate(settings, args.sink_windows, servers.run_dir / "history-sink.log")
            figures["sink"] = sink
            print(
                f"sink: {sink['windows']:,} windows in {sink['seconds']} s: {sink['windows_per_second']:,}/s"
            )
            if args.json:
                args.json.write_text(json.dumps(figures, indent=2) + "\n")
        finally:
            with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if postgres is not None:
                postgres.stop()


if __name__ == "__main__":
    main()
