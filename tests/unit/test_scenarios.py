import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from functools import cache
from statistics import mean
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from connectors.sources.base import Source
from connectors.sources.simulator import CitySimulator, city_simulator
from connectors.sources.simulator.scenarios import (
    CITY_ANOMALIES,
    EXPECTED_RULES,
    KINDS,
    SENSOR_FAULTS,
    SPIKE_VALUES,
    Scenario,
    ScenarioInjector,
    alter,
    parse_kinds,
    plan_scenarios,
    write_ground_truth,
)
from ioc.city import load_city
from ioc.feeds import MODELS
from ioc.feeds.transit.model import FareTap
from ioc.feeds.transit.simulator import TransitSimulator
from ioc.models import Event

CITY = load_city("hanoi")
ZONE = ZoneInfo(CITY.timezone)
START = datetime(2026, 1, 12, tzinfo=ZONE)  # a Monday in the smoggy season
WEEK = timedelta(days=7)
INTERVAL = timedelta(minutes=15)  # every sampled feed reads every 15 min: a week stays quick
SEED = 5
HOUR = timedelta(hours=1)
CARD = {"card_key": b"test-key", "card_key_id": "k1"}


@cache
def plan() -> tuple[Scenario, ...]:
    return tuple(plan_scenarios(CITY, KINDS, start=START, duration=WEEK, seed=SEED, interval=INTERVAL))


def sampled_source(start: datetime = START, duration: timedelta = WEEK, seed: int = SEED) -> CitySimulator:
    feeds = ("air", "traffic", "water")
    return city_simulator(CITY, feeds, start=start, duration=duration, seed=seed, interval=INTERVAL, **CARD)


@cache
def baseline() -> tuple[Event, ...]:
    return tuple(sampled_source().events())


@cache
def injected() -> tuple[Event, ...]:
    return tuple(ScenarioInjector(sampled_source(), plan(), CITY, seed=SEED, **CARD).events())


class Replay(Source):
    def __init__(self, events: Iterable[Event]) -> None:
        self.recorded = list(events)

    def events(self) -> Iterator[Event]:
        return iter(self.recorded)


@cache
def transit_near(scenario: Scenario) -> tuple[FareTap, ...]:
    """Taps from an hour before to an hour after the scenario, without it."""
    span = scenario.end - scenario.start + 2 * HOUR
    source = TransitSimulator(CITY, start=scenario.start - HOUR, duration=span, seed=SEED, **CARD)
    return tuple(source.events())


def transit_around(scenario: Scenario, *, inject: bool) -> list[FareTap]:
    usual = transit_near(scenario)
    if not inject:
        return list(usual)
    return list(ScenarioInjector(Replay(usual), [scenario], CITY, seed=SEED, **CARD).events())


def of_kind(kind: str) -> list[Scenario]:
    return [s for s in plan() if s.kind == kind]


def readings(events: Iterable[Event], sensor_ids: Iterable[str], lo: datetime, hi: datetime) -> list[Event]:
    wanted = set(sensor_ids)
    return [e for e in events if e.sensor_id in wanted and lo <= e.event_time < hi]


def inside(scenario: Scenario, events: Iterable[Event], entities: Iterable[str] | None = None) -> list[Event]:
    return readings(events, entities or scenario.entities, scenario.start, scenario.end)


def is_valid(event: Event) -> bool:
    try:
        MODELS[event.feed].model_validate_json(event.to_json())
    except ValidationError:
        return False
    return True


# --- the plan ---------------------------------------------------------------------------------------


def test_a_week_plans_every_kind_inside_the_run_with_its_rules():
    # but those that need more than a week learned first: an area slow-down (each road's normal for
    # the hour of the week)
    assert {s.kind for s in plan()} == set(KINDS) - {"area_slowdown"}
    for scenario in plan():
        assert START <= scenario.start < scenario.end <= START + WEEK
        assert scenario.rules == EXPECTED_RULES[scenario.kind]
        assert scenario.start.utcoffset() == timedelta(hours=7)
    assert len({s.id for s in plan()}) == len(plan())


def test_no_entity_has_two_scenarios_at_once_and_faults_avoid_anomaly_sensors():
    windows: dict[str, list[tuple[datetime, datetime]]] = {}
    for scenario in plan():
        for entity in scenario.entities:
            windows.setdefault(entity, []).append((scenario.start, scenario.end))
    for spans in windows.values():
        spans.sort()
        assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:], strict=False))
    anomaly = {e for s in plan() if s.kind in CITY_ANOMALIES for e in s.entities}
    assert all(s.entities[0] not in anomaly for s in plan() if s.kind in SENSOR_FAULTS)


