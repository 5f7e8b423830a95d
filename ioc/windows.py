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
from functools import cached_property
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from ioc.indices.current import IndexValue
from ioc.models.base import SCHEMA_VERSION


@dataclass(frozen=True)
class WindowSpec:
    size_seconds: int
    lateness_seconds: int

    @cached_property  # read for every window of every reading
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

    def published(self, text: bytes | None = None) -> PublishedWindow:
        """As the pipeline publishes it (``text``: this aggregate's JSON, when at hand)."""
        return PublishedWindow(
            feed=self.feed,
            sensor_id=self.sensor_id,
            window=self.window,
            start=int(self.window_start.timestamp()),
            count=self.count,
            last_time=self.last_event_time.timestamp(),
            means={name: stats.mean for name, stats in self.fields.items()},
            json=text if text is not None else self.to_json(),
        )


@dataclass(frozen=True, slots=True)
class PublishedWindow:
    """A window's aggregate as published: its JSON (the ``WindowAggregate`` schema), and what the live
    picture stores beside it. The pipeline builds one for every window a batch updated, straight from
    the window's state (``aggregate_of``): a pydantic model per window cost more than the window."""

    feed: str
    sensor_id: str
    window: str  # label: 1m, 1h …
    start: int  # epoch seconds
    count: int
    last_time: float  # epoch seconds of its latest event
    means: dict[str, float]
    json: bytes

    @property
    def window_start(self) -> datetime:
        return _utc(self.start)


@dataclass(frozen=True, slots=True)
class Accepted:
    """The event updated this window (``start``, epoch seconds); ``window`` is its state, to build the
    aggregate from when it is published (``aggregate_of``): a batch that updates a window many times
    builds the one it publishes, not one per event."""

    start: int
    window: dict[str, Any]

    @property
    def window_start(self) -> datetime:
        return _utc(self.start)


@dataclass(frozen=True, slots=True)
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


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def new_state() -> dict[str, Any]:
    return {"watermark": None, "windows": {}}


def add_event(
    state: dict[str, Any], *, event_time: datetime, values: Mapping[str, float], spec: WindowSpec
) -> Accepted | Late:
    """Count one event into its window. Mutates and keeps ``state`` small: closed windows are dropped.

    A window is ``{"count", "last_time", "fields": {name: [n, sum, min, max, last, last_time]}}``."""
    moment = event_time.timestamp()
    size = spec.size_seconds
    start = int(moment // size * size)
    watermark = state["watermark"]
    if watermark is not None and start + size + spec.lateness_seconds <= watermark:
        return Late(window_start=_utc(start), watermark=_utc(watermark))

    windows = state["windows"]
    key = str(start)
    window = windows.get(key)
    if window is None:
        window = windows[key] = {"count": 0, "last_time": moment, "fields": {}}
    window["count"] += 1
    if moment > window["last_time"]:
        window["last_time"] = moment
    fields = window["fields"]
    for name, value in values.items():
        stats = fields.get(name)
        if stats is None:
            fields[name] = [1, value, value, value, value, moment]
            continue
        stats[0] += 1
        stats[1] += value
        if value < stats[2]:
            stats[2] = value
        if value > stats[3]:
            stats[3] = value
        if moment >= stats[5]:  # "last" is by event time; a tie goes to the later arrival
            stats[4] = value
            stats[5] = moment

    if watermark is None or moment > watermark:
        state["watermark"] = moment
        horizon = moment - size - spec.lateness_seconds
        if len(windows) > 1:
            for old in [k for k in windows if int(k) <= horizon]:
                del windows[old]

    return Accepted(start, window)


def aggregate_of(
    window: dict[str, Any],
    *,
    feed: str,
    sensor_id: str,
    start: int,
    units: Mapping[str, str],
    spec: WindowSpec,
    indices: Mapping[str, Mapping[str, Any]] | None = None,
) -> PublishedWindow:
    """The published aggregate of a window as it stands (``add_event``'s window state), with the sensor's
    ``indices`` (name → {"value", "band"}) as of its latest event."""
    fields = {}
    means = {}
    for name, (n, total, low, high, last, _) in window["fields"].items():
        means[name] = mean = total / n
        fields[name] = {"count": n, "mean": mean, "min": low, "max": high, "last": last, "unit": units[name]}
    document = {
        "schemaVersion": SCHEMA_VERSION,
        "feed": feed,
        "sensorId": sensor_id,
        "window": spec.label,
        "windowStart": _utc(start),
        "windowEnd": _utc(start + spec.size_seconds),
        "count": window["count"],
        "lastEventTime": _utc(window["last_time"]),
        "fields": fields,
        "indices": {name: {"value": i["value"], "band": i["band"]} for name, i in (indices or {}).items()},
    }
    text = orjson.dumps(document, option=orjson.OPT_UTC_Z)
    return PublishedWindow(
        feed, sensor_id, spec.label, start, window["count"], window["last_time"], means, text
    )


def window_seconds(label: str) -> int:
    """``1m`` → 60, ``15m`` → 900, ``1h`` → 3600, ``90s`` → 90 (the inverse of ``WindowSpec.label``)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = label[:-1], label[-1:]
    if unit not in units or not number.isdigit() or int(number) == 0:
        raise ValueError(f"window {label!r} is not a number followed by s, m, h or d (e.g. 5m)")
    return int(number) * units[unit]
