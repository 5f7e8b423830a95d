"""The Numenta Anomaly Benchmark's scoring, reimplemented to measure ``ioc``'s detectors.

NAB scores a detector's per-row anomaly scores (in [0, 1]) against labelled anomaly *windows*:

- The first 15 % of each file, at most 750 rows, is probationary: its rows are not scored at all.
- A row is a detection when its anomaly score is at or above the threshold.
- In a window only the earliest detection counts, worth ``A_TP · σ(pos) / σ(-1)`` where ``pos`` runs
  from -1 at the window's left edge to 0 past its right edge and ``σ(x) = 2/(1+e^{5x}) - 1`` is NAB's
  scaled sigmoid; a window with no detection costs ``-A_FN``.
- A detection outside every window costs ``A_FP · σ(d)`` (negative) where ``d`` is its distance past the
  end of the previous window over that window's width - 1: cheap just after a window (a late
  detection), ``-A_FP`` from three widths on, and ``-A_FP`` when no window precedes it.
- The threshold is the one that maximises the summed score of all files scored together (NAB sweeps
  every distinct anomaly score; among equal sums it keeps the highest threshold).
- ``normalised = 100 · (S - S_null) / (S_perfect - S_null)``: the null detector (never fires) scores
  ``-A_FN`` per window, the perfect one ``A_TP`` per window (a detection on every left edge).

This follows NAB v1.1's ``nab/sweeper.py`` (per-row weights, the sweep over thresholds) and
``nab/runner.py`` (normalisation). Two edge cases NAB leaves undefined get a value here: a window
without rows is ignored, and a detection after a one-row window is weighted as two widths past it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

PROBATIONARY_FRACTION = 0.15
PROBATIONARY_MAX_ROWS = 750  # NAB: 15 % of a 5000-row file
NOTHING_DETECTED = math.inf  # the threshold at which no row is a detection


@dataclass(frozen=True)
class CostProfile:
    """One of NAB's application profiles (``profiles.json``)."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


@dataclass(frozen=True)
class ScorableRow:
    """A row past the probationary period, with what detecting it is worth."""

    anomaly_score: float
    weight: float  # the row's contribution if detected (TP weight in a window, negative FP cost outside)
    window: str | None  # unique window id across files, None outside every window


@dataclass(frozen=True)
class ThresholdScore:
    threshold: float
    score: float
    true_positives: int  # detected rows inside windows
    false_positives: int  # detected rows outside windows
    detected_windows: int
    missed_windows: int


@dataclass(frozen=True)
class FileScore:
    name: str
    score: float
    detected_windows: int
    missed_windows: int
    false_positives: int


@dataclass(frozen=True)
class ProfileResult:
    profile: CostProfile
    threshold: float
    raw_score: float
    null_score: float
    perfect_score: float
    files: tuple[FileScore, ...]

    @property
    def normalised(self) -> float:
        return normalised_score(self.raw_score, self.null_score, self.perfect_score)


def scaled_sigmoid(relative_position: float) -> float:
    """NAB's weight of a detection at a relative position: ~0.987 at -1 (a window's left edge), 0 at 0
    (its right edge), ~-0.987 at 1, and -1 beyond 3 (far past a window)."""
    if relative_position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * relative_position)) - 1.0


def probationary_length(rows: int) -> int:
    return min(math.floor(PROBATIONARY_FRACTION * rows), PROBATIONARY_MAX_ROWS)


def load_profiles(path: Path) -> dict[str, CostProfile]:
    """NAB's ``profiles.json``: ``{name: {"CostMatrix": {"tpWeight": …, "fpWeight": …, "fnWeight": …}}}``."""
    profiles = json.loads(Path(path).read_text())
    return {
        name: CostProfile(
            name=name,
            tp_weight=float(body["CostMatrix"]["tpWeight"]),
            fp_weight=float(body["CostMatrix"]["fpWeight"]),
            fn_weight=float(body["CostMatrix"]["fnWeight"]),
        )
        for name, body in profiles.items()
    }


def load_windows(path: Path) -> dict[str, list[tuple[datetime, datetime]]]:
    """NAB's ``combined_windows.json``: ``{"<folder>/<file>.csv": [[start, end], …]}``."""
    windows = json.loads(Path(path).read_text())
    return {
        name: [(datetime.fromisoformat(start), datetime.fromisoformat(end)) for start, end in limits]
        for name, limits in windows.items()
    }


def _window_rows(timestamps: Sequence[datetime], start: datetime, end: datetime) -> tuple[int, int] | None:
    """First and last row index inside [start, end], or None when no row is."""
    inside = [i for i, moment in enumerate(timestamps) if start <= moment <= end]
    return (inside[0], inside[-1]) if inside else None


