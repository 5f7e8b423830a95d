"""The history store in PostgreSQL: versioned migrations, batch writes that a repeat leaves as once, and
the series queries ``GET /v1/history`` answers.

Every write is idempotent, so a sink restarted mid-batch, a rebalance, a replay into a namespace or a
picture rebuild never duplicates a row: a window is keyed by (feed, window, sensor, start) and keeps its
version with the most readings (a window's count only grows), an alert or incident event by (id,
revision). Rows go in with COPY into a temporary table and one INSERT … ON CONFLICT per table.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import psycopg

MIGRATIONS = "ioc.history.migrations"


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, SQL) of every migration shipped, in order: ``NNNN_name.sql``."""
    found = []
    for entry in resources.files(MIGRATIONS).iterdir():
        if entry.name.endswith(".sql"):
            number, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append((int(number), name, entry.read_text("utf-8")))
    return sorted(found)


def upgrade(url: str) -> list[int]:
    """Apply the migrations the database lacks, each in its own transaction; the versions applied."""
    applied: list[int] = []
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version, name, sql in migrations():
            with connection.transaction():
                # One upgrader at a time (two workers' `ioc db upgrade`): the second waits, then skips.
                connection.execute("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")
                done = connection.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (version,))
                if done.fetchone():
                    continue
                connection.execute(sql)
                connection.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name)
                )
                applied.append(version)
    return applied


def current_version(url: str) -> int | None:
    with psycopg.connect(url) as connection:
        exists = connection.execute("SELECT to_regclass('schema_migrations')").fetchone()
        if not exists or exists[0] is None:
            return None
        row = connection.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return row[0] if row else None


@dataclass(frozen=True, slots=True)
class WindowRow:
    feed: str
    window: str
    sensor_id: str
    start: datetime
    count: int
    last_event: datetime
    means: dict[str, float]
    aggregate: str  # the published JSON


def window_row(text: bytes) -> WindowRow:
    """A window aggregate as published (``WindowAggregate``'s JSON) → its row."""
    value = json.loads(text)
    means = {name: stats["mean"] for name, stats in value["fields"].items() if stats.get("mean") is not None}
    return WindowRow(
        feed=value["feed"],
        window=value["window"],
        sensor_id=value["sensorId"],
        start=datetime.fromisoformat(value["windowStart"]),
        count=value["count"],
        last_event=datetime.fromisoformat(value["lastEventTime"]),
        means=means,
        aggregate=text.decode(),
    )


def alert_row(text: bytes) -> tuple[Any, ...]:
    event = json.loads(text)
    alert = event["alert"]
    return (
        alert["id"],
        event["revision"],
        event["change"],
        event["at"],
        alert["rule"],
        alert["feed"],
        alert["district"],
        alert["entity"],
        alert["severity"],
        alert["status"],
        text.decode(),
    )


def incident_row(text: bytes) -> tuple[Any, ...]:
    event = json.loads(text)
    incident = event["incident"]
    return (
        incident["id"],
        event["revision"],
        event["change"],
        event["at"],
        incident["district"],
        text.decode(),
    )


def month_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(month: datetime) -> datetime:
    return (month + timedelta(days=32)).replace(day=1)


