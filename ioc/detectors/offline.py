"""The detectors over recorded series, as if streaming: ``ioc detect`` and the NAB benchmark.

Rows are read, scored and written one at a time, in file order: a row's score depends only on the
rows before it, exactly as in a stream agent. Two detectors: ``general`` (``ioc/detectors/general.py``,
the default, one configuration per kind of metric) and ``baseline`` (``ioc/detectors/baseline.py``,
the stream's seasonal baseline today).
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from ioc.detectors import baseline, general, nab

# is_anomaly: the detectors' own alarm level (both: 0.5).
DEFAULT_THRESHOLD = general.GeneralParams().alarm_level
DETECTORS = ("general", "baseline")
# NAB's profiles (profiles.json), for a folder that does not carry its own.
NAB_PROFILES = (
    nab.CostProfile("standard", tp_weight=1.0, fp_weight=0.11, fn_weight=1.0),
    nab.CostProfile("reward_low_FP_rate", tp_weight=1.0, fp_weight=0.22, fn_weight=1.0),
    nab.CostProfile("reward_low_FN_rate", tp_weight=1.0, fp_weight=0.11, fn_weight=2.0),
)
OUTPUT_HEADER = ("timestamp", "value", "anomaly_score", "is_anomaly")

# The NAB files whose kind of metric is known (which sets the direction); every other file is of
# unknown kind and gets the detector's defaults.
NAB_FILE_METRICS: dict[str, str] = {
    "realTraffic/TravelTime_387.csv": "travel_time",
    "realTraffic/occupancy_6005.csv": "occupancy",
    "realTraffic/speed_6005.csv": "speed",
    "realKnownCause/nyc_taxi.csv": "ridership",
}


class NabLayoutError(ValueError):
    """The folder is not laid out like NAB's (no windows file, or none of its files)."""


Scorer = Callable[[datetime, float], float]  # one point's anomaly score, given the points before it


@dataclass(frozen=True)
class NabReport:
    detector: str
    profiles: tuple[nab.ProfileResult, ...]
    files: int
    rows: int
    seconds: float  # detection and scoring time
    detector_seconds: float  # detection alone
    missing: tuple[str, ...] = ()  # files of the windows file that the folder does not hold


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


def make_scorer(
    detector: str = "general", metric: str | None = None, base: general.GeneralParams | None = None
) -> Scorer:
    """A fresh scorer for one series: ``detector`` with the settings of ``metric`` (None: unknown kind);
    ``base``: the general detector's defaults (for ablations). Raises ValueError for an unknown
    detector or metric."""
    if detector == "general":
        general_state = general.new_state(general.params_for_metric(metric, base))
        return lambda moment, value: general.score_value(general_state, value, moment)
    if detector == "baseline":
        baseline_state = baseline.new_state(baseline.params_for_metric(metric))
        return lambda moment, value: baseline.score_point(baseline_state, moment, value).score
    raise ValueError(f"unknown detector {detector!r}; known: {', '.join(DETECTORS)}")


