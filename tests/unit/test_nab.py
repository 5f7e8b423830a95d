import json
import math
from datetime import datetime, timedelta

import pytest

from ioc.detectors.nab import (
    NOTHING_DETECTED,
    CostProfile,
    load_profiles,
    load_windows,
    normalised_score,
    probationary_length,
    scaled_sigmoid,
    scorable_rows,
    score_at,
    score_corpus,
    sweep_thresholds,
)

STANDARD = CostProfile("standard", tp_weight=1.0, fp_weight=0.11, fn_weight=1.0)
LOW_FP = CostProfile("reward_low_FP_rate", tp_weight=1.0, fp_weight=0.22, fn_weight=1.0)
LOW_FN = CostProfile("reward_low_FN_rate", tp_weight=1.0, fp_weight=0.11, fn_weight=2.0)
PROFILES = (STANDARD, LOW_FP, LOW_FN)
START = datetime(2015, 9, 1)
ROWS = 100  # probationary: the first 15 rows


def timestamps(rows: int = ROWS) -> list[datetime]:
    return [START + timedelta(minutes=5 * i) for i in range(rows)]


def window(first: int, last: int) -> tuple[datetime, datetime]:
    return START + timedelta(minutes=5 * first), START + timedelta(minutes=5 * last)


def firing_at(*rows: int, size: int = ROWS, score: float = 1.0) -> list[float]:
    return [score if i in rows else 0.0 for i in range(size)]


def nab_sigmoid(x: float) -> float:
    """NAB's definition, written out independently: 2·sigmoid(-5x) - 1."""
    return 2 / (1 + math.exp(5 * x)) - 1


def one_file(scores: list[float], windows, profile: CostProfile = STANDARD):
    return score_corpus({"f.csv": (timestamps(len(scores)), scores)}, {"f.csv": windows}, profile)


def detections_score(scores: list[float], windows, profile: CostProfile = STANDARD) -> float:
    """The file's score when every row scoring 1 is a detection (threshold 1, not the best one)."""
    return score_at(scorable_rows("f.csv", timestamps(len(scores)), scores, windows, profile), 1.0, 1.0).score


def test_the_scaled_sigmoid_matches_nabs_documented_values():
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)  # a window's left edge
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)  # half way in
    assert scaled_sigmoid(0.0) == 0.0  # its right edge
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)  # a width past it
    assert scaled_sigmoid(3.01) == -1.0  # far past any window


def test_the_probationary_period_is_15_percent_at_most_750_rows():
    assert probationary_length(100) == 15
    assert probationary_length(2380) == 357
    assert probationary_length(5000) == 750
    assert probationary_length(10320) == 750


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_the_null_detector_scores_0(profile: CostProfile):
    result = one_file([0.0] * ROWS, [window(40, 49), window(70, 79)], profile)
    assert result.threshold == NOTHING_DETECTED
    assert result.raw_score == -2 * profile.fn_weight
    assert result.normalised == 0.0


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_a_perfect_detector_scores_100(profile: CostProfile):
    result = one_file(firing_at(40, 70), [window(40, 49), window(70, 79)], profile)
    assert result.raw_score == pytest.approx(2 * profile.tp_weight)
    assert result.normalised == pytest.approx(100.0)


def test_a_detector_firing_only_in_the_probationary_period_scores_0():
    result = one_file(firing_at(*range(15)), [window(40, 49)])
    assert result.normalised == 0.0
    assert not scorable_rows("f.csv", timestamps(), firing_at(*range(15)), [window(40, 49)], STANDARD)[
        0
    ].window
    assert len(scorable_rows("f.csv", timestamps(), [0.0] * ROWS, [], STANDARD)) == ROWS - 15


def test_a_detection_inside_a_window_is_weighted_by_its_position():
    # Window rows 40..49 (width 10): row 45 sits at -(49 - 45 + 1) / 10 = -0.5.
    result = one_file(firing_at(45), [window(40, 49)])
    assert result.raw_score == pytest.approx(nab_sigmoid(-0.5) / nab_sigmoid(-1.0))
    # The last row of a window is still worth a little: position -1/10.
    assert one_file(firing_at(49), [window(40, 49)]).raw_score == pytest.approx(
        nab_sigmoid(-0.1) / nab_sigmoid(-1.0)
    )


