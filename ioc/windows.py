"""Event-time tumbling windows per sensor: pure, deterministic, no clock reads.

A sensor's windows advance with its own watermark (the latest event time it has reported). A window
``[start, start+size)`` stays open until the watermark passes ``end + lateness``; an event for a closed
window is *late*. The state is a plain JSON-able dict so a Faust table can keep it in its changelog.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from ioc.indices.current import IndexValue
from ioc.models.base import SCHEMA_VERSION


@dataclass(frozen=True)
class WindowSpec:
    size_seconds: int
    lateness_seconds: int

    @property
    def label(self) -> str:
        """``60`` → ``1m``, ``3600`` → ``1h``, ``90`` → ``90s``."""
        for unit, size in (("h", 3600), ("m", 60)):
            if self.size_seconds % size == 0:
                return f"{self.size_seconds // size}{unit}"
        return f"{self.size_seconds}s"

    def start_of(self, epoch: float) -> int:
        return math.floor(epoch / self.size_seconds) * self.size_seconds


class FieldStats(BaseModel):
    count: int
    mean: float
    min: float
    max: float
    last: float
    unit: str


class WindowAggregate(BaseModel):
    """One sensor's aggregate over one window, as published on ``<prefix>.<feed>.agg.<window>``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    schema_version: int = SCHEMA_VERSION
    feed: str
    sensor_id: str
    window: str
    window_start: datetime
    window_end: datetime
    count: int
    last_event_time: datetime
    fields: dict[str, FieldStats]
    # The sensor's official index as of the window's latest event (``ioc.indices.current``), when it has one.
    indices: dict[str, IndexValue] = {}

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


@dataclass(frozen=True)
class Accepted:
    """The event updated this window. ``aggregate`` is built when read, from the window as it stands
    then: a batch that updates a window many times builds the one it publishes, not one per event."""

    window_start: datetime
    _window: dict[str, Any]
    _describe: tuple[str, str, int, Mapping[str, str], WindowSpec]  # feed, sensor, start, units, spec

    @property
    def aggregate(self) -> WindowAggregate:
        feed, sensor_id, start, units, spec = self._describe
        return _aggregate(self._window, feed=feed, sensor_id=sensor_id, start=start, units=units, spec=spec)


@dataclass(frozen=True)
class Late:
    """The event's window had already closed; it was not counted."""

    window_start: datetime
    watermark: datetime

    def describe(self, event_time: datetime, spec: WindowSpec) -> str:
        return (
            f"event time {event_time.isoformat()} falls in the window starting "
            f"{self.window_start.isoformat()}, "
            f"closed since the sensor reported {self.watermark.isoformat()} "
            f"(allowed lateness {spec.lateness_seconds} s)"
        )


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def new_state() -> dict[str, Any]:
    return {"watermark": None, "windows": {}}


def add_event(
    state: dict[str, Any],
    *,
    feed: str,
    sensor_id: str,
    event_time: datetime,
    values: Mapping[str, float],
    units: Mapping[str, str],
    spec: WindowSpec,
) -> Accepted | Late:
    """Count one event into its window. Mutates and keeps ``state`` small: closed windows are dropped."""
    moment = _epoch(event_time)
    start = spec.start_of(moment)
    watermark = state["watermark"]
    if watermark is not None and start + spec.size_seconds + spec.lateness_seconds <= watermark:
        return Late(window_start=_utc(start), watermark=_utc(watermark))

    window = state["windows"].setdefault(str(start), {"count": 0, "last_time": moment, "fields": {}})
    window["count"] += 1
    window["last_time"] = max(window["last_time"], moment)
    for name, value in values.items():
        stats = window["fields"].setdefault(
            name, {"n": 0, "sum": 0.0, "min": value, "max": value, "last": value, "last_time": moment}
        )
        stats["n"] += 1
        stats["sum"] += value
        stats["min"] = min(stats["min"], value)
        stats["max"] = max(stats["max"], value)
        if moment >= stats["last_time"]:  # "last" is by event time; a tie goes to the later arrival
            stats["last"], stats["last_time"] = value, moment

    if watermark is None or moment > watermark:
        state["watermark"] = watermark = moment
        horizon = watermark - spec.size_seconds - spec.lateness_seconds
        state["windows"] = {k: w for k, w in state["windows"].items() if int(k) > horizon}

    return Accepted(_utc(start), window, (feed, sensor_id, start, units, spec))


def _aggregate(
    window: dict[str, Any],
    *,
    feed: str,
    sensor_id: str,
    start: int,
    units: Mapping[str, str],
    spec: WindowSpec,
) -> WindowAggregate:
    return WindowAggregate(
        feed=feed,
        sensor_id=sensor_id,
        window=spec.label,
        window_start=_utc(start),
        window_end=_utc(start + spec.size_seconds),
        count=window["count"],
        last_event_time=_utc(window["last_time"]),
        fields={
            name: FieldStats(
                count=s["n"],
                mean=s["sum"] / s["n"],
                min=s["min"],
                max=s["max"],
                last=s["last"],
                unit=units[name],
            )
            for name, s in window["fields"].items()
        },
    )


def window_seconds(label: str) -> int:
    """``1m`` → 60, ``15m`` → 900, ``1h`` → 3600, ``90s`` → 90 (the inverse of ``WindowSpec.label``)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = label[:-1], label[-1:]
    if unit not in units or not number.isdigit() or int(number) == 0:
        raise ValueError(f"window {label!r} is not a number followed by s, m, h or d (e.g. 5m)")
    return int(number) * units[unit]
