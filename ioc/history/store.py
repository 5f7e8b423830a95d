"""The history store in PostgreSQL: versioned migrations, batch writes that a repeat leaves as once, and
the series queries ``GET /v1/history`` answers.

Every write is idempotent, so a sink restarted mid-batch, a rebalance, a replay into a namespace or a
picture rebuild never duplicates a row: a window is keyed by (feed, window, sensor, start) and keeps its
version with the most readings (a window's count only grows), an alert or incident event by (id,
revision), a fare tap by (station, event id). Rows go in with COPY into a temporary table and one
INSERT … ON CONFLICT per table.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from hashlib import blake2b
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from ioc.indices.transit import service_day

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


TAP_DIRECTIONS = frozenset({"ENTRY", "EXIT", "BOARD"})


def rider_of_day(card_id_hash: str, day: str) -> str:
    """The token a card is known by for one service day: its taps that day link, its days do not."""
    return blake2b(card_id_hash.encode(), key=day.encode(), digest_size=12).hexdigest()


def tap_row(text: bytes, zone: ZoneInfo) -> tuple[Any, ...]:
    """A fare tap as the raw topic carries it → its row: the card only as its rider token of the day."""
    tap = json.loads(text)
    at = datetime.fromisoformat(tap["dateObserved"])
    if at.utcoffset() is None or tap["direction"] not in TAP_DIRECTIONS or not tap["cardIdHash"]:
        raise ValueError("not a fare tap")
    day = service_day(at.astimezone(zone)).isoformat()
    return (
        tap["sensorId"],
        tap["eventId"],
        at,
        tap["mode"],
        tap["line"],
        tap["direction"],
        rider_of_day(tap["cardIdHash"], day),
    )


# Every UTC offset in use is within 14 hours: a moment's local day in an unknown zone is one of these.
_ANY_OFFSET = (timedelta(hours=-14), timedelta(), timedelta(hours=14))


def local_days(moments: list[datetime], zone: ZoneInfo | None) -> set[date]:
    """The local days of ``moments`` in ``zone``; without one, every day they may fall on in some zone
    (a writer that does not know the city's zone marks a day or two more, never one less)."""
    distinct = set(moments)  # a batch's windows share a few starts
    if zone is not None:
        return {moment.astimezone(zone).date() for moment in distinct}
    return {(moment.astimezone(UTC) + offset).date() for moment in distinct for offset in _ANY_OFFSET}


def month_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(month: datetime) -> datetime:
    return (month + timedelta(days=32)).replace(day=1)


class HistoryStore:
    """One connection's writes and reads (not shared across threads or tasks)."""

    def __init__(self, url: str | psycopg.Connection, timezone: str | None = None) -> None:
        """``url``: the database's, or a connection the caller owns (the API's pool's), which ``close``
        leaves open. ``timezone``: the city's, which makes a fare tap's service day (needed to write taps)."""
        self._owned = not isinstance(url, psycopg.Connection)
        self.connection = psycopg.connect(url) if isinstance(url, str) else url
        self.zone = ZoneInfo(timezone) if timezone else None
        self._months: set[datetime] = set()

    def close(self) -> None:
        if self._owned:
            self.connection.close()

    def write(
        self,
        windows: list[WindowRow],
        alerts: list[tuple[Any, ...]],
        incidents: list[tuple[Any, ...]],
        taps: list[tuple[Any, ...]] | None = None,
    ) -> None:
        """Every row in one transaction; a row written before stays as it is, unless a window's newer
        version (more readings) replaces it."""
        with self.connection.transaction():
            # The KPI days' marks first, the metro days' after: in the order a KPI reader clears them,
            # so a reader and a sink never wait for each other both ways.
            self._mark_kpi_days([row.start for row in windows] + [tap[2] for tap in taps or ()])
            if windows:
                self._ensure_partitions({month_of(row.start) for row in windows})
                self._windows(_latest(windows))
            if alerts:
                self._events("alert_events", _ALERT_COLUMNS, "alert_id, revision", alerts)
            if incidents:
                self._events("incident_events", _INCIDENT_COLUMNS, "incident_id, revision", incidents)
            if taps:
                self._taps(taps)
                self._mark_changed_days(taps)

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

    def _stage(self, table: str, columns: str, rows: list[tuple[Any, ...]]) -> str:
        """``rows`` COPied into a temporary table shaped like ``table`` (emptied at commit); its name."""
        staging = f"{table}_in"
        cursor = self.connection.cursor()
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} (LIKE {table}) ON COMMIT DELETE ROWS")
        with cursor.copy(f"COPY {staging} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return staging

    def _events(self, table: str, columns: str, key: str, rows: list[tuple[Any, ...]]) -> None:
        staging = self._stage(table, columns, rows)
        self.connection.execute(
            f"INSERT INTO {table} ({columns}) SELECT DISTINCT ON ({key}) {columns} FROM {staging} "
            f"ON CONFLICT ({key}) DO NOTHING"
        )

    def _taps(self, taps: list[tuple[Any, ...]]) -> None:
        """The taps not stored yet, and each one counted once into its station's quarter of an hour."""
        self._stage("transit_taps", _TAP_COLUMNS, taps)
        self.connection.execute(
            f"WITH added AS (INSERT INTO transit_taps ({_TAP_COLUMNS}) "
            f"SELECT DISTINCT ON (station_id, event_id) {_TAP_COLUMNS} FROM transit_taps_in "
            "ON CONFLICT (station_id, event_id) DO NOTHING "
            "RETURNING station_id, line, at, direction) "
            "INSERT INTO transit_quarters (station_id, line, quarter, boardings, taps) "
            "SELECT station_id, line, date_bin('15 minutes', at, TIMESTAMPTZ '2000-01-01 00:00:00+00'), "
            "count(*) FILTER (WHERE direction IN ('ENTRY', 'BOARD')), count(*) FROM added GROUP BY 1, 2, 3 "
            "ON CONFLICT (station_id, line, quarter) DO UPDATE SET "
            "boardings = transit_quarters.boardings + excluded.boardings, "
            "taps = transit_quarters.taps + excluded.taps"
        )

    def _mark_changed_days(self, taps: list[tuple[Any, ...]]) -> None:
        """The service days whose metro trips these taps may change: their cached flows are stale."""
        if self.zone is None:
            raise ValueError("writing fare taps needs the city's time zone (HistoryStore(url, timezone))")
        days = sorted(
            {service_day(at.astimezone(self.zone)) for _, _, at, mode, _, direction, _ in taps
             if mode == "metro" and direction in ("ENTRY", "EXIT")}
        )  # fmt: skip
        if days:
            self.connection.execute(
                "INSERT INTO transit_days_changed (day, changed_at) "
                "SELECT unnest(%s::date[]), clock_timestamp() "
                "ON CONFLICT (day) DO UPDATE SET changed_at = excluded.changed_at",
                (days,),
            )

    def _mark_kpi_days(self, moments: list[datetime]) -> None:
        """The local days of these windows' starts and taps: the KPI values kept for them are stale."""
        days = local_days(moments, self.zone)
        if days:
            self.connection.execute(
                "INSERT INTO kpi_days_changed (day, changed_at) SELECT unnest(%s::date[]), clock_timestamp() "
                "ON CONFLICT (day) DO UPDATE SET changed_at = excluded.changed_at",
                (sorted(days),),
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

    def prune_taps(self, retention_days: int, now: datetime) -> int:
        """Delete the fare taps older than ``retention_days``; the rows deleted."""
        with self.connection.transaction():
            cursor = self.connection.execute(
                "DELETE FROM transit_taps WHERE at < %s", (now - timedelta(days=retention_days),)
            )
        return cursor.rowcount

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

    def alerts_opened(
        self,
        *,
        start: datetime,
        end: datetime,
        states: list[str] | None = None,
        areas: list[str] | None = None,
        severities: list[str] | None = None,
        feeds: list[str] | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> list[tuple[datetime, str, dict[str, Any]]]:
        """(opened, id, alert as its latest event tells it) of the alerts whose first event is in
        [start, end), resolved ones included, newest first; ``after``: the (opened, id) a page ended at."""
        filters = {"status": states, "district": areas, "severity": severities, "feed": feeds}
        rows = self._first_in("alert_events", "alert_id", filters, [], start, end, after, limit)
        return [(opened, alert_id, event["alert"]) for opened, alert_id, event in rows]

    def incidents_started(
        self,
        *,
        start: datetime,
        end: datetime,
        states: list[str] | None = None,
        areas: list[str] | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> list[tuple[datetime, str, dict[str, Any]]]:
        """(started, id, incident as its latest event tells it) of the incidents whose first event is in
        [start, end), resolved ones included and merged or dissolved ones not, newest first."""
        conditions = ["latest.change NOT IN ('merged', 'dissolved')"]
        if states:
            conditions.append("latest.event->'incident'->>'status' = ANY(%(states)s)")
        rows = self._first_in(
            "incident_events", "incident_id", {"district": areas}, conditions, start, end, after, limit,
            {"states": states},
        )  # fmt: skip
        return [(started, incident_id, event["incident"]) for started, incident_id, event in rows]

    def _first_in(
        self,
        table: str,
        key: str,
        filters: dict[str, list[str] | None],
        conditions: list[str],
        start: datetime,
        end: datetime,
        after: tuple[datetime, str] | None,
        limit: int,
        extra: dict[str, Any] | None = None,
    ) -> list[tuple[datetime, str, dict[str, Any]]]:
        """(first event's time, id, latest event) of ``table``'s ids whose first event is in [start, end)
        and whose latest event's ``filters`` columns hold one of the values given, newest first."""
        parameters: dict[str, Any] = {"start": start, "end": end, "limit": limit, **(extra or {})}
        where = list(conditions)
        for column, values in filters.items():
            if values:
                where.append(f"latest.{column} = ANY(%({column})s)")
                parameters[column] = values
        if after is not None:
            where.append(f"(first.at, first.{key}) < (%(after_at)s, %(after_id)s)")
            parameters |= {"after_at": after[0], "after_id": after[1]}
        sql = (
            f"SELECT first.at, first.{key}, latest.event FROM (SELECT {key}, min(at) AS at FROM {table} "
            f"GROUP BY {key} HAVING min(at) >= %(start)s AND min(at) < %(end)s) AS first "
            f"JOIN LATERAL (SELECT * FROM {table} AS e WHERE e.{key} = first.{key} "
            "ORDER BY revision DESC LIMIT 1) AS latest ON true "
            + ("WHERE " + " AND ".join(where) + " " if where else "")
            + f"ORDER BY first.at DESC, first.{key} DESC LIMIT %(limit)s"
        )
        return [
            (at, item_id, _json(event))
            for at, item_id, event in self.connection.execute(sql, parameters).fetchall()  # type: ignore[arg-type]
        ]


def _json(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value)


_ALERT_COLUMNS = "alert_id, revision, change, at, rule, feed, district, entity, severity, status, event"
_INCIDENT_COLUMNS = "incident_id, revision, change, at, district, event"
_TAP_COLUMNS = "station_id, event_id, at, mode, line, direction, rider"


def _latest(rows: list[WindowRow]) -> list[WindowRow]:
    """Of a batch's versions of one window, the one with the most readings (one row per key for the
    INSERT: PostgreSQL refuses to update a row twice in one statement)."""
    kept: dict[tuple[str, str, str, datetime], WindowRow] = {}
    for row in rows:
        key = (row.feed, row.window, row.sensor_id, row.start)
        if key not in kept or kept[key].count <= row.count:
            kept[key] = row
    return list(kept.values())
