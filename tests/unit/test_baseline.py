import json
import math
import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from ioc.detectors.baseline import (
    METRIC_DIRECTIONS,
    BaselineParams,
    PointScore,
    expected,
    new_state,
    params_for_metric,
    score_point,
)
from ioc.detectors.offline import DEFAULT_THRESHOLD

START = datetime(2026, 1, 5)  # a Monday
NOISE = 3.0
WARM = START + timedelta(weeks=2)
SPIKE_AT = datetime(2026, 2, 3, 10)  # Tuesday of week 5
SHIFT_FROM = datetime(2026, 2, 5, 14)  # Thursday of week 5
SHIFT = 15.0  # 5 noise sd, about 3 spreads: no single point is a spike, the run of them is a shift


def seasonal(moment: datetime) -> float:
    """A daily cycle, lower at weekends."""
    hour = moment.hour + moment.minute / 60
    return 100 + 40 * math.sin(2 * math.pi * (hour - 8) / 24) - (25 if moment.weekday() >= 5 else 0)


def normal_series(seed: int, weeks: int = 6) -> list[tuple[datetime, float]]:
    """Readings every 15 min ± 5 min (irregular), Gaussian noise around the seasonal pattern."""
    rng = random.Random(seed)
    points = []
    moment = START
    while moment < START + timedelta(weeks=weeks):
        points.append((moment, seasonal(moment) + rng.gauss(0, NOISE)))
        moment += timedelta(minutes=15 + rng.uniform(-5, 5))
    return points


def with_incidents(points: list[tuple[datetime, float]]) -> tuple[list[tuple[datetime, float]], int]:
    """A +40 spike at SPIKE_AT and a +SHIFT level shift for two days from SHIFT_FROM."""
    spike = min(range(len(points)), key=lambda i: abs(points[i][0] - SPIKE_AT))
    out = []
    for i, (moment, value) in enumerate(points):
        if i == spike:
            value += 40
        if SHIFT_FROM <= moment < SHIFT_FROM + timedelta(days=2):
            value += SHIFT
        out.append((moment, value))
    return out, spike


def run(points, params: BaselineParams | None = None) -> list[PointScore]:
    state = new_state(params)
    return [score_point(state, moment, value) for moment, value in points]


def test_a_spike_is_detected_and_nothing_in_the_day_before_it():
    points, spike = with_incidents(normal_series(seed=1))
    results = run(points)
    assert results[spike].score >= DEFAULT_THRESHOLD
    assert results[spike].direction == 1
    assert results[spike].expected == pytest.approx(seasonal(points[spike][0]), abs=4 * NOISE)
    spike_time = points[spike][0]
    day_before = [
        r.score
        for (t, _), r in zip(points[:spike], results[:spike], strict=True)
        if t >= spike_time - timedelta(days=1)
    ]
    assert max(day_before) < DEFAULT_THRESHOLD


def first_alarm_after(points, results, moment: datetime) -> tuple[datetime, float, PointScore] | None:
    return next(
        (
            (t, v, r)
            for (t, v), r in zip(points, results, strict=True)
            if t >= moment and r.score >= DEFAULT_THRESHOLD
        ),
        None,
    )


def test_a_level_shift_is_detected_by_the_cusum_within_hours():
    points, _ = with_incidents(normal_series(seed=2))
    results = run(points)
    detected = first_alarm_after(points, results, SHIFT_FROM)
    assert detected is not None
    moment, value, result = detected
    assert moment - SHIFT_FROM < timedelta(hours=6)
    assert result.direction == 1
    # No single point of the shift is a spike: the accumulated evidence (CUSUM) raised the score.
    assert (value - result.expected) / result.spread < BaselineParams().spike_z
    before = [
        r.score
        for (t, _), r in zip(points, results, strict=True)
        if SHIFT_FROM - timedelta(days=1) <= t < SHIFT_FROM
    ]
    assert max(before) < DEFAULT_THRESHOLD


