"""When to look for sensors that said nothing: a clock driven by the event time of the others.

A silent sensor sends no event that could trigger its own check, so the detector stage keeps a clock
per stream (online: per partition; offline: per feed) that follows the newest event time seen, and
every ``TICK_SECONDS`` of that time checks the sensors it knows for silence. Event time, not the wall
clock, so a replay at any speed sees the same silences.

**No sensor may drag the clock ahead of the others.** The clock judges every sensor of the partition,
so a single sensor whose clock runs ahead (a reading dated 2036, or a device a few minutes fast) would
make all the others look silent and their device faults would inhibit their real alerts. Each event
therefore moves the clock only as far as the time its record entered Kafka (``received``, the
record's Kafka timestamp): ``min(event time, received)``. Kafka's time is a reference no sensor sets,
and it is never behind a live reading, so a live stream ticks as before; a backfill or replay of past
events (received long after they happened) still follows their event time; a source that produces
simulated time ahead of the wall clock stamps its records with their event time (``ioc simulate``,
``ioc replay --allow-future``), so it follows event time too. Offline (``ioc.step.OfflineRun``) an
event's own time stands in for ``received``, so the clock is the newest event time, as before; online
the worker has already refused, as ``future`` dead letters, the records dated more than
``IOC_FUTURE_TOLERANCE_SECONDS`` after ``received``, so they reach neither the clock nor any window.

Why not a clock taken from the sensors' own latest times (a median, the second newest): when most of a
partition's sensors fall silent together (a gateway, a district's power) such a clock stops with them
and nobody is ever judged silent; Kafka's time keeps going.

State, versioned (``"v"``) and small: ``{"v": 1, "now", "next_tick", "sensors": [ids]}``. Version 0
(no ``"v"``, the same fields) was written before this bound, so its ``now`` may already be years ahead:
``upgrade_clock`` keeps it when it is within the tolerance of the first record it meets, and otherwise
restarts the clock from that record (the sensors list is kept).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

TICK_SECONDS = 60
VERSION = 1


def new_clock() -> dict[str, Any]:
    return {"v": VERSION, "now": None, "next_tick": None, "sensors": []}


def upgrade_clock(clock: dict[str, Any], received: datetime, tolerance_seconds: float) -> dict[str, Any]:
    """A clock as an earlier version wrote it, in today's format, in place (a worker upgraded in place);
    ``received`` is the Kafka time of the record about to move it."""
    if clock.get("v") == VERSION:
        return clock
    if "v" in clock:
        raise ValueError(f"clock version {clock['v']!r} is newer than this worker's {VERSION}")
    # Version 0 followed whatever event time came; one too far ahead of Kafka's time came from a reading
    # the bound now refuses, and would keep every silence check waiting until that time.
    if clock["now"] is not None and clock["now"] > received.timestamp() + tolerance_seconds:
        clock["now"] = clock["next_tick"] = None
    clock["v"] = VERSION
    return clock


def note(
    clock: dict[str, Any], sensor_id: str, at: datetime, received: datetime | None = None
) -> datetime | None:
    """Advance the clock with an event at ``at`` whose record entered Kafka at ``received`` (None:
    offline, where the event time stands in); return the tick time when a silence check is due."""
    epoch = at.timestamp() if received is None else min(at.timestamp(), received.timestamp())
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