def scorable_rows(
    file_name: str,
    timestamps: Sequence[datetime],
    anomaly_scores: Sequence[float],
    windows: Iterable[tuple[datetime, datetime]],
    profile: CostProfile,
) -> list[ScorableRow]:
    """Every row of one file past its probationary period, with its NAB weight (NAB's sweep scores)."""
    if len(timestamps) != len(anomaly_scores):
        raise ValueError(f"{file_name}: {len(timestamps)} timestamps but {len(anomaly_scores)} scores")
    spans = sorted(
        span for start, end in windows if (span := _window_rows(timestamps, start, end)) is not None
    )
    window_at: dict[int, tuple[int, int]] = {}
    for left, right in spans:
        for i in range(left, right + 1):
            window_at[i] = (left, right)
    max_tp = scaled_sigmoid(-1.0)
    probation = probationary_length(len(timestamps))
    previous: tuple[int, int] | None = None  # the last window that ended before the current row
    rows: list[ScorableRow] = []
    for i, score in enumerate(anomaly_scores):
        span = window_at.get(i)
        if span is not None:
            left, right = span
            width = right - left + 1
            # NAB's position: -1 at the left edge, -1/width at the right edge.
            weight = scaled_sigmoid(-(right - i + 1) / width) * profile.tp_weight / max_tp
            name: str | None = f"{file_name}|{left}"
            if i == right:
                previous = span
        else:
            name = None
            if previous is None:
                weight = -profile.fp_weight
            else:
                left, right = previous
                width = right - left + 1
                position = (i - right) / (width - 1) if width > 1 else 2.0
                weight = scaled_sigmoid(position) * profile.fp_weight
        if i >= probation:
            rows.append(ScorableRow(anomaly_score=float(score), weight=weight, window=name))
    return rows


def sweep_thresholds(rows: Sequence[ScorableRow], fn_weight: float) -> list[ThresholdScore]:
    """The score at every distinct threshold, from "nothing detected" down to the lowest anomaly score.

    Lowering the threshold to a score adds every row with that score as a detection: an FP adds its
    (negative) weight, a window is worth the best (earliest) weight among its detected rows.
    """
    windows = {row.window for row in rows if row.window is not None}
    best_in_window: dict[str, float] = {}
    fp_sum = 0.0
    true_positives = false_positives = 0

    def snapshot(threshold: float) -> ThresholdScore:
        detected = len(best_in_window)
        score = fp_sum + sum(best_in_window.values()) - fn_weight * (len(windows) - detected)
        return ThresholdScore(
            threshold, score, true_positives, false_positives, detected, len(windows) - detected
        )

    results = [snapshot(NOTHING_DETECTED)]
    ordered = sorted(rows, key=lambda row: row.anomaly_score, reverse=True)
    for i, row in enumerate(ordered):
        if row.window is None:
            fp_sum += row.weight
            false_positives += 1
        else:
            true_positives += 1
            best_in_window[row.window] = max(best_in_window.get(row.window, -math.inf), row.weight)
        last_of_its_score = i + 1 == len(ordered) or ordered[i + 1].anomaly_score != row.anomaly_score
        if last_of_its_score:
            results.append(snapshot(row.anomaly_score))
    return results


def best_threshold(rows: Sequence[ScorableRow], fn_weight: float) -> ThresholdScore:
    """The threshold with the highest summed score; among equal scores the highest threshold (NAB)."""
    best: ThresholdScore | None = None
    for candidate in sweep_thresholds(rows, fn_weight):
        if best is None or candidate.score > best.score:
            best = candidate
    assert best is not None  # the sweep always holds "nothing detected"
    return best


def score_at(rows: Sequence[ScorableRow], threshold: float, fn_weight: float) -> ThresholdScore:
    """The score when rows with anomaly_score >= threshold are detections."""
    best_in_window: dict[str, float] = {}
    fp_sum = 0.0
    true_positives = false_positives = 0
    windows = {row.window for row in rows if row.window is not None}
    for row in rows:
        if row.anomaly_score < threshold:
            continue
        if row.window is None:
            fp_sum += row.weight
            false_positives += 1
        else:
            true_positives += 1
            best_in_window[row.window] = max(best_in_window.get(row.window, -math.inf), row.weight)
    detected = len(best_in_window)
    missed = len(windows) - detected
    score = fp_sum + sum(best_in_window.values()) - fn_weight * missed
    return ThresholdScore(threshold, score, true_positives, false_positives, detected, missed)


def normalised_score(raw: float, null: float, perfect: float) -> float:
    return 100.0 * (raw - null) / (perfect - null)


def score_corpus(
    results: Mapping[str, tuple[Sequence[datetime], Sequence[float]]],
    windows: Mapping[str, Iterable[tuple[datetime, datetime]]],
    profile: CostProfile,
) -> ProfileResult:
    """Score several files together: one threshold for all, chosen to maximise their summed score.

    ``results`` maps a file name (the key of ``windows``) to its timestamps and anomaly scores.
    """
    per_file = {
        name: scorable_rows(name, timestamps, scores, windows.get(name, ()), profile)
        for name, (timestamps, scores) in results.items()
    }
    everything = [row for rows in per_file.values() for row in rows]
    best = best_threshold(everything, profile.fn_weight)
    files = []
    for name, rows in per_file.items():
        at = score_at(rows, best.threshold, profile.fn_weight)
        files.append(FileScore(name, at.score, at.detected_windows, at.missed_windows, at.false_positives))
    window_count = len({row.window for row in everything if row.window is not None})
    return ProfileResult(
        profile=profile,
        threshold=best.threshold,
        raw_score=best.score,
        null_score=-profile.fn_weight * window_count,
        perfect_score=profile.tp_weight * window_count,
        files=tuple(files),
    )
