"""The range of instants ioc takes as event times, and conversions that cannot overflow.

Python's datetime stops at years 1 and 9999, so an aware time near either end cannot always be moved to
UTC: ``0001-01-01T00:00:00+07:00`` is a moment of year 0 in UTC, and ``astimezone(UTC)`` raises
``OverflowError`` (a 500 at the edge, a crash loop in the worker). No sensor reads before 1970 (Kafka's
record timestamps start there, and windows are aligned to it), and nothing after 9999-01-01 UTC can be
moved by a day, a window or an offset without leaving the calendar; so an event time outside
``[EARLIEST, LATEST)`` is rejected by the feed models (``dateObserved``), with this module's sentence,
before anything converts it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)  # a year short of the calendar's end: room to add windows, shifts
EARLIEST_MS = 0
LATEST_MS = (LATEST - EARLIEST) // timedelta(milliseconds=1)


def out_of_range(moment: datetime) -> str | None:
    """Why an aware ``moment`` cannot be an event time, or None when it can. Comparing aware times
    subtracts their offsets as timedeltas, which never overflows, so this is safe for any input."""
    if EARLIEST <= moment < LATEST:
        return None
    return (
        f"Input is outside the range of event times: from {EARLIEST.isoformat()} up to "
        f"(not including) {LATEST.isoformat()}"
    )


def utc_text(moment: datetime) -> str:
    """An aware moment in UTC as ISO 8601; one that cannot be moved to UTC keeps its own offset (the
    same instant, still unambiguous) instead of raising."""
    try:
        return moment.astimezone(UTC).isoformat()
    except OverflowError:
        return moment.isoformat()


def clamped_ms(timestamp_ms: int) -> int:
    """A Kafka record timestamp held within the range, so ``datetime.fromtimestamp`` cannot fail on it:
    a producer sets its records' CreateTime, any 64-bit number (and -1 means none)."""
    return min(max(timestamp_ms, EARLIEST_MS), LATEST_MS - 1)