def test_transit_scenarios_in_service_hours_and_gate_offline_at_a_weekday_peak():
    for scenario in of_kind("transit_surge") + of_kind("gate_offline"):
        first, last = scenario.start.astimezone(ZONE), scenario.end.astimezone(ZONE)
        assert first.date() == last.date()
        assert (first.hour, first.minute) >= (5, 30) and (last.hour, last.minute) <= (22, 0)
    for scenario in of_kind("gate_offline"):
        local = scenario.start.astimezone(ZONE)
        assert local.hour in (7, 17) and local.weekday() < 5


def test_same_seed_same_plan_other_seed_other_plan(tmp_path):
    again = plan_scenarios(CITY, KINDS, start=START, duration=WEEK, seed=SEED, interval=INTERVAL)
    other = plan_scenarios(CITY, KINDS, start=START, duration=WEEK, seed=SEED + 1, interval=INTERVAL)
    write_ground_truth(plan(), tmp_path / "a.jsonl")
    write_ground_truth(again, tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert [(s.kind, s.entities, s.start) for s in other] != [(s.kind, s.entities, s.start) for s in plan()]


def test_ground_truth_lines_carry_what_a_backtest_needs(tmp_path):
    path = tmp_path / "truth.jsonl"
    assert write_ground_truth(plan(), path) == len(plan())
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for record, scenario in zip(records, plan(), strict=True):
        assert {"id", "kind", "entities", "district", "start", "end", "rules"} <= set(record)
        assert datetime.fromisoformat(record["start"]) == scenario.start
        assert record["rules"] == list(EXPECTED_RULES[record["kind"]])


def test_a_run_too_short_for_a_kind_is_refused():
    with pytest.raises(ValueError, match="pollution_episode"):
        plan_scenarios(CITY, ["pollution_episode"], start=START, duration=timedelta(hours=2), seed=1)


def test_parse_kinds():
    assert parse_kinds("all") == list(KINDS)
    assert parse_kinds("spike, dropout") == ["spike", "dropout"]
    with pytest.raises(ValueError, match="meteor"):
        parse_kinds("spike,meteor")


# --- the injected stream ----------------------------------------------------------------------------


def test_injected_stream_stays_in_event_time_order():
    times = [e.event_time for e in injected()]
    assert times == sorted(times)


def test_pollution_episode_raises_district_pm25_far_above_the_same_hours_without():
    for scenario in of_kind("pollution_episode"):
        polluted = [e.pm25 for e in inside(scenario, injected())]
        clean = [e.pm25 for e in inside(scenario, baseline())]
        assert polluted and min(polluted) >= 200  # NowCast > 80 µg/m³: VN_AQI > 150, "Xấu"
        assert mean(polluted) > 3 * mean(clean)
        assert all(is_valid(e) for e in inside(scenario, injected()))


def test_stuck_value_repeats_one_reading():
    for scenario in of_kind("stuck_value"):
        stuck = inside(scenario, injected())
        assert len(stuck) >= 2
        assert len({json.dumps(e.model_dump(exclude={"date_observed"}), default=str) for e in stuck}) == 1


def test_spike_hits_exactly_its_readings_and_stays_valid():
    spikes = of_kind("spike")
    for sensor in {s.entities[0] for s in spikes}:
        own_spikes = [s for s in spikes if s.entities[0] == sensor]
        limits = SPIKE_VALUES[CITY.sensor(sensor).kind]
        hits = [
            e
            for e in injected()
            if e.sensor_id == sensor and all(getattr(e, f) == v for f, v in limits.items())
        ]
        assert len(hits) == sum(s.readings for s in own_spikes)
        assert all(any(s.start <= e.event_time < s.end for s in own_spikes) for e in hits)
        assert all(is_valid(e) for e in hits)


def test_dropout_window_is_empty_and_readings_resume():
    for scenario in of_kind("dropout"):
        assert inside(scenario, baseline()) and not inside(scenario, injected())
        hour = timedelta(hours=1)
        assert readings(injected(), scenario.entities, scenario.start - hour, scenario.start)
        assert readings(injected(), scenario.entities, scenario.end, scenario.end + hour)


def test_out_of_range_readings_fail_validation_only_inside_the_window():
    for scenario in of_kind("out_of_range"):
        own = [e for e in injected() if e.sensor_id == scenario.entities[0]]
        bad = [e for e in own if not is_valid(e)]
        assert bad and bad == inside(scenario, injected())


def speed_ratio(scenario: Scenario, ids: Iterable[str]) -> float:
    jammed = mean(e.average_vehicle_speed for e in inside(scenario, injected(), ids))
    return jammed / mean(e.average_vehicle_speed for e in inside(scenario, baseline(), ids))


def occupancy_rise(scenario: Scenario, ids: Iterable[str]) -> float:
    jammed = mean(e.occupancy for e in inside(scenario, injected(), ids))
    return jammed - mean(e.occupancy for e in inside(scenario, baseline(), ids))


def test_traffic_incident_collapses_speed_on_the_detector_and_slows_neighbours():
    for scenario in of_kind("traffic_incident"):
        detector, neighbours = scenario.entities[:1], scenario.entities[1:]
        assert speed_ratio(scenario, detector) < 0.3 < speed_ratio(scenario, neighbours) < 0.75
        assert occupancy_rise(scenario, detector) > 0.3
        assert occupancy_rise(scenario, neighbours) > 0.1


def test_water_contamination_crashes_oxygen_and_raises_ammonium():
    for scenario in of_kind("water_contamination"):
        polluted = inside(scenario, injected())
        assert polluted and all(e.dissolved_oxygen < 1 and e.nh4_n > 5 for e in polluted)
        assert mean(e.dissolved_oxygen for e in inside(scenario, baseline())) >= 2


def test_transit_surge_taps_far_above_baseline_with_fresh_ids_and_hashed_cards():
    for scenario in of_kind("transit_surge"):
        crowded = inside(scenario, transit_around(scenario, inject=True))
        usual = inside(scenario, transit_around(scenario, inject=False))
        assert len(crowded) > 5 * max(1, len(usual))
        assert len({e.event_id for e in crowded}) == len(crowded)
        assert all(is_valid(e) for e in crowded)
        assert not any(re.search(rb"9704\d{12}", e.to_json()) for e in crowded)


def test_gate_offline_silences_the_station_only_in_its_window():
    for scenario in of_kind("gate_offline"):
        usual = transit_around(scenario, inject=False)
        events = transit_around(scenario, inject=True)
        assert inside(scenario, usual) and not inside(scenario, events)
        before = readings(events, scenario.entities, scenario.start - HOUR, scenario.start)
        after = readings(events, scenario.entities, scenario.end, scenario.end + HOUR)
        assert before and after


FORTNIGHT = 2 * WEEK


@cache
def fortnight_plan() -> tuple[Scenario, ...]:
    return tuple(plan_scenarios(CITY, KINDS, start=START, duration=FORTNIGHT, seed=SEED, interval=INTERVAL))


@cache
def fortnight(*, inject: bool) -> tuple[Event, ...]:
    """Two weeks of traffic, with the fortnight's plan or without."""
    source = city_simulator(
        CITY, ("traffic",), start=START, duration=FORTNIGHT, seed=SEED, interval=INTERVAL, **CARD
    )
    if inject:
        source = ScenarioInjector(source, fortnight_plan(), CITY, seed=SEED, **CARD)
    return tuple(e for e in source.events() if e.feed == "traffic")


def slowdowns() -> list[Scenario]:
    planned = [s for s in fortnight_plan() if s.kind == "area_slowdown"]
    assert planned, "two weeks plan area slow-downs"
    return planned


def test_area_slowdown_starts_after_the_week_its_roads_normals_take():
    assert all(s.start >= START + WEEK for s in slowdowns())


def test_area_slowdown_is_planned_by_day_with_its_rule():
    for scenario in slowdowns():
        assert scenario.rules == ("traffic.area_slowdown",)
        assert 6 <= scenario.start.astimezone(ZONE).hour < 21  # rain barely slows an empty night road
        assert timedelta(minutes=90) <= scenario.end - scenario.start <= timedelta(minutes=180)


def two_hop_area(detector: str) -> set[str]:
    near = set(CITY.sensor(detector).neighbours)
    return near | {far for n in near for far in CITY.sensor(n).neighbours}


def test_area_slowdown_covers_a_detector_and_every_detector_two_hops_away():
    traffic = {s.id for s in CITY.sensors_of("traffic")}
    for scenario in slowdowns():
        main = scenario.entities[0]
        assert len(CITY.sensor(main).neighbours) >= 2
        assert len(set(scenario.entities)) == len(scenario.entities)
        assert set(scenario.entities) == {main} | two_hop_area(main)
        assert set(scenario.entities) <= traffic
        assert scenario.district == CITY.sensor(main).district


def paired(scenario: Scenario, ids: Iterable[str], lo: datetime, hi: datetime) -> list[tuple[Event, Event]]:
    """(without, with the plan) readings of ``ids`` ending in [lo, hi), matched by sensor and time."""
    plain = {(e.sensor_id, e.date_observed): e for e in readings(fortnight(inject=False), ids, lo, hi)}
    altered = readings(fortnight(inject=True), ids, lo, hi)
    assert len(altered) == len(plain) > 0
    return [(plain[e.sensor_id, e.date_observed], e) for e in altered]


def test_area_slowdown_slows_its_area_as_the_rain_sets_in():
    for scenario in slowdowns():
        stages: set[float] = set()
        for usual, rained in paired(scenario, scenario.entities, scenario.start, scenario.end):
            # The rain sets in over 20 minutes: the factor falls from 1 at the start to 0.6, then holds.
            setting_in = min(1, max(0, (rained.date_observed - scenario.start) / timedelta(minutes=20)))
            stages.add(setting_in)
            factor = 1 - 0.4 * setting_in
            speed = usual.average_vehicle_speed * factor
            assert rained.average_vehicle_speed == pytest.approx(speed, abs=0.051)
            assert rained.occupancy == round(min(0.95, usual.occupancy / factor), 3)
            assert rained.occupancy >= usual.occupancy
            assert (rained.intensity, rained.flow) == (usual.intensity, usual.flow)
            assert is_valid(rained)
        assert 1 in stages and min(stages) < 1  # readings as the rain sets in, and after


def test_area_slowdown_leaves_other_detectors_and_other_hours_alone():
    for scenario in slowdowns():
        # The planner keeps an hour between two scenarios on one detector: the hour around is untouched.
        for lo, hi in ((scenario.start - HOUR, scenario.start), (scenario.end, scenario.end + HOUR)):
            assert all(usual == rained for usual, rained in paired(scenario, scenario.entities, lo, hi))
        during = [o for o in fortnight_plan() if o.start < scenario.end and scenario.start < o.end]
        busy = {e for o in during for e in o.entities}
        others = [s.id for s in CITY.sensors_of("traffic") if s.id not in busy]
        assert others
        assert all(
            usual == rained for usual, rained in paired(scenario, others, scenario.start, scenario.end)
        )


def test_area_slowdown_leaves_readings_without_a_speed_as_they_are():
    scenario = slowdowns()[0]
    reading = next(e for e in fortnight(inject=False) if e.sensor_id == scenario.entities[0])
    speedless = reading.model_copy(update={"average_vehicle_speed": None, "date_observed": scenario.end})
    air = next(e for e in baseline() if e.feed == "air").model_copy(update={"date_observed": scenario.end})
    for event in (speedless, air):
        assert alter(event, scenario, {}, CITY) is event


def test_same_seed_gives_byte_identical_events():
    day = timedelta(days=1)
    day_plan = plan_scenarios(CITY, KINDS, start=START, duration=day, seed=SEED, interval=INTERVAL)

    def run() -> bytes:
        transit = TransitSimulator(CITY, start=START, duration=day, seed=SEED, ridership=0.1, **CARD)
        source = CitySimulator([*sampled_source(duration=day).sources, transit])
        injector = ScenarioInjector(source, day_plan, CITY, seed=SEED, **CARD)
        return b"\n".join(e.to_json() for e in injector.events())

    assert run() == run()


# --- the command line -------------------------------------------------------------------------------


def test_simulate_writes_events_and_ground_truth_with_scenarios(tmp_path):
    from typer.testing import CliRunner

    from ioc.cli import app

    out, truth = tmp_path / "events.jsonl", tmp_path / "truth.jsonl"
    args = ["simulate", "--start", "2026-01-12T00:00:00+07:00", "--duration", "86400", "--interval", "900"]
    args += ["--feeds", "air,water", "--scenarios", "water_contamination,dropout", "--truth", str(truth)]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    kinds = {json.loads(line)["kind"] for line in truth.read_text(encoding="utf-8").splitlines()}
    assert kinds == {"water_contamination", "dropout"}
    assert out.stat().st_size > 0


def test_simulate_refuses_scenarios_without_truth_or_duration():
    from typer.testing import CliRunner

    from ioc.cli import app

    result = CliRunner().invoke(app, ["simulate", "--scenarios", "spike", "--duration", "60", "--out", "x"])
    assert result.exit_code != 0
    assert "--truth" in result.output
