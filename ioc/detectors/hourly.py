"""A sensor's hourly sums per field, kept for the hours the hourly air rules look back over.

The VN_AQI's NowCast reads the last 12 hourly means, QCVN 05:2023's limits are on 1-, 8- and 24-hour
means, and the seasonal baseline learns one mean per completed hour: they share one ring of hourly sums
per field, positional so that it is small in JSON and cheap to read on every reading::

    {field: [newest hour start (epoch seconds), its sum, its count,
             [sums of the hours before it, newest first], [their counts]]}

An hour without readings has sum and count 0. Each field keeps only the hours its rules read
(``keep``); a reading older than that is not counted (it could not change any current mean).

Every reading of an hour reads the same completed hours, so what they give is worked out once per hour
(``Completed``). The ring never changes a completed hour's lists in place: a late reading into one, or
the hour turning, makes new lists, so a summary held with the lists it came from is right as long as
they are still the ring's.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from functools import reduce
from itertools import repeat
from typing import Any, NamedTuple

HOUR = 3600
# Share of a window's hours that must have data for its mean to stand (the usual 75 % rule).
COMPLETE = 0.75
FIRST_FORMAT_HOURS = 25  # what the first state format kept of every field
ROUGHLY = 1e-9  # relative error allowed in sliding_mean_bounds: far more than rounding makes

Ring = dict[str, list[Any]]  # field → [newest hour, its sum, its count, older sums, older counts]
NEWEST, SUM, COUNT, OLDER_SUMS, OLDER_COUNTS = range(5)


class Window(NamedTuple):
    """An N-hour window's completed hours: the means of those it holds whole (1 to N - 1 back, with
    data, newest first), their sum (rounded once, for ``sliding_mean_bounds``) and the mean of the hour
    N back, which it holds in part."""

    between: list[float]
    total: float
    last: float | None


class WindowMean(NamedTuple):
    value: float
    # False while less than ``COMPLETE`` of the window has data: ``value`` is then the least the mean can
    # be (concentrations are never negative), which can prove an exceedance but never its end.
    complete: bool


def hour_of(epoch: float) -> int:
    """Start of the clock hour holding ``epoch``."""
    return int(epoch // HOUR * HOUR)


def add(ring: Ring, epoch: float, values: Mapping[str, float], keep: Mapping[str, int]) -> None:
    """Count one reading in its hour, for each field with a ``keep`` (hours kept, this one included)."""
    hour = hour_of(epoch)
    for field, kept in keep.items():
        value = values.get(field)
        if value is None:
            continue
        entry = ring.get(field)
        if entry is None:
            entry = ring[field] = [hour, 0, 0, [0] * (kept - 1), [0] * (kept - 1)]
        newest = entry[NEWEST]
        if hour > newest:  # a new hour: the newest joins the completed ones, the oldest go
            gap = min((hour - newest) // HOUR - 1, kept - 1)  # hours without a reading in between
            entry[OLDER_SUMS] = ([0] * gap + [entry[SUM]] + entry[OLDER_SUMS])[: kept - 1]
            entry[OLDER_COUNTS] = ([0] * gap + [entry[COUNT]] + entry[OLDER_COUNTS])[: kept - 1]
            entry[NEWEST], entry[SUM], entry[COUNT] = hour, 0, 0
            newest = hour
        if hour == newest:
            if entry[COUNT]:
                entry[SUM] += value
                entry[COUNT] += 1
            else:  # the hour's first reading: its sum starts from zero, as a float
                entry[SUM], entry[COUNT] = 0.0 + value, 1
            continue
        back = (newest - hour) // HOUR - 1  # a late reading, into a completed hour
        if back >= kept - 1:
            continue  # older than the hours kept
        sums, counts = list(entry[OLDER_SUMS]), list(entry[OLDER_COUNTS])  # new lists: see the docstring
        if back >= len(sums):  # kept from before the rules asked for more hours
            sums += [0] * (back + 1 - len(sums))
            counts += [0] * (back + 1 - len(counts))
        if counts[back]:
            sums[back] += value
            counts[back] += 1
        else:
            sums[back], counts[back] = 0.0 + value, 1
        entry[OLDER_SUMS], entry[OLDER_COUNTS] = sums, counts


def means(ring: Ring, field: str, hour: int, count: int) -> list[float | None]:
    """The hourly means of ``field`` for ``hour`` and the ``count - 1`` hours before it, newest first;
    None for an hour without data."""
    entry = ring.get(field)
    if entry is None:
        return [None] * count
    newest, total, n, sums, counts = entry
    found: list[float | None] = []
    for back in range((newest - hour) // HOUR, (newest - hour) // HOUR + count):
        if back == 0:
            found.append(total / n if n else None)
        elif 0 < back <= len(sums):
            found.append(sums[back - 1] / counts[back - 1] if counts[back - 1] else None)
        else:
            found.append(None)
    return found


def completed_hours(ring: Ring, field: str, before: int, after: int | None) -> list[tuple[int, float, int]]:
    """(hour, sum, count) of the hours of ``field`` with data that start before ``before`` and after
    ``after`` (None: any), oldest first."""
    entry = ring.get(field)
    if entry is None:
        return []
    newest, total, n, sums, counts = entry
    hours = [(newest - (back + 1) * HOUR, sums[back], counts[back]) for back in range(len(sums) - 1, -1, -1)]
    hours.append((newest, total, n))
    return [(hour, s, c) for hour, s, c in hours if c and hour < before and (after is None or hour > after)]


class Completed:
    """The completed hours before the newest one of a field, as every reading of the newest hour reads
    them: their means, and for an N-hour window the means it holds whole and the one it holds in part.
    Built from the ring's lists of a field (``of_ring``, kept with them) or from means (``of_means``)."""

    __slots__ = ("sums", "counts", "means", "_windows", "derived")

    def __init__(self, older_means: list[float | None], sums: list[float] | None = None,
                 counts: list[int] | None = None) -> None:  # fmt: skip
        self.means = older_means  # the hour before the newest first
        self.sums, self.counts = sums, counts
        self._windows: dict[int, Window] = {}
        self.derived: dict[Any, Any] = {}  # what users of the means work out once per hour, by their keys

    @classmethod
    def of_ring(cls, sums: list[float], counts: list[int]) -> Completed:
        return cls([total / n if n else None for total, n in zip(sums, counts, strict=True)], sums, counts)

    @classmethod
    def of_means(cls, older_means: Sequence[float | None]) -> Completed:
        return cls(list(older_means))

    def holds(self, entry: list[Any]) -> bool:
        """Whether this is the summary of the ring entry's completed hours (the same lists)."""
        return self.sums is entry[OLDER_SUMS] and self.counts is entry[OLDER_COUNTS]

    def window(self, hours: int) -> Window:
        """What an ``hours``-hour mean reads of these hours."""
        if (found := self._windows.get(hours)) is None:
            between = [mean for mean in self.means[: max(hours - 1, 0)] if mean is not None]
            last = self.means[hours - 1] if 0 < hours <= len(self.means) else None
            found = self._windows[hours] = Window(between, math.fsum(between), last)
        return found


