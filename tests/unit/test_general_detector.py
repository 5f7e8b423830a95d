"""The general online detector (ioc/detectors/general.py): pure, fast properties."""

import json
import math
import random
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from ioc.detectors.general import (
    HOUR_VIEWS,
    GeneralParams,
    expected,
    for_cadence,
    new_series,
    new_state,
    params_for_metric,
    score_value,
    score_with,
)

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


# --- per cadence: the configuration the stream runs on hourly means ---------------------------------


def hourly(seed: int, hours: int = 7 * 24) -> tuple[list[float], list[datetime]]:
    """A week of hourly means with a daily rhythm and weather-like persistence (as a city's PM2.5)."""
    rng = random.Random(seed)
    values, level = [], 0.0
    for hour in range(hours):
        level = 0.7 * level + rng.gauss(0, 0.1)
        values.append(math.log1p(25 * (1 + 0.3 * math.cos(2 * math.pi * (hour - 6) / 24)) * math.exp(level)))
    return values, [START + timedelta(hours=h, minutes=30) for h in range(hours)]


def test_the_reference_cadence_and_no_cadence_give_nab_s_defaults():
    for metric in (None, "speed", "pm25"):
        assert params_for_metric(metric, cadence_seconds=300) == params_for_metric(metric)
    assert params_for_metric(None) == GeneralParams()
    with pytest.raises(ValueError, match="cadence_seconds"):
        for_cadence(GeneralParams(), 0)


def test_an_hourly_series_gets_its_start_up_and_hour_slots_in_days_not_points():
    five_minutes, hourly_params = GeneralParams(), params_for_metric("pm25", cadence_seconds=3600)
    assert five_minutes.warmup == 250 and hourly_params.warmup == 48  # 250 hourly points: ten days
    assert hourly_params.hour_min_samples == 4  # a slot gets one mean a day: four days
    assert hourly_params.refractory_steps == round(200 / 12) and hourly_params.held_steps == 1
    assert hourly_params.cusum_drift == 2.0 and hourly_params.least_record == 1.0
    assert hourly_params.direction == 1 and hourly_params.slow_alpha == five_minutes.slow_alpha
    quarter = params_for_metric(None, cadence_seconds=900)
    assert quarter.warmup == 83 and quarter.hour_min_samples == 4 and quarter.cusum_drift == 1.0


def test_an_hourly_week_alarms_on_a_polluted_hour_only_with_the_hourly_configuration():
    values, at = hourly(seed=3)
    values[100] += 2.0  # a tripling and more, on the fifth day
    scores = {}
    for name, params in (("5-minute", params_for_metric("pm25")),
                         ("hourly", params_for_metric("pm25", cadence_seconds=3600))):  # fmt: skip
        series = new_series()
        scores[name] = [score_with(series, params, v, m) for v, m in zip(values, at, strict=True)]
    assert max(scores["5-minute"]) == 0.0  # 250 points of start-up: the week never scores
    assert alarms(scores["hourly"]) == [100]


def test_a_series_without_its_parameters_scores_as_a_state_with_them():
    values, at = hourly(seed=4)
    values[120] += 1.5
    params = params_for_metric("pm25", cadence_seconds=3600)
    state, series = new_state(params), new_series()
    with_state = [score_value(state, v, m) for v, m in zip(values, at, strict=True)]
    with_series = [score_with(series, params, v, m) for v, m in zip(values, at, strict=True)]
    assert with_state == with_series
    assert {k: v for k, v in state.items() if k not in ("version", "params")} == series
    assert json.loads(json.dumps(series)) == series


def test_undamped_scores_go_on_through_an_episode_the_damped_ones_report_once():
    values, at = hourly(seed=5)
    for hour in range(110, 116):
        values[hour] += 2.0  # six polluted hours
    params = params_for_metric("pm25", cadence_seconds=3600)
    damped_series, raw_series = new_series(), new_series()
    damped = [score_with(damped_series, params, v, m) for v, m in zip(values, at, strict=True)]
    raw = [score_with(raw_series, params, v, m, damped=False) for v, m in zip(values, at, strict=True)]
    assert damped_series == raw_series  # the damping changes what is returned, not what is learned
    assert alarms(damped) == [110] and len(alarms(raw)) > 1
    assert all(d <= r for d, r in zip(damped, raw, strict=True))


def test_the_expected_value_is_the_hour_slot_once_ready_else_the_slow_level():
    values, at = hourly(seed=6)
    params = params_for_metric("pm25", cadence_seconds=3600)
    series = new_series()
    assert expected(series, params, at[0]) is None
    for value, moment in zip(values[:30], at[:30], strict=True):
        score_with(series, params, value, moment)
    assert expected(series, params, at[30]) == series["slow_level"]  # one day: no slot is ready
    for value, moment in zip(values[30:], at[30:], strict=True):
        score_with(series, params, value, moment)
    slot = series["hours"][at[0].hour]  # a Monday: weekday slots have had five days
    assert expected(series, params, at[0]) == slot[1]


def test_a_young_hour_slot_of_human_activity_needs_a_z_of_5_to_report():
    """A flat, noisy series (about 0, a standard deviation of 1) whose hour slots are ready but have
    never been surprised: a reading 4.5 deviations off is news to the hour view of a series of unknown
    kind (its least record, 0.1), not to that of a series of human activity, which starts from the z
    views' least record (2: a z of 5) as its slow and jump views do. The hour views alone score here
    (the shift view's CUSUM would take such a point as news too)."""
    rng = random.Random(3)
    hour_views_only = sum(1 << view for view in HOUR_VIEWS)
    for metric, reports in ((None, True), ("occupancy", False)):
        state = new_state(replace(params_for_metric(metric), views=hour_views_only))
        values = [rng.gauss(0, 1) for _ in range(WARMUP + 40)]
        for value, moment in zip(values, moments(WARMUP + 40), strict=True):
            score_value(state, value, moment)
        assert [state["records"][view] for view in HOUR_VIEWS] == [0.0] * 3  # its hours never surprised
        odd = moments(WARMUP + 41)[-1]
        assert (score_value(state, 4.5, odd) >= 0.5) is reports, metric
    assert params_for_metric("speed").hour_least_record == params_for_metric("speed").least_z_record
    assert params_for_metric("pm25").hour_least_record == 0.0 == GeneralParams().hour_least_record
