"""NGSI-LD temporal queries over the history store (``GET /ngsi-ld/v1/temporal/entities``): which sensors'
windows match, and their measures over time.

An entity's history is its sensor's windows of the feed's shortest length (their means), as
``GET /ngsi-ld/v1/temporal/entities/{id}`` gives one. A ``q`` is evaluated at each window: an entity
matches when, at one window of the span at least, its state (that window's means, its registry location
and name, as ``GET /ngsi-ld/v1/entities`` would have shown it) satisfies ``q``; a matching entity's
measures come whole over the span. A geo-query is on the registry's location, which does not change.

The reads are two SQL statements on the ``windows`` table (``ioc.history.store`` writes it); everything
else is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

Instant = tuple[datetime, dict[str, float]]  # a window's start and its means (model field → mean)


class TooManyWindows(ValueError):
    """More windows than one answer reads; the message says how to ask for fewer."""


@dataclass(frozen=True)
class WindowSpan:
    """Which windows: the feed's, of one length, whose start is in [start, end), of ``sensor_ids`` (None:
    any sensor), holding one of ``fields`` at least."""

    feed: str
    window: str
    start: datetime
    end: datetime
    fields: tuple[str, ...]
    sensor_ids: tuple[str, ...] | None = None

    def where(self) -> tuple[str, dict[str, Any]]:
        sql = (
            "feed = %(feed)s AND window_len = %(window)s AND start >= %(start)s AND start < %(end)s "
            "AND means ?| %(fields)s"
        )
        parameters: dict[str, Any] = {
            "feed": self.feed,
            "window": self.window,
            "start": self.start,
            "end": self.end,
            "fields": list(self.fields),
        }
        if self.sensor_ids is not None:
            sql += " AND sensor_id = ANY(%(sensors)s)"
            parameters["sensors"] = list(self.sensor_ids)
        return sql, parameters


def sensors_with_windows(connection: psycopg.Connection, span: WindowSpan) -> list[str]:
    """The sensors with a window in the span, sorted."""
    where, parameters = span.where()
    rows = connection.execute(f"SELECT DISTINCT sensor_id FROM windows WHERE {where} ORDER BY 1", parameters)
    return [row[0] for row in rows.fetchall()]


def windows_of(connection: psycopg.Connection, span: WindowSpan, most: int) -> dict[str, list[Instant]]:
    """Each sensor's windows in the span, oldest first; raises TooManyWindows beyond ``most``."""
    where, parameters = span.where()
    rows = connection.execute(
        f"SELECT sensor_id, start, means FROM windows WHERE {where} ORDER BY sensor_id, start LIMIT %(most)s",
        parameters | {"most": most + 1},
    ).fetchall()
    if len(rows) > most:
        raise TooManyWindows(
            f"more than {most:,} windows to read: narrow the span (timerel), ask for fewer entities (limit, "
            "id, q, a geo-query) or attributes (attrs)"
        )
    return group_by_sensor(rows)


def group_by_sensor(rows: Iterable[tuple[str, datetime, dict[str, float]]]) -> dict[str, list[Instant]]:
    grouped: dict[str, list[Instant]] = {}
    for sensor_id, start, means in rows:
        grouped.setdefault(sensor_id, []).append((start, means))
    return grouped


def matching_sensors(
    instants: dict[str, list[Instant]], holds: Callable[[str, datetime, dict[str, float]], bool]
) -> list[str]:
    """The sensors, sorted, at one of whose windows ``holds(sensor, start, means)`` is true."""
    return sorted(
        sensor
        for sensor, windows in instants.items()
        if any(holds(sensor, at, means) for at, means in windows)
    )


def measure_series(
    windows: list[Instant], fields: Iterable[str], last_n: int | None = None
) -> dict[str, list[tuple[datetime, float]]]:
    """Each field's (window start, mean) over the windows that have it, oldest first; with ``last_n``, each
    field's newest ``last_n``."""
    series = {
        field: [(at, means[field]) for at, means in windows if means.get(field) is not None]
        for field in fields
    }
    if last_n:
        series = {field: points[-last_n:] for field, points in series.items()}
    return series