def sliding_mean(
    current: float | None, between: list[float], last: float | None, share: float, hours: int
) -> WindowMean | None:
    """The mean over the last ``hours`` hours: this hour's mean so far (``current``) counts for the
    ``share`` of the hour that has passed, the hours between whole (``between``: those with data), the
    hour ``hours`` back (``last``) for the rest. The window slides with each reading instead of jumping
    when the clock hour turns.

    Summed in time order, newest first, one term at a time, so the float result does not depend on how
    the hours are held; the whole hours (weight 1) are added by ``reduce``, in C."""
    weighted = covered = 0.0
    if current is not None and share > 0:
        weighted, covered = share * current, share
    if between:
        weighted = reduce(operator.add, between, weighted)
        covered = reduce(operator.add, repeat(1.0, len(between)), covered)
    if last is not None and hours > 0 and 1.0 - share > 0:
        weighted += (1.0 - share) * last
        covered += 1.0 - share
    if covered == 0:
        return None
    if covered >= COMPLETE * hours:
        return WindowMean(weighted / covered, complete=True)
    return WindowMean(weighted / hours, complete=False)


def trailing_mean(hourly: Sequence[float | None], share: float, hours: int) -> WindowMean | None:
    """``sliding_mean`` from hourly means, newest first (``hourly[0]`` this hour, at least ``hours + 1``
    of them)."""
    current = hourly[0] if hourly else None
    window = Completed.of_means(hourly[1:]).window(hours)
    return sliding_mean(current, window.between, window.last, share, hours)