def test_without_the_cusum_the_shift_is_noticed_later_or_not_at_all():
    points, _ = with_incidents(normal_series(seed=2))
    with_cusum = first_alarm_after(points, run(points), SHIFT_FROM)
    without = first_alarm_after(points, run(points, BaselineParams(cusum_limit=math.inf)), SHIFT_FROM)
    assert with_cusum is not None
    assert without is None or without[0] > with_cusum[0] + timedelta(hours=1)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_a_normal_series_scores_low(seed: int):
    points = normal_series(seed)
    results = run(points)
    assert all(0.0 <= r.score < 1.0 for r in results)
    learned = sorted(r.score for (t, _), r in zip(points, results, strict=True) if t >= WARM)
    assert learned[-1] < DEFAULT_THRESHOLD
    assert learned[int(0.99 * len(learned))] < 0.4


def test_the_direction_decides_which_departures_count():
    points, spike = with_incidents(normal_series(seed=6))
    dip = [(t, v - 80 if i == spike else v) for i, (t, v) in enumerate(normal_series(seed=6))]
    assert run(dip, params_for_metric("flow"))[spike].score >= DEFAULT_THRESHOLD
    assert run(dip, params_for_metric("speed"))[spike].score >= DEFAULT_THRESHOLD
    assert run(dip, params_for_metric("speed"))[spike].direction == -1
    assert run(dip, params_for_metric("pm25"))[spike].score < 0.1
    assert run(points, params_for_metric("speed"))[spike].score < 0.1


def test_an_alarm_damps_the_rest_of_its_episode():
    points = normal_series(seed=7)
    spike = min(range(len(points)), key=lambda i: abs(points[i][0] - SPIKE_AT))
    burst = [(t, v + 40 if spike <= i < spike + 3 else v) for i, (t, v) in enumerate(points)]
    results = run(burst)
    assert results[spike].score >= DEFAULT_THRESHOLD
    for later in results[spike + 1 : spike + 3]:
        assert later.raw_score >= DEFAULT_THRESHOLD  # still far from normal …
        assert later.score < DEFAULT_THRESHOLD  # … but no longer news


def test_state_survives_a_json_round_trip_mid_series():
    points, _ = with_incidents(normal_series(seed=8))
    straight = run(points)
    half = len(points) // 2 + 17
    state = new_state()
    first = [score_point(state, t, v) for t, v in points[:half]]
    reloaded = json.loads(json.dumps(state))
    rest = [score_point(reloaded, t, v) for t, v in points[half:]]
    assert first + rest == straight
    assert max(r.score for r in rest) >= DEFAULT_THRESHOLD  # the comparison covers the incidents


def test_expected_is_the_learned_normal_for_the_weekday_and_hour_and_does_not_learn():
    state = new_state()
    assert expected(state, START) is None  # nothing learned yet
    for moment, value in normal_series(seed=9, weeks=4):
        score_point(state, moment, value)
    before = json.dumps(state)
    monday_9 = START + timedelta(weeks=4, hours=9)
    saturday_9 = START + timedelta(weeks=4, days=5, hours=9)
    assert expected(state, monday_9) == pytest.approx(seasonal(monday_9), abs=2 * NOISE)
    assert expected(state, saturday_9) == pytest.approx(seasonal(saturday_9), abs=2 * NOISE)
    assert expected(state, monday_9) - expected(state, saturday_9) > 15  # weekday and weekend differ
    assert json.dumps(state) == before


def test_local_time_is_read_from_the_offset():
    naive = normal_series(seed=10, weeks=3)
    hanoi = timezone(timedelta(hours=7))
    aware = [(t.replace(tzinfo=hanoi), v) for t, v in naive]
    assert run(aware) == run(naive)


def test_parameters_per_metric_and_bad_input():
    assert params_for_metric("speed").direction == -1
    assert params_for_metric("travel_time").direction == 1
    assert params_for_metric(None) == BaselineParams()
    assert replace(params_for_metric("pm25"), direction=0) == BaselineParams()  # only the direction differs
    assert set(METRIC_DIRECTIONS.values()) <= {-1, 0, 1}
    with pytest.raises(ValueError, match="unknown metric"):
        params_for_metric("vibes")
    with pytest.raises(ValueError, match="direction"):
        BaselineParams(direction=2)
    with pytest.raises(ValueError, match="finite"):
        score_point(new_state(), START, math.nan)
