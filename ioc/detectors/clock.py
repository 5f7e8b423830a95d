"""When to look for sensors that said nothing: a clock driven by the event time of the others.

A silent sensor sends no event that could trigger its own check, so the detector stage keeps a clock
per stream (online: per partition; offline: per feed) that follows the newest event time seen, and
every ``TICK_SECONDS`` of that time checks the sensors it knows for silence. Event time, not the wall
clock, so a replay at any speed sees the same silences.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

TICK_SECONDS = 60


def new_clock() -> dict[str, Any]:
    return {"now": None, "next_tick": None, "sensors": []}


def note(clock: dict[str, Any], sensor_id: str, at: datetime) -> datetime | None:
    """Advance the clock with an event; return the tick time when a silence check is due."""
    epoch = at.timestamp()
    if sensor_id not in clock["sensors"]:
        clock["sensors"].append(sensor_id)
    if clock["now"] is None or epoch > clock["now"]:
        clock["now"] = epoch
    if clock["next_tick"] is None:
        clock["next_tick"] = (epoch // TICK_SECONDS + 1) * TICK_SECONDS
        return None
    if clock["now"] < clock["next_tick"]:
        return None
    tick = clock["now"] // TICK_SECONDS * TICK_SECONDS
    clock["next_tick"] = tick + TICK_SECONDS
    return datetime.fromtimestamp(tick, UTC)
