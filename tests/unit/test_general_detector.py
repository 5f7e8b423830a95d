"""The general online detector (ioc/detectors/general.py): pure, fast properties."""

import json
import math
import random
from datetime import datetime, timedelta

import pytest

from ioc.detectors.general import GeneralParams, new_state, params_for_metric, score_value

START = datetime(2026, 1, 5)
STEP = timedelta(minutes=5)
ROWS = 3000  # ten days of 5-minute points
WARMUP = GeneralParams().warmup


def daily(seed: int, rows: int = ROWS, noise: float = 2.0) -> list[float]:
    rng = random.Random(seed)
    return [50 + 20 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, noise) for i in range(rows)]


def moments(rows: int = ROWS) -> list[datetime]:
    return [START + i * STEP for i in range(rows)]


def scores_of(values: list[float], params: GeneralParams | None = None) -> list[float]:
    state = new_state(params)
    return [
        score_value(state, value, moment) for value, moment in zip(values, moments(len(values)), strict=True)
    ]


def alarms(scores: list[float], level: float = 0.5) -> list[int]:
    return [i for i, score in enumerate(scores) if score >= level]


def test_scores_are_in_0_1_and_deterministic():
    values = daily(seed=1)
    values[2000] += 100
    first, second = scores_of(values), scores_of(values)
    assert first == second
    assert all(0.0 <= score <= 1.0 for score in first)
    assert all(score == 0.0 for score in first[:WARMUP])  # start-up: learning only


def test_state_round_trips_through_json_and_continues_identically():
    values = daily(seed=2)
    values[2500] -= 80
    whole = new_state()
    expected = [score_value(whole, value, moment) for value, moment in zip(values, moments(), strict=True)]
    state = new_state()
    for value, moment in zip(values[:1500], moments()[:1500], strict=True):
        score_value(state, value, moment)
    restored = json.loads(json.dumps(state))
    assert restored == state
    continued = [
        score_value(restored, value, moment)
        for value, moment in zip(values[1500:], moments()[1500:], strict=True)
    ]
    assert continued == expected[1500:]
    assert len(json.dumps(restored)) < 4000  # small and bounded: it does not grow with the points seen


def test_a_clear_spike_is_flagged_and_the_episode_reported_once():
    values = daily(seed=3)
    values[2000] += 60
    scores = scores_of(values)
    assert scores[2000] >= 0.5
    assert alarms(scores[1500:]) == [500]


def test_a_level_shift_is_flagged_soon_after_it_starts():
    values = daily(seed=4)
    values = values[:2000] + [value + 40 for value in values[2000:]]
    found = [i for i in alarms(scores_of(values)) if i >= 2000]
    assert found and found[0] <= 2005
    assert not [i for i in alarms(scores_of(values)) if 1000 <= i < 2000]


def test_a_constant_series_and_a_periodic_one_raise_no_alarm_after_start_up():
    assert alarms(scores_of([7.0] * ROWS)) == []
    clean_sine = [50 + 20 * math.sin(2 * math.pi * i / 288) for i in range(ROWS)]
    assert alarms(scores_of(clean_sine)[600:]) == []
    assert alarms(scores_of(daily(seed=5))[1000:]) == []


def test_the_metric_sets_the_direction_and_an_unknown_metric_is_refused():
    values = daily(seed=6)
    values[2000] -= 60
    assert scores_of(values, params_for_metric("speed"))[2000] >= 0.5  # a drop of speed matters
    assert scores_of(values, params_for_metric("travel_time"))[2000] < 0.5  # a shorter trip does not
    assert params_for_metric(None) == GeneralParams()
    with pytest.raises(ValueError, match="unknown metric"):
        params_for_metric("vibes")


def test_a_value_that_is_not_a_number_is_refused():
    with pytest.raises(ValueError):
        score_value(new_state(), math.nan)


def test_a_level_shift_far_smaller_than_earlier_spikes_is_still_flagged():
    # Nightly spikes have taught the plain slow view a record 6 times the shift's: the shift is no news
    # to it. Held over 5 points (their least), a lasting departure is measured against lasting ones.
    rng = random.Random(7)
    values = [17 + rng.gauss(0, 0.5) for _ in range(ROWS)]
    for spike in range(500, 1600, 100):
        values[spike] += 60
    values = values[:2000] + [value + 10 for value in values[2000:]]
    slow, averaged_slow, held_slow = 1 << 0, 1 << 5, 1 << 10
    plain = GeneralParams(views=slow | averaged_slow)
    held = GeneralParams(views=slow | averaged_slow | held_slow)
    assert not [i for i in alarms(scores_of(values, plain)) if 2000 <= i < 2100]
    assert [i for i in alarms(scores_of(values, held)) if 2000 <= i < 2010]
    assert [i for i in alarms(scores_of(values)) if 2000 <= i < 2010]  # and so does the whole detector
