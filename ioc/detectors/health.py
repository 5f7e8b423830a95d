"""Sensor health from a sensor's own readings: silent, stuck on one value, spiking, out of range.

A sick sensor is a device fault, not a city anomaly, so these measures feed ``device_fault`` rules,
whose alerts inhibit the sensor's other alerts. Pure functions over a small JSON-able state per sensor.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HISTORY = 12  # readings kept per field for the spike median
MIN_HISTORY = 5  # readings needed before a spike can be judged
MAX_SPIKE_READINGS = 3  # a "spike" still high after this many readings is a level shift instead
GAPS = 5  # reporting gaps kept to estimate the sensor's interval
STUCK_MIN_READINGS = 3
SPIKE_MADS = 25
LEVEL_ALPHA = 0.01  # the long-run level follows about the last hundred readings
LEVEL_READINGS = 50  # readings before the level is trusted
SPIKE_FLOOR = 5.0  # below this a field is near its zero, where ratios mean nothing (ozone at night)


@dataclass(frozen=True)
class Spike:
    """A confirmed spike: readings far above the sensor's recent median that came back down."""

    began: float  # epoch of the first spiked reading
    ratio: float  # the highest value over the median
    readings: int


def new_health() -> dict[str, Any]:
    return {"recent": {}, "pending": [], "previous": None, "same_since": None, "same_count": 0,
            "last_seen": None, "gaps": []}  # fmt: skip


def note_reading(health: dict[str, Any], at: float) -> None:
    """Record that the sensor reported at ``at`` (epoch seconds), for its interval and silence."""
    last = health["last_seen"]
    if last is not None and at > last:
        health["gaps"] = [*health["gaps"][-(GAPS - 1) :], at - last]
    if last is None or at > last:
        health["last_seen"] = at


def interval(health: dict[str, Any]) -> float | None:
    """The sensor's usual reporting interval, seconds: the median of its last gaps."""
    return statistics.median(health["gaps"]) if health["gaps"] else None


def silent_intervals(health: dict[str, Any], now: float) -> float | None:
    """How many of its intervals the sensor has been silent at ``now``; None before it has a rhythm."""
    usual = interval(health)
    if usual is None or health["last_seen"] is None or usual <= 0:
        return None
    return max(0.0, (now - health["last_seen"]) / usual)


def stuck_minutes(health: dict[str, Any], at: float, values: Mapping[str, float]) -> float:
    """Minutes the sensor has repeated exactly the same values (0 until it did so ``STUCK_MIN_READINGS``
    times: one repeat of a coarse reading is normal, a long run of identical floats is not)."""
    current = dict(values)
    if current and current == health["previous"]:
        health["same_count"] += 1
    else:
        health["same_since"], health["same_count"] = at, 1
    health["previous"] = current
    if health["same_count"] < STUCK_MIN_READINGS:
        return 0.0
    return (at - health["same_since"]) / 60


def spike(
    health: dict[str, Any], at: float, values: Mapping[str, float], *, factor: float, back: float
) -> Spike | None:
    """Judge a reading against the recent median of each field: ``factor`` × above starts a candidate,
    a reading back under ``back`` × median confirms it. A candidate that stays high for more than
    ``MAX_SPIKE_READINGS`` readings is a real change (an episode), not a faulty sensor."""
    recent: dict[str, list[float]] = health["recent"]
    levels: dict[str, float] = health.setdefault("levels", {})
    ratios = [
        r
        for name, value in values.items()
        if (r := _ratio(value, recent.get(name, []), levels.get(name), health.get("readings", 0))) is not None
    ]
    high = max(ratios, default=0.0)
    pending: list[list[float]] = health["pending"]

    if pending and ratios and high < back:
        confirmed = Spike(began=pending[0][0], ratio=max(p[1] for p in pending), readings=len(pending))
        health["pending"] = []
        _remember(health, values)
        return confirmed
    if high >= factor and len(pending) < MAX_SPIKE_READINGS:
        pending.append([at, high])
        return None
    # Normal, or still high after the longest spike: then a level shift, and the new normal.
    health["pending"] = []
    _remember(health, values)
    return None


def _ratio(value: float, history: list[float], level: float | None, health_readings: int) -> float | None:
    """Value over the recent median, when it also stands out from the recent spread (``SPIKE_MADS``
    median absolute deviations) and from the field's long-run level: a field resting near zero (ozone
    at night) easily grows tenfold at dawn without being a spike."""
    if len(history) < MIN_HISTORY or level is None or health_readings < LEVEL_READINGS:
        return None
    median = max(statistics.median(history), level, SPIKE_FLOOR)
    spread = max(statistics.median(abs(v - median) for v in history), median * 0.01)
    if value - median < SPIKE_MADS * spread:
        return min(value / median, 1.0)
    return value / median


def _remember(health: dict[str, Any], values: Mapping[str, float]) -> None:
    recent: dict[str, list[float]] = health["recent"]
    levels: dict[str, float] = health.setdefault("levels", {})
    health["readings"] = health.get("readings", 0) + 1
    for name, value in values.items():
        levels[name] = value if name not in levels else levels[name] + LEVEL_ALPHA * (value - levels[name])
        history = recent.setdefault(name, [])
        history.append(value)
        del history[:-HISTORY]
