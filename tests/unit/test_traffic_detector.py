"""``traffic.incident``: each reading's speed scored by the general detector in the stream (issue 17).

A simulated hotspot's week, its rush hours and Friday evening included, through ``SensorDetector``: an
incident fires from the first hour and after a week; rush hours, a stuck sensor and a spike do not; the
hour slots are the hours of the week; a state of version 2 (the median of recent speeds) carries on.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from ioc.alerts.rules import load_rules
from ioc.city import load_city
from ioc.detectors import general
from ioc.detectors.feed import series_params
from ioc.detectors.sensor import STATE_VERSION, SensorDetector, new_sensor_state, upgrade_sensor_state
from ioc.feeds.traffic.model import TrafficFlowObserved
from ioc.feeds.traffic.simulator import TrafficSimulator
from ioc.models.anomaly import Anomaly
from tests.unit.sensor_faults import spiked, stuck

RULES, CITY = load_rules("hanoi"), load_city("hanoi")
RULE = RULES.get("traffic.incident")
HOTSPOT = "traffic-nga-tu-so"  # saturated at its peaks: the deepest rush hours of the city
MONDAY = datetime.fromisoformat("2026-07-06T00:00:00+07:00")


def week(seed: int = 3, days: float = 7, start: datetime = MONDAY) -> list[TrafficFlowObserved]:
    simulator = TrafficSimulator(CITY, start=start, duration=timedelta(days=days), seed=seed)
    return [event for event in simulator.events() if event.sensor_id == HOTSPOT]


def run(
    events: list[TrafficFlowObserved], state: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[Anomaly]]:
    detector = SensorDetector(RULES, CITY)
    state = new_sensor_state() if state is None else state
    found: list[Anomaly] = []
    for event in events:
        found += [a for a in detector.observe(state, event) if a.rule == RULE.id]
    return state, found


def jammed(events: list[TrafficFlowObserved], start: datetime, minutes: int) -> list[TrafficFlowObserved]:
    """The simulator's incident: speed cut to 15 % for ``minutes`` from ``start``."""
    end = start + timedelta(minutes=minutes)
    return [
        e.model_copy(update={"average_vehicle_speed": round(e.average_vehicle_speed * 0.15, 1)})
        if start <= e.date_observed < end
        else e
        for e in events
    ]


def test_the_rule_runs_the_general_detector_at_the_counting_interval_with_a_weekly_rhythm():
    params = series_params(RULE, 300)
    assert params.direction == -1 and params.weekly and params.warmup == general.GeneralParams().warmup
    assert (params.early_views, params.early_warmup) == (2, 12)  # the jump view, from the first hour
    assert series_params(RULE, 900).warmup < params.warmup  # a day is a day at any interval


def test_a_week_of_rush_hours_raises_nothing():
    for seed in (3, 5, 11):
        _, found = run(week(seed))
        assert found == [], seed


def test_an_incident_fires_at_once_on_the_first_morning_and_clears_when_it_ends():
    """Seven in the morning of the detector's first day: the jump view alone, two hours after the
    start-up began, tells a cut to 15 % from the rush hour building up."""
    start = MONDAY + timedelta(hours=7)
    _, found = run(jammed(week(days=1), start, 30))
    assert {a.episode_start for a in found} == {start}  # one episode, reported while it lasts
    opened, closed = found[0], found[-1]
    assert opened.firing and opened.observed_at == start and opened.value >= RULE.trigger.limit
    assert not closed.firing and [a.firing for a in found].count(False) == 1
    assert start + timedelta(minutes=30) <= closed.observed_at <= start + timedelta(minutes=60)


def test_an_incident_in_the_second_week_fires_against_that_hour_of_the_week():
    events = week(days=9)
    friday_evening = MONDAY + timedelta(days=7 + 4, hours=17, minutes=30)  # the worst hour of the week
    _, found = run(jammed(week(days=12), friday_evening, 20))
    firing = [a for a in found if a.firing]
    assert {a.episode_start for a in found} == {friday_evening}
    # The normal it reports is that hour of the week's (a Friday evening: the slowest), not a free flow.
    state, _ = run(events)
    slots = state["feed"]["series"][RULE.id][1]["hours"]
    assert len(slots) == 7 * general.HOURS
    friday, monday = slots[4 * general.HOURS + 17], slots[0 * general.HOURS + 3]
    assert friday[1] < monday[1]  # log speed: Friday at 17:00 slower than Monday at 03:00
    assert firing[0].baseline is not None and firing[0].baseline < 0.8 * CITY.sensor(HOTSPOT).free_flow_speed


def test_a_stuck_sensor_and_a_spike_teach_the_series_nothing():
    events = week(days=2)
    since = MONDAY + timedelta(days=1, hours=14)
    clean_state, clean = run(events)
    for altered in (stuck(events, since, hours=3), spiked(events, since, "average_vehicle_speed", 190.0)):
        state, found = run(altered)
        assert found == clean == []
        # The repeats after the third and the suspect spike were never scored.
        assert state["feed"]["series"][RULE.id][1]["n"] < clean_state["feed"]["series"][RULE.id][1]["n"]


def test_a_late_reading_is_not_scored_out_of_time_order():
    events = week(days=1)
    late = events[100]
    state, _ = run([*events, late])
    assert state["feed"]["series"][RULE.id][1]["n"] == len(events)


def test_a_state_of_version_2_is_upgraded_and_its_series_starts_afresh():
    events = week(days=1)
    state, _ = run(events[:100])
    state["feed"].pop("series")
    feed = {**state["feed"], "normal_speed": [40.0] * 12}  # what version 2 kept: the last speeds
    version_2 = json.loads(json.dumps({**state, "v": 2, "feed": feed}))
    upgraded = upgrade_sensor_state(version_2)
    assert upgraded["v"] == STATE_VERSION and "normal_speed" not in upgraded["feed"]
    start = MONDAY + timedelta(hours=20)
    state, found = run(jammed(events[100:], start, 30), upgraded)
    assert [a.firing for a in found][:1] == [True] and found[0].episode_start == start