def quiet_up_to(window: Window, hours: int, limit: float) -> float:
    """The highest mean so far of this hour for which the ``hours``-hour sliding mean is surely at most
    ``limit``, whatever share of the hour has passed (-inf: none); worked out once per hour, so a
    reading far under a limit is told by one comparison. The sliding mean is a weighted mean of this
    hour's mean, the whole hours' and the last hour's, with weight ``covered`` (``hours`` while
    incomplete): with the last hour, this one and it share a weight of 1 (so their part is at most the
    larger of the two); without it, the mean is at most the larger of this hour's and the whole hours'
    average, or their sum over ``hours`` while incomplete. ``ROUGHLY`` under the limit leaves room
    for rounding."""
    if hours <= 0:
        return -math.inf
    cap = limit * (1 - ROUGHLY)
    whole, total, last = len(window.between), window.total, window.last
    if last is not None:
        safe = cap * min(whole + 1, hours) - total
        return safe if last <= safe else -math.inf
    if whole and total / whole > cap:
        return -math.inf
    return min(cap, cap * hours - total)


def sliding_mean_bounds(
    current: float | None, window: Window, share: float, hours: int
) -> tuple[float, float] | None:
    """Bounds on the value of ``sliding_mean`` (None when it gives none), in a few operations whatever
    the window's length: the window's sum, rounded once per hour, stands for its sum in time order, which
    differs from it by rounding only (about 1e-16 of it per hour; the means are never negative). Enough
    to know that a mean far from a limit is not past it; near one, the exact mean decides."""
    weighted = covered = 0.0
    if current is not None and share > 0:
        weighted, covered = share * current, share
    if window.between:
        weighted += window.total
        covered += len(window.between)
    if window.last is not None and hours > 0 and 1.0 - share > 0:
        weighted += (1.0 - share) * window.last
        covered += 1.0 - share
    if covered == 0:
        return None
    needed = COMPLETE * hours
    means = []
    if covered >= needed * (1 - ROUGHLY):  # complete, or too near 75 % to tell: both
        means.append(weighted / covered)
    if covered < needed * (1 + ROUGHLY):
        means.append(weighted / hours)
    return min(means) * (1 - ROUGHLY), max(means) * (1 + ROUGHLY)


def into_hour(epoch: float, covers: float) -> float:
    """How much of its clock hour a reading at ``epoch`` completes, when each reading stands for the
    ``covers`` seconds before it: 1/60 for the first minute's reading, 1 for an hourly one."""
    return min(1.0, (epoch - hour_of(epoch) + covers) / HOUR)


def upgrade_ring(old: Mapping[str, Mapping[str, list[float]]]) -> Ring:
    """The first format's ring (``{field: {str(hour start): [sum, count]}}``) in this one: its last 25
    hours (an hour older than that, from a reading that came a day late, went at the next hour anyway).
    The detector trims each field to the hours its rules read when the hour turns."""
    ring: Ring = {}
    for field, by_hour in old.items():
        if not by_hour:
            continue
        newest = max(int(key) for key in by_hour)
        sums: list[float] = [0] * (FIRST_FORMAT_HOURS - 1)
        counts = [0] * (FIRST_FORMAT_HOURS - 1)
        total, n = 0.0, 0
        for key, (hour_sum, hour_count) in by_hour.items():
            back = (newest - int(key)) // HOUR
            if back == 0:
                total, n = hour_sum, int(hour_count)
            elif back < FIRST_FORMAT_HOURS:
                sums[back - 1], counts[back - 1] = hour_sum, int(hour_count)
        ring[field] = [newest, total, n, sums, counts]
    return ring
