"""The statistical detector over recorded series, as if streaming: ``ioc detect`` and the NAB benchmark.

Rows are read, scored and written one at a time, in file order: a row's score depends only on the
rows before it, exactly as in a stream agent.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from ioc.detectors import nab
from ioc.detectors.baseline import BaselineParams, new_state, params_for_metric, score_point

# is_anomaly: the detector's own alarm level (NAB's sweep picks 0.514, see docs/benchmarks.md).
DEFAULT_THRESHOLD = BaselineParams().alarm_level
OUTPUT_HEADER = ("timestamp", "value", "anomaly_score", "is_anomaly")

# The NAB files ioc is measured on, with the metric each one is (which sets the direction).
NAB_FILE_METRICS: dict[str, str] = {
    "realTraffic/TravelTime_387.csv": "travel_time",
    "realTraffic/occupancy_6005.csv": "occupancy",
    "realTraffic/speed_6005.csv": "speed",
    "realKnownCause/nyc_taxi.csv": "ridership",
}


@dataclass(frozen=True)
class NabReport:
    profiles: tuple[nab.ProfileResult, ...]
    rows: int
    seconds: float  # detection and scoring time


@dataclass(frozen=True)
class SeriesRow:
    line: int
    timestamp_text: str  # as written, echoed to the output
    timestamp: datetime
    value_text: str
    value: float  # NaN when the cell is empty or not a number (a gap in the recording)


def read_series(source: TextIO) -> Iterator[SeriesRow]:
    """Rows of a ``timestamp,value`` CSV (header required), in file order."""
    reader = csv.reader(source)
    header = next(reader, None)
    if header is None:
        return
    if [name.strip().lower() for name in header[:2]] != ["timestamp", "value"]:
        raise ValueError(f"line 1: expected the header timestamp,value, got {','.join(header)!r}")
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) < 2:
            raise ValueError(f"line {line}: expected timestamp,value, got {','.join(row)!r}")
        timestamp_text, value_text = row[0].strip(), row[1].strip()
        try:
            moment = datetime.fromisoformat(timestamp_text)
        except ValueError:
            raise ValueError(f"line {line}: {timestamp_text!r} is not an ISO 8601 timestamp") from None
        try:
            value = float(value_text)
        except ValueError:
            value = math.nan
        yield SeriesRow(line, timestamp_text, moment, value_text, value if math.isfinite(value) else math.nan)


def detect_stream(
    source: TextIO,
    target: TextIO,
    params: BaselineParams | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> int:
    """Score a ``timestamp,value`` CSV into ``timestamp,value,anomaly_score,is_anomaly``, row by row.

    A row without a number keeps its place with score 0 and is not learned. Returns the row count."""
    state = new_state(params)
    writer = csv.writer(target, lineterminator="\n")
    writer.writerow(OUTPUT_HEADER)
    rows = 0
    for row in read_series(source):
        score = 0.0 if math.isnan(row.value) else score_point(state, row.timestamp, row.value).score
        writer.writerow((row.timestamp_text, row.value_text, f"{score:.6f}", int(score >= threshold)))
        rows += 1
    return rows


def score_series(points: Iterable[tuple[datetime, float]], params: BaselineParams) -> list[float]:
    """Anomaly scores of a series, each computed before its point is learned."""
    state = new_state(params)
    return [0.0 if math.isnan(value) else score_point(state, moment, value).score for moment, value in points]


def nab_benchmark(data_dir: Path, base: BaselineParams | None = None) -> NabReport:
    """Run the detector over NAB's files in ``data_dir`` and score them with NAB's three profiles."""
    began = time.perf_counter()
    windows = nab.load_windows(data_dir / "combined_windows.json")
    profiles = nab.load_profiles(data_dir / "profiles.json")
    results: dict[str, tuple[list[datetime], list[float]]] = {}
    rows = 0
    for name, metric in NAB_FILE_METRICS.items():
        with (data_dir / name).open(newline="") as source:
            points = [(row.timestamp, row.value) for row in read_series(source)]
        results[name] = (
            [moment for moment, _ in points],
            score_series(points, params_for_metric(metric, base)),
        )
        rows += len(points)
    scored = tuple(nab.score_corpus(results, windows, profile) for profile in profiles.values())
    return NabReport(profiles=scored, rows=rows, seconds=time.perf_counter() - began)


def format_nab_report(report: NabReport) -> str:
    lines = [f"NAB, {len(NAB_FILE_METRICS)} files, {report.rows:,} rows, {report.seconds:.1f} s"]
    lines.append(f"{'profile':<20} {'score':>6} {'threshold':>10} {'raw':>7} windows  FP rows")
    for result in report.profiles:
        detected = sum(file.detected_windows for file in result.files)
        windows = detected + sum(file.missed_windows for file in result.files)
        false_positives = sum(file.false_positives for file in result.files)
        lines.append(
            f"{result.profile.name:<20} {result.normalised:6.1f} {result.threshold:10.4f} "
            f"{result.raw_score:7.3f} {detected:>3}/{windows:<4} {false_positives:>7}"
        )
    if not report.profiles:
        return "\n".join(lines)
    shown = next(
        (result for result in report.profiles if result.profile.name == "standard"), report.profiles[0]
    )
    lines.append(f"per file ({shown.profile.name} profile, its threshold):")
    for file in shown.files:
        lines.append(
            f"  {file.name:<34} {file.score:+7.3f}  windows {file.detected_windows}/"
            f"{file.detected_windows + file.missed_windows}  FP rows {file.false_positives}"
        )
    return "\n".join(lines)
