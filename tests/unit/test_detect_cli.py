import csv
import io
import json
import math
import random
import re
from datetime import datetime, timedelta

import pytest
from typer.testing import CliRunner

from ioc.cli import app
from ioc.detectors.offline import NAB_FILE_METRICS, detect_stream

START = datetime(2026, 1, 5)  # a Monday
STEP = timedelta(minutes=15)
ROWS = 3 * 7 * 96  # three weeks
SPIKE = ROWS - 200


def series(seed: int, spike: int | None = SPIKE) -> list[tuple[datetime, float]]:
    rng = random.Random(seed)
    points = []
    for i in range(ROWS):
        moment = START + i * STEP
        value = 100 + 40 * math.sin(2 * math.pi * (moment.hour - 8) / 24) + rng.gauss(0, 3)
        points.append((moment, value + (60 if i == spike else 0)))
    return points


def test_detect_scores_every_row_of_a_recorded_series(tmp_path):
    source = tmp_path / "flow.csv"
    lines = ["timestamp,value"]
    for i, (moment, value) in enumerate(series(seed=1)):
        lines.append(f"{moment.isoformat()}+07:00,{'' if i == 500 else f'{value:.2f}'}")
    source.write_text("\n".join(lines) + "\n")
    target = tmp_path / "scores.csv"

    result = CliRunner().invoke(
        app, ["detect", "--input", str(source), "--output", str(target), "--metric", "flow"]
    )

    assert result.exit_code == 0, result.output
    with target.open() as scores:
        rows = list(csv.DictReader(scores))
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "is_anomaly"]
    assert len(rows) == ROWS
    assert [row["timestamp"] for row in rows] == [line.split(",")[0] for line in lines[1:]]
    assert all(0.0 <= float(row["anomaly_score"]) <= 1.0 for row in rows)
    assert rows[500]["value"] == "" and float(rows[500]["anomaly_score"]) == 0.0
    flagged = [i for i, row in enumerate(rows) if row["is_anomaly"] == "1"]
    assert SPIKE in flagged
    assert len(flagged) <= 3  # the spike, and at most a couple of others in three weeks


def test_detect_rejects_an_unknown_metric_and_a_bad_timestamp(tmp_path):
    source = tmp_path / "x.csv"
    source.write_text("timestamp,value\n2026-01-05T00:00:00,1\n")
    result = CliRunner().invoke(app, ["detect", "--input", str(source), "--metric", "vibes"])
    assert result.exit_code == 2
    assert "unknown metric" in result.output
    with pytest.raises(ValueError, match="line 3"):
        detect_stream(io.StringIO("timestamp,value\n2026-01-05T00:00:00,1\nyesterday,2\n"), io.StringIO())


def test_detect_measures_the_nab_score_of_a_corpus(tmp_path):
    # A tiny corpus in NAB's layout: each file has one spike with a window around it.
    windows = {}
    for seed, name in enumerate(NAB_FILE_METRICS):
        direction = -1 if NAB_FILE_METRICS[name] == "speed" else 1
        points = series(seed=seed + 10, spike=None)
        points[SPIKE] = (points[SPIKE][0], points[SPIKE][1] + direction * 60)
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_text("timestamp,value\n" + "".join(f"{t:%Y-%m-%d %H:%M:%S},{v:.2f}\n" for t, v in points))
        first, last = points[SPIKE - 20][0], points[SPIKE + 20][0]
        windows[name] = [[f"{first:%Y-%m-%d %H:%M:%S}.000000", f"{last:%Y-%m-%d %H:%M:%S}.000000"]]
    (tmp_path / "combined_windows.json").write_text(json.dumps(windows))
    costs = {"standard": 0.11, "reward_low_FP_rate": 0.22}
    (tmp_path / "profiles.json").write_text(
        json.dumps(
            {
                name: {"CostMatrix": {"tpWeight": 1, "fnWeight": 1, "fpWeight": fp}}
                for name, fp in costs.items()
            }
        )
    )

    result = CliRunner().invoke(app, ["detect", "--nab", str(tmp_path)])

    assert result.exit_code == 0, result.output
    scores = dict(re.findall(r"^(standard|reward_low_FP_rate)\s+(-?\d+\.\d)", result.output, re.MULTILINE))
    assert set(scores) == set(costs)
    # Every spike found at the middle of its window: each window is worth about 0.87 of a perfect one.
    assert 85.0 < float(scores["standard"]) <= 100.0
