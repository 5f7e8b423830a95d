"""A sensor's hourly means per field, kept for the last day: what the hourly air rules look back over.

The VN_AQI's NowCast reads the last 12 hourly means, QCVN 05:2023's limits are on 1-, 8- and 24-hour
means, and the seasonal baseline learns one mean per completed hour: they share one ring of hourly sums,
a JSON-able dict ``{field: {str(hour start, epoch seconds): [sum, count]}}``. The keys are strings
because JSON has no others, so a state read back from a Faust table is the same dict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

HOUR = 3600
# Share of a window's hours that must have data for its mean to stand (the usual 75 % rule).
COMPLETE = 0.75

Ring = dict[str, dict[str, list[float]]]


@dataclass(frozen=True)
class WindowMean:
    value: float
    # False while less than ``COMPLETE`` of the window has data: ``value`` is then the least the mean can
    # be (concentrations are never negative), which can prove an exceedance but never its end.
    complete: bool


def hour_of(epoch: float) -> int:
    """Start of the clock hour holding ``epoch``."""
    return int(epoch // HOUR * HOUR)


def add(ring: Ring, epoch: float, values: Mapping[str, float], keep: int) -> None:
    """Count one reading in its hour; hours older than ``keep`` hours back from it are dropped."""
    hour = hour_of(epoch)
    oldest = hour - (keep - 1) * HOUR
    key = str(hour)
    for field, value in values.items():
        sums = ring.setdefault(field, {})
        if key not in sums:  # a new hour: the oldest may go
            for old in [k for k in sums if int(k) < oldest]:
                del sums[old]
            sums[key] = [0.0, 0]
        total = sums[key]
        total[0] += value
        total[1] += 1


def keys(hour: int, count: int) -> list[str]:
    """The ring's keys of ``hour`` and the ``count - 1`` hours before it, newest first."""
    return [str(hour - back * HOUR) for back in range(count)]


def means(sums: Mapping[str, list[float]], hours: Sequence[str]) -> list[float | None]:
    """The hourly means of ``hours`` (ring keys, see ``keys``); None for an hour without data."""
    return [(total[0] / total[1]) if (total := sums.get(key)) else None for key in hours]


def into_hour(epoch: float, covers: float) -> float:
    """How much of its clock hour a reading at ``epoch`` completes, when each reading stands for the
    ``covers`` seconds before it: 1/60 for the first minute's reading, 1 for an hourly one."""
    return min(1.0, (epoch - hour_of(epoch) + covers) / HOUR)


def trailing_mean(hourly: Sequence[float | None], share: float, hours: int) -> WindowMean | None:
    """The mean over the last ``hours`` hours, from hourly means (``hourly[0]`` this hour, at least
    ``hours + 1`` of them). This hour counts for the ``share`` of it that has passed and the hour
    ``hours`` back for the rest: the window slides with each reading instead of jumping when the clock
    hour turns."""
    weighted = covered = 0.0
    # Weights: ``share`` for this hour, 1 for the hours between, ``1 - share`` for the one ``hours`` back.
    # Summed in place: this runs for every reading and every limit (ten air rules).
    for back, mean in enumerate(hourly[: hours + 1]):
        if mean is None:
            continue
        weight = share if back == 0 else (1.0 - share if back == hours else 1.0)
        if weight > 0:
            weighted += weight * mean
            covered += weight
    if covered == 0:
        return None
    if covered >= COMPLETE * hours:
        return WindowMean(weighted / covered, complete=True)
    return WindowMean(weighted / hours, complete=False)
