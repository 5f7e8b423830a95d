"""Sensor health from a sensor's own readings: silent, stuck on one value, spiking, out of range.

A sick sensor is a device fault, not a city anomaly, so these measures feed ``device_fault`` rules,
whose alerts inhibit the sensor's other alerts. Pure functions over a small JSON-able state per sensor
(``new_health``), judged on every reading: the spike test sorts a dozen values per field and skips
the spread when the reading is plainly not far above the median.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import repeat
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
ROUNDING = 1e-9  # a margin, relative, far wider than a division's rounding


@dataclass(frozen=True)
class Spike:
    """A confirmed spike: readings far above the sensor's recent median that came back down."""

    began: float  # epoch of the first spiked reading
    ratio: float  # the highest value over the median
    readings: int


def new_health() -> dict[str, Any]:
    """seen: the newest reading (epoch); gaps: the last reporting gaps, seconds; prev: the last values,
    same: [since, readings] they have repeated; fields: per field [long-run level, *recent values];
    remembered: readings taken into the fields (the level's age); pending: [epoch, ratio] per reading of a
    spike candidate."""
    return {"seen": None, "gaps": [], "prev": None, "same": None, "fields": {}, "remembered": 0,
            "pending": []}  # fmt: skip


def median(values: list[float]) -> float:
    """``statistics.median`` without its overhead, to the same float."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def note_reading(health: dict[str, Any], at: float) -> None:
    """Record that the sensor reported at ``at`` (epoch seconds), for its interval and silence."""
    last = health["seen"]
    if last is None:
        health["seen"] = at
    elif at > last:
        gaps = health["gaps"]
        gaps.append(at - last)
        if len(gaps) > GAPS:
            del gaps[0]
        health["seen"] = at


def interval(health: dict[str, Any]) -> float | None:
    """The sensor's usual reporting interval, seconds: the median of its last gaps."""
    return median(health["gaps"]) if health["gaps"] else None


def silent_intervals(health: dict[str, Any], now: float) -> float | None:
    """How many of its intervals the sensor has been silent at ``now``; None before it has a rhythm."""
    usual = interval(health)
    if usual is None or health["seen"] is None or usual <= 0:
        return None
    return max(0.0, (now - health["seen"]) / usual)


def stuck_minutes(health: dict[str, Any], at: float, values: Mapping[str, float]) -> float:
    """Minutes the sensor has repeated exactly the same values (0 until it did so ``STUCK_MIN_READINGS``
    times: one repeat of a coarse reading is normal, a long run of identical floats is not)."""
    current = dict(values)
    same = health["same"]
    if current and current == health["prev"]:
        same[1] += 1
    else:
        same = health["same"] = [at, 1]
    health["prev"] = current
    if same[1] < STUCK_MIN_READINGS:
        return 0.0
    return (at - same[0]) / 60


def spike(
    health: dict[str, Any], at: float, values: Mapping[str, float], *, factor: float, back: float
) -> Spike | None:
    """Judge a reading against the recent median of each field: ``factor`` × above starts a candidate,
    a reading back under ``back`` × median confirms it. A candidate that stays high for more than
    ``MAX_SPIKE_READINGS`` readings is a real change (an episode), not a faulty sensor."""
    judged, high = False, 0.0  # whether any field was judged, and the highest ratio
    if health["remembered"] >= LEVEL_READINGS:
        # With both thresholds above 1, a field's ratio under both is all the verdict needs to know of
        # it (it can neither start, keep nor end a candidate), and 1 stands in for it. A reading under
        # that many times a least value of the typical one (the long-run level, the newest readings)
        # has such a ratio: its median need not be worked out.
        cap = min(factor, back) * (1 - ROUNDING) if factor > 1.0 and back > 1.0 else None
        fields = health["fields"]
        for name, value in values.items():
            field = fields.get(name)
            if field is None or len(field) <= MIN_HISTORY or (level := field[0]) is None:
                continue
            least = level if level > SPIKE_FLOOR else SPIKE_FLOOR  # the typical value is at least this
            if cap is not None and (value < cap * least or _under_recent(value, field, least, cap)):
                ratio = 1.0
            else:
                ratio = _ratio(value, field)
            if not judged or ratio > high:
                judged, high = True, ratio
    pending: list[list[float]] = health["pending"]

    if pending and judged and high < back:
        confirmed = Spike(began=pending[0][0], ratio=max(p[1] for p in pending), readings=len(pending))
        health["pending"] = []
        _remember(health, values)
        return confirmed
    if high >= factor and len(pending) < MAX_SPIKE_READINGS:
        pending.append([at, high])
        return None
    # Normal, or still high after the longest spike: then a level shift, and the new normal.
    if pending:
        health["pending"] = []
    _remember(health, values)
    return None


def _under_recent(value: float, field: list[Any], least: float, cap: float) -> bool:
    """Whether the reading is under ``cap`` times the smallest of the field's newest half-plus-one
    readings, when that is more than ``least``: more than half the readings are at least that, so the
    median is too (and with it ``_ratio``'s typical value)."""
    recent = min(field[-((len(field) - 1) // 2 + 1) :])
    return recent > least and value < cap * recent


def _ratio(value: float, field: list[Any]) -> float:
    """Value over the recent median, when it also stands out from the recent spread (``SPIKE_MADS``
    median absolute deviations) and from the field's long-run level: a field resting near zero (ozone
    at night) easily grows tenfold at dawn without being a spike. ``field`` is [level, *recent]."""
    history = field[1:]
    typical = max(median(history), field[0], SPIKE_FLOOR)
    # The spread is at least 1 % of the median: under that floor's bound, no need to measure it.
    if value - typical < SPIKE_MADS * (typical * 0.01):
        return min(value / typical, 1.0)
    deviations = list(map(abs, map(operator.sub, history, repeat(typical, len(history)))))  # |v - typical|
    spread = max(median(deviations), typical * 0.01)
    if value - typical < SPIKE_MADS * spread:
        return min(value / typical, 1.0)
    return value / typical


def _remember(health: dict[str, Any], values: Mapping[str, float]) -> None:
    fields: dict[str, list[Any]] = health["fields"]
    health["remembered"] += 1
    for name, value in values.items():
        field = fields.get(name)
        if field is None:
            fields[name] = [value, value]
            continue
        level = field[0]
        field[0] = value if level is None else level + LEVEL_ALPHA * (value - level)
        field.append(value)
        if len(field) > _FIELD_LENGTH:
            del field[1]


_FIELD_LENGTH = HISTORY + 1  # a field: its level and its recent readings


def upgrade_health(old: dict[str, Any]) -> dict[str, Any]:
    """The first format's health state in this one."""
    levels: dict[str, float] = old.get("levels", {})
    same = [old["same_since"], old["same_count"]] if old.get("same_since") is not None else None
    return {
        "seen": old.get("last_seen"),
        "gaps": list(old.get("gaps", [])),
        "prev": old.get("previous"),
        "same": same,
        "fields": {name: [levels.get(name), *recent] for name, recent in old.get("recent", {}).items()},
        "remembered": old.get("readings", 0),
        "pending": [list(p) for p in old.get("pending", [])],
    }
