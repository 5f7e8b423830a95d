"""The detector stage: conditions with hysteresis and hold time, sensor health, the silence clock, and
the whole rule set against the simulator's ground truth (offline, the same code as the agents)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.sources.simulator import city_simulator
from connectors.sources.simulator.scenarios import KINDS, ScenarioInjector, plan_scenarios
from ioc.alerts.rules import load_rules
from ioc.backtest.run import detect
from ioc.backtest.scoring import TruthScenario, alerts_from_anomalies, score
from ioc.city import load_city
from ioc.detectors import clock, health
from ioc.detectors.condition import Subject, evaluate, threshold_reading
from ioc.recording import RecordedEvent
from ioc.settings import Settings

RULES = load_rules("hanoi")
CITY = load_city("hanoi")
T0 = datetime(2026, 7, 6, 0, 0, tzinfo=UTC)
SUBJECT = Subject(feed="air", entity="air-hoan-kiem", district="hoan-kiem")


def run_condition(rule_id: str, values: list[float], step_minutes: float = 1) -> list[tuple[int, bool]]:
    rule = RULES.get(rule_id)
    state: dict = {}
    reported = []
    for i, value in enumerate(values):
        at = T0 + timedelta(minutes=i * step_minutes)
        anomaly = evaluate(state, rule, RULES, SUBJECT, threshold_reading(rule, at, value))
        if anomaly is not None:
            reported.append((i, anomaly.firing))
    return reported


def test_a_value_hovering_at_the_threshold_is_one_episode():
    # air.aqi_band: trigger above 150, clear below 140, hold 30 minutes.
    hovering = [100] * 5 + [151, 149, 152, 148, 151, 149] * 10 + [100] * 40
    reported = run_condition("air.aqi_band", hovering)
    opened = [i for i, firing in reported if firing and i == 5]
    assert opened == [5]
    closes = [i for i, firing in reported if not firing]
    assert closes == [65 + 30], "resolves once, after 30 minutes below the clear threshold"


def test_a_short_dip_below_the_clear_threshold_does_not_end_the_episode():
    values = [160] * 10 + [120] * 20 + [160] * 10 + [120] * 31
    reported = run_condition("air.aqi_band", values)
    assert [firing for _, firing in reported].count(False) == 1
    assert [firing for _, firing in reported].count(True) >= 1
    assert reported[-1] == (70, False)


def test_an_older_reading_does_not_move_a_condition_backwards():
    rule = RULES.get("air.aqi_band")
    state: dict = {}
    evaluate(state, rule, RULES, SUBJECT, threshold_reading(rule, T0 + timedelta(minutes=5), 170))
    assert evaluate(state, rule, RULES, SUBJECT, threshold_reading(rule, T0, 100)) is None
    assert state["since"] == (T0 + timedelta(minutes=5)).timestamp()


def test_a_spike_that_comes_back_is_confirmed_and_a_level_shift_is_not():
    state = health.new_health()
    at = T0.timestamp()
    for i in range(60):
        assert health.spike(state, at + 60 * i, {"pm25": 40.0 + i % 3}, factor=3, back=2) is None
    at += 60 * 60
    assert health.spike(state, at, {"pm25": 1800.0}, factor=3, back=2) is None  # a candidate
    found = health.spike(state, at + 60, {"pm25": 41.0}, factor=3, back=2)
    assert found is not None and found.readings == 1 and found.began == at and found.ratio > 40

    at += 120
    for i in range(6):  # an episode: four times higher, and it stays
        assert health.spike(state, at + 60 * i, {"pm25": 200.0}, factor=3, back=2) is None


def test_a_sensor_repeating_itself_is_stuck_after_three_readings():
    state = health.new_health()
    at = T0.timestamp()
    minutes = [
        health.stuck_minutes(state, at + 900 * i, {"ph": 7.2, "dissolved_oxygen": 5.1}) for i in range(5)
    ]
    assert minutes == [0.0, 0.0, 30.0, 45.0, 60.0]
    assert health.stuck_minutes(state, at + 900 * 5, {"ph": 7.3, "dissolved_oxygen": 5.1}) == 0.0


def test_silence_is_counted_in_the_sensors_own_intervals():
    state = health.new_health()
    for i in range(4):
        health.note_reading(state, T0.timestamp() + 300 * i)
    assert health.interval(state) == 300
    assert health.silent_intervals(state, T0.timestamp() + 900 + 1200) == pytest.approx(4.0)


def test_the_clock_ticks_once_a_minute_of_event_time():
    state = clock.new_clock()
    ticks = [clock.note(state, f"s{i % 3}", T0 + timedelta(seconds=20 * i)) for i in range(10)]
    assert [t for t in ticks if t is not None] == [T0 + timedelta(minutes=1), T0 + timedelta(minutes=2),
                                                   T0 + timedelta(minutes=3)]  # fmt: skip
    assert state["sensors"] == ["s0", "s1", "s2"]


def test_the_rules_find_the_simulated_scenarios(tmp_path):
    """Three simulated days (July: no natural bad-air episodes, see docs/architecture.md) with every kind
    of scenario injected, run through validation, detectors and conditions: the issue's targets."""
    start, duration, seed = datetime.fromisoformat("2026-07-06T00:00:00+07:00"), timedelta(days=3), 11
    key, key_id = b"test-key", "k1"
    source = city_simulator(CITY, ["air", "traffic", "water", "transit"], start=start, duration=duration,
                            seed=seed, card_key=key, card_key_id=key_id)  # fmt: skip
    scenarios = plan_scenarios(CITY, KINDS, start=start, duration=duration, seed=seed)
    injected = ScenarioInjector(source, scenarios, CITY, seed=seed, card_key=key, card_key_id=key_id)
    outcome = detect((RecordedEvent.of(e) for e in injected.events()), RULES, CITY, Settings())
    alerts, reopened = alerts_from_anomalies(outcome.anomalies)
    truth = [TruthScenario.model_validate_json(s.to_json()) for s in scenarios]
    result = score(alerts, truth, RULES, reopened)
    summary = result.summary()
    assert result.recall >= 0.95, summary
    assert result.precision >= 0.90, summary
    assert result.median_delay_windows is not None and result.median_delay_windows <= 2, summary
    assert result.duplicates == 0, summary
