"""``ioc detect --nab DIR`` on NAB-layout folders built here: any folder, per-folder scores, result files."""

import csv
import json
import math
import random
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ioc.cli import app
from ioc.detectors import nab
from ioc.detectors.offline import folder_scores, nab_benchmark

START = datetime(2024, 3, 4)
STEP = timedelta(minutes=10)
ROWS = 1500
SPIKE = 1200
STANDARD = nab.CostProfile("standard", tp_weight=1.0, fp_weight=0.11, fn_weight=1.0)


def write_series(path: Path, seed: int, spike: int | None) -> list[tuple[datetime, float]]:
    rng = random.Random(seed)
    points = []
    for i in range(ROWS):
        value = 30 + 10 * math.sin(2 * math.pi * i / 144) + rng.gauss(0, 1) + (40 if i == spike else 0)
        points.append((START + i * STEP, value))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("timestamp,value\n" + "".join(f"{t:%Y-%m-%d %H:%M:%S},{v:.3f}\n" for t, v in points))
    return points


def window_around(points: list[tuple[datetime, float]], row: int, half: int = 30) -> list[str]:
    return [
        f"{points[row - half][0]:%Y-%m-%d %H:%M:%S}.000000",
        f"{points[row + half][0]:%Y-%m-%d %H:%M:%S}.000000",
    ]


@pytest.fixture
def unseen_folder(tmp_path: Path) -> Path:
    """Folders and files no NAB release has, one file without a window, no profiles.json."""
    windows = {}
    for seed, name in enumerate(["pumps/station_a.csv", "pumps/station_b.csv", "lights/corridor.csv"]):
        points = write_series(tmp_path / name, seed, SPIKE)
        windows[name] = [window_around(points, SPIKE)]
    write_series(tmp_path / "lights/quiet.csv", 9, None)
    windows["lights/quiet.csv"] = []
    windows["gone/missing.csv"] = [window_around(points, SPIKE)]  # listed, not in the folder
    (tmp_path / "combined_windows.json").write_text(json.dumps(windows))
    return tmp_path


def test_any_nab_layout_folder_is_scored_per_folder_and_profile(unseen_folder: Path, tmp_path: Path):
    out = tmp_path / "results"
    result = CliRunner().invoke(app, ["detect", "--nab", str(unseen_folder), "--results-out", str(out)])

    assert result.exit_code == 0, result.output
    assert "4 files" in result.output and "skipped: 1 files" in result.output
    totals = dict(
        re.findall(r"^(standard|reward_low_FP_rate|reward_low_FN_rate)\s+(-?\d+\.\d)", result.output, re.M)
    )
    assert set(totals) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}  # NAB's, by default
    assert float(totals["standard"]) > 80  # three clear spikes, found near their windows' middle
    assert re.search(r"^\s+pumps\s+2\s", result.output, re.M)
    assert re.search(r"^\s+lights\s+1\s", result.output, re.M)
    with (out / "general" / "pumps" / "general_station_a.csv").open() as written:
        rows = list(csv.DictReader(written))
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "label"]
    assert len(rows) == ROWS and sum(int(row["label"]) for row in rows) == 61


def test_published_result_files_are_scored_as_written(unseen_folder: Path, tmp_path: Path):
    out = tmp_path / "results"
    first = nab_benchmark(unseen_folder, results_out=out)
    again = nab_benchmark(unseen_folder, scores_from=out / "general")
    assert [round(p.normalised, 3) for p in again.profiles] == [
        round(p.normalised, 3) for p in first.profiles
    ]


def test_a_folder_that_is_not_nab_layout_is_a_clear_error_not_a_traceback(tmp_path: Path):
    result = CliRunner().invoke(app, ["detect", "--nab", str(tmp_path)])
    assert result.exit_code == 2
    assert "combined_windows.json" in result.output
    (tmp_path / "combined_windows.json").write_text(json.dumps({"a/b.csv": []}))
    result = CliRunner().invoke(app, ["detect", "--nab", str(tmp_path)])
    assert result.exit_code == 2
    assert "names no file" in result.output


def test_a_detection_early_in_a_window_scores_about_one_and_a_false_positive_costs_its_profile():
    moments = [START + i * STEP for i in range(200)]
    window = [(moments[100], moments[119])]
    early = [1.0 if i == 100 else 0.0 for i in range(200)]
    result = nab.score_corpus({"f/x.csv": (moments, early)}, {"f/x.csv": window}, STANDARD)
    # NAB's sweeper divides the sigmoid by its value at the left edge: an earliest detection is worth A_TP.
    assert result.raw_score == pytest.approx(1.0)
    assert result.normalised == pytest.approx(100.0)
    for fp_weight in (0.11, 0.22):
        profile = nab.CostProfile("p", 1.0, fp_weight, 1.0)
        rows = nab.scorable_rows(
            "f/x.csv", moments, [1.0 if i in (50, 100) else 0.0 for i in range(200)], window, profile
        )
        assert nab.score_at(rows, 1.0, 1.0).score == pytest.approx(1.0 - fp_weight)


def test_folder_scores_normalise_each_folder_by_its_own_windows():
    moments = [START + i * STEP for i in range(200)]
    window = [(moments[100], moments[119])]
    hit = [1.0 if i == 100 else 0.0 for i in range(200)]
    result = nab.score_corpus(
        {"a/x.csv": (moments, hit), "b/y.csv": (moments, [0.0] * 200)},
        {"a/x.csv": window, "b/y.csv": window},
        STANDARD,
    )
    folders = folder_scores(result)
    assert folders["a"][0] == pytest.approx(100.0)
    assert folders["b"][0] == pytest.approx(0.0)
    assert result.normalised == pytest.approx((folders["a"][0] + folders["b"][0]) / 2)