def detect_stream(
    source: TextIO,
    target: TextIO,
    scorer: Scorer | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> int:
    """Score a ``timestamp,value`` CSV into ``timestamp,value,anomaly_score,is_anomaly``, row by row.

    A row without a number keeps its place with score 0 and is not learned. Returns the row count."""
    scorer = scorer or make_scorer()
    writer = csv.writer(target, lineterminator="\n")
    writer.writerow(OUTPUT_HEADER)
    rows = 0
    for row in read_series(source):
        score = 0.0 if math.isnan(row.value) else scorer(row.timestamp, row.value)
        writer.writerow((row.timestamp_text, row.value_text, f"{score:.6f}", int(score >= threshold)))
        rows += 1
    return rows


def score_series(points: list[tuple[datetime, float]], scorer: Scorer) -> list[float]:
    """Anomaly scores of a series, each computed before its point is learned."""
    return [0.0 if math.isnan(value) else scorer(moment, value) for moment, value in points]


def nab_files(data_dir: Path) -> tuple[dict[str, list[tuple[datetime, datetime]]], list[str]]:
    """The windows of a NAB-layout folder (``combined_windows.json``) and those of its files that are
    missing from the folder. Raises ValueError when there is no windows file or no file of it."""
    path = data_dir / "combined_windows.json"
    if not path.is_file():
        raise NabLayoutError(f"{data_dir} has no combined_windows.json (NAB layout)")
    try:
        windows = nab.load_windows(path)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise NabLayoutError(f"{path}: not NAB's windows format ({error})") from None
    missing = sorted(name for name in windows if not (data_dir / name).is_file())
    present = {name: limits for name, limits in sorted(windows.items()) if name not in missing}
    if not present:
        raise NabLayoutError(f"{path} names no file that {data_dir} holds")
    return present, missing


def nab_profiles(data_dir: Path) -> tuple[nab.CostProfile, ...]:
    """The folder's ``profiles.json``, or NAB's three profiles when it has none."""
    path = data_dir / "profiles.json"
    return tuple(nab.load_profiles(path).values()) if path.is_file() else NAB_PROFILES


def read_result_scores(results_dir: Path, name: str, rows: int) -> list[float]:
    """The ``anomaly_score`` column of a NAB result file for ``<folder>/<file>.csv``: the file
    ``<folder>/<detector>_<file>.csv`` under ``results_dir`` (NAB's ``results/<detector>`` layout)."""
    folder, file_name = name.split("/", 1)
    found = sorted((results_dir / folder).glob(f"*_{file_name}"))
    if not found:
        raise NabLayoutError(f"{results_dir}: no result file for {name}")
    with found[0].open(newline="") as source:
        scores = [float(row["anomaly_score"]) for row in csv.DictReader(source)]
    if len(scores) != rows:
        raise NabLayoutError(f"{found[0]}: {len(scores)} rows, the data file has {rows}")
    return scores


def write_result_file(
    target: Path,
    points: list[tuple[datetime, float]],
    scores: list[float],
    windows: list[tuple[datetime, datetime]],
) -> None:
    """One NAB result file: ``timestamp,value,anomaly_score,label`` (label 1 inside a window)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as sink:
        writer = csv.writer(sink, lineterminator="\n")
        writer.writerow(("timestamp", "value", "anomaly_score", "label"))
        for (moment, value), score in zip(points, scores, strict=True):
            label = int(any(start <= moment <= end for start, end in windows))
            writer.writerow((f"{moment:%Y-%m-%d %H:%M:%S}", f"{value:g}", f"{score:.6f}", label))


def nab_benchmark(
    data_dir: Path,
    detector: str = "general",
    metrics: dict[str, str] | None = None,
    results_out: Path | None = None,
    scores_from: Path | None = None,
    base: general.GeneralParams | None = None,
) -> NabReport:
    """Run a detector over every file of a NAB-layout folder (each file a stream) and score the scores
    with NAB's profiles, one threshold per profile over all the files.

    ``metrics`` names the kind of metric of known files (default ``NAB_FILE_METRICS``); the others get
    the detector's defaults. ``scores_from``: score the result files of a published detector (NAB's
    ``results/<detector>`` folder) instead. ``results_out``: write NAB-format result files there."""
    began = time.perf_counter()
    metrics = NAB_FILE_METRICS if metrics is None else metrics
    windows, missing = nab_files(data_dir)
    results: dict[str, tuple[list[datetime], list[float]]] = {}
    rows = 0
    detecting = 0.0
    label = detector if scores_from is None else scores_from.name
    for name in windows:
        with (data_dir / name).open(encoding="utf-8-sig", newline="") as source:
            points = [(row.timestamp, row.value) for row in read_series(source)]
        started = time.perf_counter()
        if scores_from is None:
            scores = score_series(points, make_scorer(detector, metrics.get(name), base))
        else:
            scores = read_result_scores(scores_from, name, len(points))
        detecting += time.perf_counter() - started
        results[name] = ([moment for moment, _ in points], scores)
        rows += len(points)
        if results_out is not None:
            folder, file_name = name.split("/", 1)
            target = results_out / label / folder / f"{label}_{file_name}"
            write_result_file(target, points, scores, windows[name])
    scored = tuple(nab.score_corpus(results, windows, profile) for profile in nab_profiles(data_dir))
    return NabReport(
        detector=label,
        profiles=scored,
        files=len(results),
        rows=rows,
        seconds=time.perf_counter() - began,
        detector_seconds=detecting,
        missing=tuple(missing),
    )


def folder_of(name: str) -> str:
    return name.split("/", 1)[0] if "/" in name else "."


def folder_scores(result: nab.ProfileResult) -> dict[str, tuple[float | None, float, int]]:
    """Per folder at the profile's corpus threshold: (normalised score or None when the folder has
    no window, raw score, windows)."""
    by_folder: dict[str, list[nab.FileScore]] = {}
    for file in result.files:
        by_folder.setdefault(folder_of(file.name), []).append(file)
    summary: dict[str, tuple[float | None, float, int]] = {}
    for folder, files in sorted(by_folder.items()):
        raw = sum(file.score for file in files)
        count = sum(file.detected_windows + file.missed_windows for file in files)
        null = -result.profile.fn_weight * count
        perfect = result.profile.tp_weight * count
        summary[folder] = (nab.normalised_score(raw, null, perfect) if count else None, raw, count)
    return summary


def format_nab_report(report: NabReport, per_file: bool = False) -> str:
    per_row = 1e6 * report.detector_seconds / max(report.rows, 1)
    lines = [
        f"NAB, detector {report.detector}: {report.files} files, {report.rows:,} rows, "
        f"{report.seconds:.1f} s ({per_row:.1f} µs per row to detect)"
    ]
    if report.missing:
        lines.append(f"  not in the folder, skipped: {len(report.missing)} files of the windows file")
    lines.append(f"{'profile':<20} {'score':>6} {'threshold':>10} {'raw':>8} windows  FP rows")
    for result in report.profiles:
        detected = sum(file.detected_windows for file in result.files)
        windows = detected + sum(file.missed_windows for file in result.files)
        false_positives = sum(file.false_positives for file in result.files)
        lines.append(
            f"{result.profile.name:<20} {result.normalised:6.1f} {result.threshold:10.4f} "
            f"{result.raw_score:8.3f} {detected:>3}/{windows:<4} {false_positives:>7}"
        )
    if not report.profiles:
        return "\n".join(lines)
    names = [result.profile.name for result in report.profiles]
    lines.append("per folder (each profile at its corpus threshold; raw score where a folder has no window):")
    lines.append(f"  {'folder':<24} {'windows':>7} " + " ".join(f"{name:>18}" for name in names))
    summaries = [folder_scores(result) for result in report.profiles]
    for folder in summaries[0]:
        cells = []
        for summary in summaries:
            normalised, raw, _ = summary[folder]
            cells.append(f"{normalised:18.1f}" if normalised is not None else f"{f'raw {raw:+.2f}':>18}")
        lines.append(f"  {folder:<24} {summaries[0][folder][2]:>7} " + " ".join(cells))
    if per_file:
        shown = next((r for r in report.profiles if r.profile.name == "standard"), report.profiles[0])
        lines.append(f"per file ({shown.profile.name} profile, its threshold):")
        for file in shown.files:
            lines.append(
                f"  {file.name:<56} {file.score:+7.3f}  windows {file.detected_windows}/"
                f"{file.detected_windows + file.missed_windows}  FP rows {file.false_positives}"
            )
    return "\n".join(lines)


def nab_report_json(report: NabReport) -> str:
    """The report as JSON (for benchmarks/ and comparisons)."""
    body = {
        "detector": report.detector,
        "files": report.files,
        "rows": report.rows,
        "profiles": {
            result.profile.name: {
                "score": round(result.normalised, 2),
                "threshold": result.threshold,
                "folders": {
                    folder: None if normalised is None else round(normalised, 2)
                    for folder, (normalised, _, _) in folder_scores(result).items()
                },
            }
            for result in report.profiles
        },
    }
    return json.dumps(body, indent=2)
