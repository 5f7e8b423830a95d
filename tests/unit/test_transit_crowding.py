"""``transit.crowding``: each completed 15-minute bin's taps against the station's normal for that
quarter of the week, scored by the general detector in the stream (issue 17).

A simulated station's weeks (line 3 alone, for speed) through ``SensorDetector``: ordinary weeks raise
nothing; a surge (the simulator's: 25 taps a minute, ten times the usual) fires on the first day and in
the second week; ``transit.gate_offline`` is unaffected; a state kept before the series carries on.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from ioc.alerts.rules import load_rules
from ioc.city import load_city
from ioc.detectors.sensor import SensorDetector, new_sensor_state, upgrade_sensor_state
from ioc.feeds.transit.model import FareTap
from ioc.feeds.transit.simulator import TransitSimulator
from ioc.models.anomaly import Anomaly

RULES, CITY = load_rules("hanoi"), load_city("hanoi")
RULE = RULES.get("transit.crowding")
STATION = "metro-3-dh-quoc-gia"
LINE = CITY.model_copy(update={"lines": [line for line in CITY.lines if line.id == "3"]})
MONDAY = datetime.fromisoformat("2026-07-06T00:00:00+07:00")
SURGE_TAPS_PER_MINUTE = 25  # connectors/sources/simulator/scenarios.py


@lru_cache(maxsize=8)
def _week(seed: int, days: float) -> tuple[FareTap, ...]:
    simulator = TransitSimulator(
        LINE, start=MONDAY, duration=timedelta(days=days), seed=seed, card_key=b"k" * 32, card_key_id="test"
    )
    return tuple(event for event in simulator.events() if event.sensor_id == STATION)


def week(seed: int = 3, days: float = 7) -> list[FareTap]:
    return list(_week(seed, days))


def run(
    events: list[FareTap], state: dict[str, Any] | None = None, rule: str = RULE.id
) -> tuple[dict[str, Any], list[Anomaly]]:
    detector = SensorDetector(RULES, CITY)
    state = new_sensor_state() if state is None else state
    found: list[Anomaly] = []
    for event in events:
        found += [a for a in detector.observe(state, event) if a.rule == rule]
    return state, found


def surged(events: list[FareTap], start: datetime, minutes: int) -> list[FareTap]:
    """The simulator's surge: ``SURGE_TAPS_PER_MINUTE`` more taps a minute for ``minutes`` from
    ``start``, in time order with the station's own."""
    template = events[0]
    extra = [
        template.model_copy(
            update={
                "date_observed": start + timedelta(minutes=m, seconds=s * 60 // SURGE_TAPS_PER_MINUTE),
                "event_id": f"surge-{m}-{s}",
            }  # fmt: skip
        )
        for m in range(minutes)
        for s in range(SURGE_TAPS_PER_MINUTE)
    ]
    return sorted([*events, *extra], key=lambda e: e.date_observed)


def firing_starts(found: list[Anomaly]) -> set[datetime]:
    return {a.episode_start for a in found if a.firing}


def test_the_rule_scores_rises_with_the_slow_and_jump_views_from_the_first_hours():
    detector = SensorDetector(RULES, CITY)
    params = detector._feeds["transit"]._params
    assert params.direction == 1 and params.views == 3  # slow and jump
    assert params.early_views == 3 and params.early_warmup == 8  # two hours of bins
    assert params.warmup < 250  # a day of bins at 15 minutes


def test_ordinary_weeks_raise_nothing():
    for seed in (3, 11):
        state, found = run(week(seed))
        assert found == [], seed
        series = state["feed"]["series"][RULE.id][1]
        assert series["n"] > 7 * 60  # a week of bins learned (not those before the first normal)
        assert len(json.dumps(state)) < 20_000  # bounded


def test_a_surge_on_the_first_day_fires():
    """Half past one on the station's first day (seed 7's planned surge): the station's normal is
    hours old, the series' start-up not over; the jump view with its margin tells the surge."""
    start = MONDAY + timedelta(hours=13, minutes=30)
    _, found = run(surged(week(days=1), start, 90))
    starts = firing_starts(found)
    assert len(starts) == 1
    (opened,) = starts
    assert start <= opened <= start + timedelta(minutes=30)
    first = next(a for a in found if a.firing)
    assert first.value >= RULE.trigger.limit and first.baseline is not None and first.baseline < 100


def test_a_surge_at_the_first_morning_peak_fires():
    """Half past eight on the first day (seed 11's): the morning peak building up is no surge."""
    start = MONDAY + timedelta(hours=8, minutes=30)
    _, found = run(surged(week(seed=11, days=1), start, 60))
    assert len(firing_starts(found)) == 1 and min(firing_starts(found)) <= start + timedelta(minutes=30)


def test_a_surge_in_the_second_week_fires_against_that_quarter_of_the_week():
    start = MONDAY + timedelta(days=7 + 4, hours=17, minutes=45)  # Friday's evening peak
    state, found = run(surged(week(days=12), start, 90))
    starts = firing_starts(found)
    assert len(starts) == 1 and start <= min(starts) <= start + timedelta(minutes=30)
    # The normal it reports is the station's for that quarter, not the surge's.
    first = next(a for a in found if a.firing)
    assert first.baseline is not None and first.baseline < 5 * SURGE_TAPS_PER_MINUTE
    # A busy partial bin opens the episode before its bin completes (scored on a copy of the series).
    assert first.observed_at < start + timedelta(minutes=15)


def test_gate_offline_is_unaffected():
    """Gates silent for an hour at noon: transit.gate_offline fires as it did, crowding does not."""
    events = week(days=2)
    quiet_from = MONDAY + timedelta(days=1, hours=12)
    quiet = [e for e in events if not quiet_from <= e.date_observed < quiet_from + timedelta(hours=1)]
    detector = SensorDetector(RULES, CITY)
    state = new_sensor_state()
    found: list[Anomaly] = []
    for event in quiet:
        if quiet_from <= event.date_observed:
            break
        found += detector.observe(state, event)
    scored_before = state["feed"]["series"][RULE.id][1]["n"]
    now = quiet_from
    while now < quiet_from + timedelta(hours=1):
        now += timedelta(minutes=1)
        found += detector.tick(state, "transit", STATION, now)
    gates = [a for a in found if a.rule == "transit.gate_offline" and a.firing]
    assert gates and gates[0].observed_at <= quiet_from + timedelta(minutes=20)
    assert [a for a in found if a.rule == RULE.id] == []
    # The outage's empty bins are not scored (the bin the last taps fell in is): an outage is not crowding's
    # series either.
    assert state["feed"]["series"][RULE.id][1]["n"] <= scored_before + 1


def test_a_state_from_before_the_series_carries_on():
    """A station's state kept by the previous release (``bin``, ``last_tap``, ``normal``; no
    ``series``) is read as it is: the series starts from the normal already learned."""
    events = week(days=2)
    state, _ = run(events[: len(events) // 2])
    state["feed"].pop("series")
    before = json.loads(json.dumps(state))
    upgraded = upgrade_sensor_state(before)
    assert upgraded["feed"]["normal"] == before["feed"]["normal"]
    rest = events[len(events) // 2 :]
    start = MONDAY + timedelta(days=1, hours=10)  # the next morning, in service
    state, found = run(surged(rest, start, 60), upgraded)
    assert len(firing_starts(found)) == 1 and min(firing_starts(found)) <= start + timedelta(minutes=30)
    assert RULE.id in state["feed"]["series"]