def test_only_the_earliest_detection_in_a_window_counts():
    result = one_file(firing_at(42, 45, 48), [window(40, 49)])
    assert result.raw_score == pytest.approx(nab_sigmoid(-0.8) / nab_sigmoid(-1.0))
    assert result.files[0].detected_windows == 1


def test_false_positive_costs():
    windows = [window(40, 49)]  # found at its left edge (+1) in every case below
    # Before any window: the full cost.
    assert detections_score(firing_at(20, 40), windows) == pytest.approx(1.0 - 0.11)
    # Just after a window it is cheap: (50 - 49) / (10 - 1) widths past it.
    just_after = detections_score(firing_at(40, 50), windows)
    assert just_after == pytest.approx(1.0 + 0.11 * nab_sigmoid(1 / 9))
    assert 1.0 - 0.11 < just_after < 1.0 - 0.02
    # Two widths past it, nearly the full cost; three and more, exactly.
    assert detections_score(firing_at(40, 67), windows) == pytest.approx(1.0 + 0.11 * nab_sigmoid(18 / 9))
    assert detections_score(firing_at(40, 80), windows) == pytest.approx(1.0 - 0.11)
    # A later window counts from its own end.
    two = [window(40, 49), window(70, 74)]
    assert detections_score(firing_at(40, 70, 76), two) == pytest.approx(2.0 + 0.11 * nab_sigmoid(2 / 4))


def test_every_row_of_a_false_positive_run_costs():
    windows = [window(80, 89)]
    one = one_file(firing_at(30, 80), windows, LOW_FP)
    three = one_file(firing_at(30, 31, 32, 80), windows, LOW_FP)
    assert one.raw_score == pytest.approx(1.0 - 0.22)
    assert three.raw_score == pytest.approx(1.0 - 3 * 0.22)


def test_a_missed_window_costs_the_fn_weight():
    result = one_file(firing_at(45), [window(40, 49), window(70, 79)], LOW_FN)
    assert result.raw_score == pytest.approx(nab_sigmoid(-0.5) / nab_sigmoid(-1.0) - 2.0)
    assert result.normalised == pytest.approx(100 * (result.raw_score + 4) / (2 + 4))


def test_the_threshold_maximises_the_sum_over_files():
    # File a: its window is found only at score 0.3 (+1 instead of -1). File b: rows scoring 0.4 before
    # its window (0.11 each). Lowering the threshold to 0.3 pays while fewer than 2 / 0.11 ≈ 18 rows cost.
    a = firing_at(40, score=0.3)
    windows = {"a.csv": [window(40, 49)], "b.csv": [window(90, 99)]}
    for false_positives, expected_threshold, expected_raw in ((10, 0.3, -1.1), (20, NOTHING_DETECTED, -2.0)):
        b = firing_at(*range(20, 20 + false_positives), score=0.4)
        result = score_corpus({"a.csv": (timestamps(), a), "b.csv": (timestamps(), b)}, windows, STANDARD)
        assert result.threshold == expected_threshold
        assert result.raw_score == pytest.approx(expected_raw)
        assert result.raw_score == pytest.approx(sum(file.score for file in result.files))


def test_the_sweep_lists_every_distinct_score_from_high_to_low():
    rows = scorable_rows("f.csv", timestamps(), firing_at(45, score=0.7), [window(40, 49)], STANDARD)
    sweep = sweep_thresholds(rows, STANDARD.fn_weight)
    assert [point.threshold for point in sweep] == [NOTHING_DETECTED, 0.7, 0.0]
    assert sweep[0].score == -1.0
    assert sweep[1].detected_windows == 1 and sweep[1].false_positives == 0
    assert sweep[2].false_positives == ROWS - 15 - 10


def test_normalisation_and_nab_files(tmp_path):
    assert normalised_score(-10.0, -10.0, 10.0) == 0.0
    assert normalised_score(10.0, -10.0, 10.0) == 100.0
    assert normalised_score(5.0, -10.0, 10.0) == 75.0
    profiles = tmp_path / "profiles.json"
    profiles.write_text(
        json.dumps(
            {
                "standard": {
                    "CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0}
                }
            }
        )
    )
    assert load_profiles(profiles) == {"standard": STANDARD}
    windows = tmp_path / "windows.json"
    windows.write_text(
        json.dumps({"x/f.csv": [["2015-09-01 03:20:00.000000", "2015-09-01 04:05:00.000000"]]})
    )
    assert load_windows(windows) == {"x/f.csv": [window(40, 49)]}
