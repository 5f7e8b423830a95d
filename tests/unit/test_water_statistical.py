"""``water.do_unusual``: each sample's dissolved oxygen scored by the general detector in the stream
(issue 17).

The simulator's lakes, their dawn lows included, through ``SensorDetector``: ordinary weeks raise
nothing; a contamination fires at once, on the first day too; a fall over hours fires before the DO
reaches ``water.do_low``'s 1.5 mg/L; an urban drain (class D) keeps no series; a stuck sensor, a spike
and a late sample teach the series nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ioc.alerts.rules import load_rules
from ioc.city import load_city
from ioc.detectors.feed import series_params
from ioc.detectors.sensor import SensorDetector, new_sensor_state
from ioc.feeds.water.detector import SAMPLE_SECONDS
from ioc.feeds.water.model import WaterQualityObserved
from ioc.feeds.water.simulator import WaterSimulator
from ioc.models.anomaly import Anomaly
from tests.unit.sensor_faults import spiked, stuck

RULES, CITY = load_rules("hanoi"), load_city("hanoi")
RULE = RULES.get("water.do_unusual")
LAKE = "water-ho-truc-bach"  # class B, DO 3.5–7.5 mg/L over a day
DRAIN = "water-to-lich-nga-tu-so"  # class D: nearly anoxic
MONDAY = datetime.fromisoformat("2026-07-06T00:00:00+07:00")
_WEEKS: dict[tuple[int, float], list[WaterQualityObserved]] = {}


def week(seed: int = 3, days: float = 7) -> list[WaterQualityObserved]:
    """Every station's samples (the simulator draws them together), cached per seed and length."""
    if (seed, days) not in _WEEKS:
        simulator = WaterSimulator(CITY, start=MONDAY, duration=timedelta(days=days), seed=seed)
        _WEEKS[seed, days] = list(simulator.events())
    return _WEEKS[seed, days]


def station(sensor_id: str, seed: int = 3, days: float = 7) -> list[WaterQualityObserved]:
    return [e for e in week(seed, days) if e.sensor_id == sensor_id]


def run(
    events: list[WaterQualityObserved], state: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[Anomaly]]:
    detector = SensorDetector(RULES, CITY)
    state = new_sensor_state() if state is None else state
    found: list[Anomaly] = []
    for event in events:
        found += [a for a in detector.observe(state, event) if a.rule == RULE.id]
    return state, found


def oxygen_times(
    events: list[WaterQualityObserved], start: datetime, hours: float, factor: float = 0.12
) -> list[WaterQualityObserved]:
    """DO multiplied by a factor falling linearly from 1 to ``factor`` over ``hours`` from ``start``
    (0: at once, the simulator's contamination), then held there."""

    def times(moment: datetime) -> float:
        if moment < start:
            return 1.0
        done = min(1.0, (moment - start) / timedelta(hours=hours)) if hours else 1.0
        return 1.0 - done * (1.0 - factor)

    return [
        e.model_copy(update={"dissolved_oxygen": round(e.dissolved_oxygen * times(e.date_observed), 2)})
        for e in events
    ]


def test_the_rule_runs_the_general_detector_at_the_sample_on_drops_only():
    params = series_params(RULE, SAMPLE_SECONDS)
    assert params.direction == -1 and not params.weekly
    assert (params.early_views, params.early_warmup, params.early_least_z) == (2, 8, 3.0)
    assert params.warmup == 83  # a day of 15-minute samples (250 five-minute points)
    assert RULE.params["water_classes"] == "A,B,C"  # where it applies, not a detector's parameter


def test_ordinary_weeks_of_every_managed_water_body_raise_nothing():
    managed = [s.id for s in CITY.sensors_of("water") if s.water_class in ("A", "B", "C")]
    for seed in (3, 5, 11):
        for sensor_id in managed:
            _, found = run(station(sensor_id, seed))
            assert found == [], (seed, sensor_id)


def test_a_contamination_fires_on_its_first_sample_and_clears_after_it():
    start, end = MONDAY + timedelta(days=3, hours=8), MONDAY + timedelta(days=3, hours=12)
    events = oxygen_times(station(LAKE), start, 0)
    events = [e if e.date_observed < end else station(LAKE)[i] for i, e in enumerate(events)][: 4 * 24 * 4]
    _, found = run(events)
    assert {a.episode_start for a in found} == {start}  # one episode, reported while it lasts
    opened, closed = found[0], found[-1]
    assert opened.firing and opened.observed_at == start and opened.value >= RULE.trigger.limit
    assert opened.baseline is not None and opened.baseline > 2.0  # the lake's normal for 08:00, mg/L
    assert not closed.firing and [a.firing for a in found].count(False) == 1
    assert end <= closed.observed_at <= end + timedelta(hours=2)


def test_a_rise_is_not_news_and_the_hours_are_the_lakes_own():
    start = MONDAY + timedelta(days=3, hours=8)
    state, found = run(oxygen_times(station(LAKE, days=5), start, 0, factor=2.5))  # supersaturation
    assert found == []
    # Its hour slots (weekdays), on log(1 + mg/L): the afternoon above the dawn.
    slots = state["feed"]["series"][RULE.id][1]["hours"]
    assert slots[5][1] < slots[15][1] < 3.0


def test_a_contamination_on_the_first_morning_fires_from_the_jump_view():
    start = MONDAY + timedelta(hours=9)  # inside the day's start-up
    _, found = run(oxygen_times(station(LAKE, days=1), start, 0))
    assert found and found[0].firing and found[0].episode_start == start


def test_a_fall_over_hours_fires_before_the_hypoxia_limit():
    start = MONDAY + timedelta(days=4, hours=10)
    events = oxygen_times(station(LAKE, days=6), start, 6)
    _, found = run(events)
    hypoxic = next(e.date_observed for e in events if e.dissolved_oxygen < 1.5)
    assert found and found[0].firing
    assert start < found[0].episode_start < hypoxic


def test_an_urban_drain_keeps_no_series():
    state, found = run(oxygen_times(station(DRAIN, days=2), MONDAY + timedelta(days=1, hours=8), 0))
    assert found == [] and "series" not in state["feed"]


def test_a_stuck_sensor_and_a_spike_teach_the_series_nothing():
    events = station(LAKE, days=2)
    since = MONDAY + timedelta(days=1, hours=14)
    clean_state, clean = run(events)
    for altered in (stuck(events, since, hours=3), spiked(events, since, "dissolved_oxygen", 30.0)):
        state, found = run(altered)
        assert found == clean == []
        # The repeats after the third and the suspect spike were never scored.
        assert state["feed"]["series"][RULE.id][1]["n"] < clean_state["feed"]["series"][RULE.id][1]["n"]


def test_a_late_sample_is_not_scored_out_of_time_order():
    events = station(LAKE, days=1)
    state, _ = run([*events, events[40]])
    assert state["feed"]["series"][RULE.id][1]["n"] == len(events)