class HistoryStore:
    """One connection's writes and reads (not shared across threads or tasks)."""

    def __init__(self, url: str) -> None:
        self.connection = psycopg.connect(url)
        self._months: set[datetime] = set()

    def close(self) -> None:
        self.connection.close()

    def write(
        self, windows: list[WindowRow], alerts: list[tuple[Any, ...]], incidents: list[tuple[Any, ...]]
    ) -> None:
        """Every row in one transaction; a row written before stays as it is, unless a window's newer
        version (more readings) replaces it."""
        with self.connection.transaction():
            if windows:
                self._ensure_partitions({month_of(row.start) for row in windows})
                self._windows(_latest(windows))
            if alerts:
                self._events("alert_events", _ALERT_COLUMNS, "alert_id, revision", alerts)
            if incidents:
                self._events("incident_events", _INCIDENT_COLUMNS, "incident_id, revision", incidents)

    def _ensure_partitions(self, months: set[datetime]) -> None:
        for month in sorted(months - self._months):
            name = f"windows_{month:%Y_%m}"
            exists = self.connection.execute("SELECT to_regclass(%s)", (name,)).fetchone()
            if exists and exists[0] is None:
                # In a savepoint: another sink may make it meanwhile, which rolls back only this.
                with contextlib.suppress(psycopg.errors.DuplicateTable), self.connection.transaction():
                    self.connection.execute(
                        f"CREATE TABLE {name} PARTITION OF windows "
                        f"FOR VALUES FROM ('{month.isoformat()}') TO ('{next_month(month).isoformat()}')"
                    )
            self._months.add(month)

    def _windows(self, rows: list[WindowRow]) -> None:
        cursor = self.connection.cursor()
        cursor.execute("CREATE TEMPORARY TABLE IF NOT EXISTS windows_in (LIKE windows) ON COMMIT DELETE ROWS")
        columns = "feed, window_len, sensor_id, start, count, last_event, means, aggregate"
        with cursor.copy(f"COPY windows_in ({columns}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(
                    (
                        r.feed,
                        r.window,
                        r.sensor_id,
                        r.start,
                        r.count,
                        r.last_event,
                        json.dumps(r.means),
                        r.aggregate,
                    )
                )
        cursor.execute(
            f"INSERT INTO windows ({columns}) SELECT {columns} FROM windows_in "
            "ON CONFLICT (feed, window_len, sensor_id, start) DO UPDATE SET "
            "count = excluded.count, last_event = excluded.last_event, means = excluded.means, "
            "aggregate = excluded.aggregate WHERE windows.count <= excluded.count"
        )

    def _events(self, table: str, columns: str, key: str, rows: list[tuple[Any, ...]]) -> None:
        cursor = self.connection.cursor()
        staging = f"{table}_in"
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} (LIKE {table}) ON COMMIT DELETE ROWS")
        with cursor.copy(f"COPY {staging} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT DISTINCT ON ({key}) {columns} FROM {staging} "
            f"ON CONFLICT ({key}) DO NOTHING"
        )

    def prune(self, retention_days: dict[str, int], now: datetime) -> int:
        """Delete the windows of each length older than its retention (by start); the rows deleted."""
        deleted = 0
        with self.connection.transaction():
            for window, days in sorted(retention_days.items()):
                cursor = self.connection.execute(
                    "DELETE FROM windows WHERE window_len = %s AND start < %s",
                    (window, now - timedelta(days=days)),
                )
                deleted += cursor.rowcount
        return deleted

    # --- reads --------------------------------------------------------------------------------------

    def series(
        self,
        *,
        feed: str,
        sensor_id: str,
        window: str,
        measure: str,
        start: datetime,
        end: datetime,
        step: timedelta | None = None,
    ) -> list[tuple[datetime, float, int]]:
        """(start, mean, readings) of the sensor's ``window`` rows in [start, end), oldest first; with
        ``step``, averaged over each step (weighted by readings) from ``start``."""
        if step is None:
            sql = (
                "SELECT start, (means->>%(measure)s)::float8, count FROM windows "
                "WHERE feed = %(feed)s AND window_len = %(window)s AND sensor_id = %(sensor)s "
                "AND start >= %(start)s AND start < %(end)s AND means ? %(measure)s ORDER BY start"
            )
        else:
            sql = (
                "SELECT date_bin(%(step)s, start, %(start)s) AS bucket, "
                "sum((means->>%(measure)s)::float8 * count) / sum(count), sum(count)::int FROM windows "
                "WHERE feed = %(feed)s AND window_len = %(window)s AND sensor_id = %(sensor)s "
                "AND start >= %(start)s AND start < %(end)s AND means ? %(measure)s "
                "GROUP BY bucket ORDER BY bucket"
            )
        parameters = {
            "feed": feed,
            "window": window,
            "sensor": sensor_id,
            "measure": measure,
            "start": start,
            "end": end,
            "step": step,
        }
        return [tuple(row) for row in self.connection.execute(sql, parameters).fetchall()]  # type: ignore[misc]

    def area_series(
        self,
        *,
        feed: str,
        sensor_ids: list[str],
        window: str,
        measure: str,
        start: datetime,
        end: datetime,
        step: timedelta | None = None,
    ) -> list[tuple[datetime, float, int]]:
        """(start, mean, readings) over ``sensor_ids`` together: per window start (or per ``step`` from
        ``start``), the mean of their windows weighted by readings, oldest first."""
        bucket = "date_bin(%(step)s, start, %(start)s)" if step is not None else "start"
        sql = (
            f"SELECT {bucket} AS bucket, sum((means->>%(measure)s)::float8 * count) / sum(count), "
            "sum(count)::int FROM windows WHERE feed = %(feed)s AND window_len = %(window)s "
            "AND sensor_id = ANY(%(sensors)s) AND start >= %(start)s AND start < %(end)s "
            "AND means ? %(measure)s GROUP BY bucket ORDER BY bucket"
        )
        parameters = {
            "feed": feed,
            "window": window,
            "sensors": sensor_ids,
            "measure": measure,
            "start": start,
            "end": end,
            "step": step,
        }
        return [tuple(row) for row in self.connection.execute(sql, parameters).fetchall()]  # type: ignore[misc]


_ALERT_COLUMNS = "alert_id, revision, change, at, rule, feed, district, entity, severity, status, event"
_INCIDENT_COLUMNS = "incident_id, revision, change, at, district, event"


def _latest(rows: list[WindowRow]) -> list[WindowRow]:
    """Of a batch's versions of one window, the one with the most readings (one row per key for the
    INSERT: PostgreSQL refuses to update a row twice in one statement)."""
    kept: dict[tuple[str, str, str, datetime], WindowRow] = {}
    for row in rows:
        key = (row.feed, row.window, row.sensor_id, row.start)
        if key not in kept or kept[key].count <= row.count:
            kept[key] = row
    return list(kept.values())
