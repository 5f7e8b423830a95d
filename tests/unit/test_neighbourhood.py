"""The neighbourhood stage (``ioc.detectors.neighbourhood``): who receives a sensor's deviations, the
record's wire format, area-wide slow-downs told from an incident's ripple, judgement in event time
whatever the interleaving, repeats, "no news", bounded state, and the reading path's share/tick."""

from __future__ import annotations

import copy
import json
import math
import random
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest

from ioc.alerts.rules import load_rules
from ioc.city import load_city
from ioc.detectors.neighbourhood import (
    MAX_WAIT,
    SILENT_AFTER,
    Deviation,
    Neighbourhood,
    audience,
    new_state,
)
from ioc.detectors.sensor import SensorDetector, new_sensor_state
from ioc.models.anomaly import Anomaly
from ioc.step import NeighbourhoodRun

CITY = load_city("hanoi")
RULES = load_rules("hanoi")
HOOD = Neighbourhood("traffic", RULES, CITY)
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC).timestamp()
STEP = 300.0  # 5 minutes

NGA_TU_SO = "traffic-nga-tu-so"
NGA_TU_SO_NEIGHBOURS = ("traffic-nguyen-trai-thuong-dinh", "traffic-truong-chinh", "traffic-lang")
KIM_LIEN, NGA_TU_VONG, DAI_CO_VIET = "traffic-kim-lien", "traffic-nga-tu-vong", "traffic-dai-co-viet"


def series(sensor_id: str, shares: Iterable[float | None]) -> list[Deviation]:
    """A sensor's records at 5-minute steps: each speed as a share of its normal (None: no news)."""
    return [
        Deviation(sensor_id, START + i * STEP, None if s is None else math.log(s))
        for i, s in enumerate(shares)
    ]


def in_time_order(streams: dict[str, list[Deviation]]) -> list[Deviation]:
    """Every sender's records merged by time; at one time, in the dict's order (the judged one first)."""
    order = {sensor_id: n for n, sensor_id in enumerate(streams)}
    records = [record for stream in streams.values() for record in stream]
    return sorted(records, key=lambda r: (r.at, order[r.sensor_id]))


def shuffled(streams: dict[str, list[Deviation]], seed: int) -> list[Deviation]:
    """A random interleaving of the senders that keeps each sender's own order."""
    rng = random.Random(seed)
    queues = {sensor_id: list(stream) for sensor_id, stream in streams.items() if stream}
    merged = []
    while queues:
        sensor_id = rng.choice(sorted(queues))
        merged.append(queues[sensor_id].pop(0))
        if not queues[sensor_id]:
            del queues[sensor_id]
    return merged


def judge(sensor_id: str, records: Iterable[Deviation], state: dict[str, Any] | None = None) -> list[Anomaly]:
    """The anomalies of ``sensor_id`` from these records, received one by one into its state."""
    state = new_state() if state is None else state
    return [anomaly for record in records for anomaly in HOOD.receive(state, sensor_id, record)]


def area(shares: dict[str, list[float | None]]) -> dict[str, list[Deviation]]:
    """Each sensor's records from its shares, from ``START``."""
    return {sensor_id: series(sensor_id, values) for sensor_id, values in shares.items()}


# --- audience and wire format -------------------------------------------------------------------------


def test_audience_is_the_sensor_itself_and_every_sensor_naming_it_as_a_neighbour() -> None:
    needs = audience(CITY)
    named_by = {s.id: {s.id} | {o.id for o in CITY.sensors if s.id in o.neighbours} for s in CITY.sensors}
    assert set(needs[NGA_TU_SO]) == {
        NGA_TU_SO,
        "traffic-nguyen-trai-thuong-dinh",
        "traffic-truong-chinh",
        "traffic-lang",
    }
    assert set(needs["traffic-kim-ma"]) == {"traffic-kim-ma", "traffic-cau-giay"}
    for sensor_id, receivers in needs.items():
        assert set(receivers) == named_by[sensor_id] and len(receivers) == len(set(receivers))
    assert "traffic-nguyen-van-cu" not in needs and "traffic-dinh-tien-hoang" not in needs
    assert not any(s.kind != "traffic" for s in CITY.sensors if s.id in needs)
    assert all(needs.get(s.id) is None for s in CITY.sensors if s.kind != "traffic")
    record = Deviation("traffic-kim-ma", START, -0.1)
    assert sorted(HOOD.records(record)) == sorted((r, record) for r in needs["traffic-kim-ma"])
    assert list(HOOD.records(Deviation("traffic-nguyen-van-cu", START, -0.1))) == []


def test_deviation_round_trips_and_refuses_what_is_not_one() -> None:
    for record in (Deviation(NGA_TU_SO, START + 0.5, math.log(0.6)), Deviation(NGA_TU_SO, START, None)):
        assert Deviation.from_json(record.to_json()) == record
    assert Deviation.from_json(b'{"sensorId": "s", "at": 10, "deviation": 0}') == Deviation("s", 10.0, 0.0)
    refused = [
        b"not json",
        b'{"sensorId": "s", "at": 10}',
        b'{"sensorId": "s", "deviation": 0.1}',
        b'{"at": 10, "deviation": 0.1}',
        b'{"sensorId": "s", "at": "2026-03-02T08:00:00Z", "deviation": 0.1}',
        b'{"sensorId": "s", "at": NaN, "deviation": 0.1}',
        b'{"sensorId": "s", "at": 10, "deviation": Infinity}',
        b'{"sensorId": "s", "at": 10, "deviation": -Infinity}',
        b'{"sensorId": "s", "at": 10, "deviation": "-0.5"}',
        b'{"sensorId": 7, "at": 10, "deviation": 0.1}',
        b"[1, 2, 3]",
    ]
    for value in refused:
        with pytest.raises(ValueError):
            Deviation.from_json(value)


# --- area against local ---------------------------------------------------------------------------


def test_an_area_wide_slow_down_fires_then_clears_after_the_hold() -> None:
    hold = RULES.get("traffic.area_slowdown").hold_minutes * 60
    recovered_steps = int(hold // STEP) + 2
    back = [1.0] * recovered_steps  # recovered for longer than the hold
    # 30 minutes at about 60 %: the value is the median of the four (0.6), not nga-tu-so's own 0.55.
    slow = zip((NGA_TU_SO, *NGA_TU_SO_NEIGHBOURS), (0.55, 0.6, 0.6, 0.65), strict=True)
    found = judge(NGA_TU_SO, in_time_order(area({s: [share] * 7 + back for s, share in slow})))
    assert found, "an area-wide slow-down gave nothing"
    first = found[0]
    assert (first.rule, first.entity, first.district, first.firing) == (
        "traffic.area_slowdown",
        NGA_TU_SO,
        "dong-da",
        True,
    )
    assert first.value == pytest.approx(0.6)
    assert first.observed_at.timestamp() == START
    last = found[-1]
    assert not last.firing and last.rule == "traffic.area_slowdown" and last.entity == NGA_TU_SO
    assert last.observed_at.timestamp() - (START + 7 * STEP) >= hold
    assert all(a.firing for a in found[:-1])


def test_an_incident_is_not_an_area_slow_down_for_it_nor_for_its_neighbours() -> None:
    incident = area({NGA_TU_SO: [0.15] * 7} | {n: [0.5] * 7 for n in NGA_TU_SO_NEIGHBOURS})
    assert judge(NGA_TU_SO, in_time_order(incident)) == []
    lang = area(
        {"traffic-lang": [0.5] * 7, NGA_TU_SO: [0.15] * 7, "traffic-cau-giay": [1.0] * 7}
        | {"traffic-le-van-luong": [1.0] * 7}
    )
    assert judge("traffic-lang", in_time_order(lang)) == []


def test_one_member_far_below_the_median_is_an_incidents_ripple() -> None:
    triangle = area({KIM_LIEN: [0.5] * 7, NGA_TU_VONG: [0.15] * 7, DAI_CO_VIET: [0.5] * 7})
    assert judge(KIM_LIEN, in_time_order(triangle)) == []
    # The same triangle with no member far under the rest is the area's.
    alike = area({KIM_LIEN: [0.5] * 7, NGA_TU_VONG: [0.45] * 7, DAI_CO_VIET: [0.5] * 7})
    assert [a.firing for a in judge(KIM_LIEN, in_time_order(alike))][:1] == [True]


def test_too_few_slowed_neighbours_or_neighbours_with_news_judge_nothing() -> None:
    # The median is under the trigger (0.61) but only one neighbour of three is.
    one_of_three = {NGA_TU_SO: [0.5] * 7, "traffic-nguyen-trai-thuong-dinh": [0.5] * 7}
    one_of_three |= {"traffic-truong-chinh": [0.75] * 7, "traffic-lang": [0.75] * 7}
    assert judge(NGA_TU_SO, in_time_order(area(one_of_three))) == []
    two_of_three = one_of_three | {"traffic-truong-chinh": [0.5] * 7}
    assert judge(NGA_TU_SO, in_time_order(area(two_of_three))) != []
    # kim-ma has one neighbour: under min_neighbours (2), never judged.
    assert (
        judge(
            "traffic-kim-ma",
            in_time_order(area({"traffic-kim-ma": [0.5] * 7, "traffic-cau-giay": [0.5] * 7})),
        )
        == []
    )


# --- event time, repeats, no news, bounds -----------------------------------------------------------


def test_any_interleaving_of_the_senders_gives_the_same_anomalies() -> None:
    rng = random.Random(17)
    members = {NGA_TU_SO, *NGA_TU_SO_NEIGHBOURS, KIM_LIEN, NGA_TU_VONG, DAI_CO_VIET, "traffic-kim-ma"}
    members |= {n for s in CITY.sensors if s.id in members for n in s.neighbours}
    streams: dict[str, list[Deviation]] = {}
    for sensor_id in sorted(members):
        shares: list[float | None] = []
        for step in range(400):  # 33 hours, slow for an hour; a few readings missing, a few "no news"
            base = 0.55 if 200 <= step < 212 else 1.0
            shares.append(None if rng.random() < 0.05 else base * rng.uniform(0.85, 1.15))
        streams[sensor_id] = [r for r in series(sensor_id, shares) if rng.random() > 0.1]

    def anomalies(order: list[Deviation]) -> list[bytes]:
        run = NeighbourhoodRun(HOOD)
        found = run.run((receiver, r) for record in order for receiver, r in HOOD.records(record))
        return sorted(a.to_json() for a in found)

    expected = anomalies(in_time_order(streams))
    assert any(json.loads(a)["firing"] for a in expected), "the scenario must fire somewhere"
    for seed in range(6):
        assert anomalies(shuffled(streams, seed)) == expected, seed
    # Catching up, one partition's pipeline may run a day ahead of another's: here each sender's 33
    # hours in turn.
    assert anomalies([r for sensor_id in sorted(streams) for r in streams[sensor_id]]) == expected


def test_a_reading_waits_until_every_neighbour_has_passed_its_time() -> None:
    state = new_state()
    slow = area({s: [0.6] for s in (NGA_TU_SO, *NGA_TU_SO_NEIGHBOURS)})
    assert HOOD.receive(state, NGA_TU_SO, slow[NGA_TU_SO][0]) == []
    assert HOOD.receive(state, NGA_TU_SO, slow["traffic-nguyen-trai-thuong-dinh"][0]) == []
    assert HOOD.receive(state, NGA_TU_SO, slow["traffic-truong-chinh"][0]) == []
    assert state["pending"] == [[START, math.log(0.6)]]
    found = HOOD.receive(state, NGA_TU_SO, slow["traffic-lang"][0])
    assert [(a.rule, a.firing) for a in found] == [("traffic.area_slowdown", True)]
    assert state["pending"] == []


def test_a_record_at_or_before_its_senders_latest_is_ignored() -> None:
    state = new_state()
    slow = area({s: [0.6, 0.6] for s in (NGA_TU_SO, *NGA_TU_SO_NEIGHBOURS)})
    judge(NGA_TU_SO, in_time_order(slow)[:-1], state)  # lang's second record not yet in: one pending
    before = copy.deepcopy(state)
    for sensor_id in (NGA_TU_SO, *NGA_TU_SO_NEIGHBOURS):
        for record in slow[sensor_id][: 1 if sensor_id == "traffic-lang" else 2]:
            assert HOOD.receive(state, NGA_TU_SO, record) == []
            assert HOOD.receive(state, NGA_TU_SO, Deviation(sensor_id, record.at, math.log(0.1))) == []
            assert state == before


def test_no_news_moves_a_neighbour_on_but_is_not_news() -> None:
    # Two neighbours say nothing: the reading is judged (not left pending), on one neighbour's news only.
    quiet = area(
        {NGA_TU_SO: [0.5], "traffic-nguyen-trai-thuong-dinh": [0.5]}
        | {n: [None] for n in NGA_TU_SO_NEIGHBOURS[1:]}
    )
    state = new_state()
    assert judge(NGA_TU_SO, in_time_order(quiet), state) == []
    assert state["pending"] == []
    # With two of three neighbours with news, the same area fires.
    news = quiet | area({"traffic-truong-chinh": [0.5]})
    assert [a.firing for a in judge(NGA_TU_SO, in_time_order(news))] == [True]


def test_a_neighbour_that_never_reports_does_not_grow_the_state() -> None:
    state = new_state()
    silent = "traffic-lang"
    others = {s: [0.6] * 1000 for s in (NGA_TU_SO, *NGA_TU_SO_NEIGHBOURS) if s != silent}
    most = MAX_WAIT / STEP + 1  # readings within MAX_WAIT of the newest
    for record in in_time_order(area(others)):
        assert HOOD.receive(state, NGA_TU_SO, record) == []
        assert len(state["pending"]) <= most
    json.dumps(state)
    assert len(state["pending"]) == most
    assert state["pending"][-1][0] == START + 999 * STEP
    horizon = HOOD.params["traffic.area_slowdown"].horizon_minutes * 60
    bound = most + horizon / STEP
    assert silent not in state["seen"]
    assert all(len(records) <= bound for records in state["seen"].values())


def test_a_sensor_that_never_reports_itself_does_not_pile_up_its_neighbours_records() -> None:
    # Its own slot never ready (a new detector's first week, or a dead one): its neighbours' records
    # must not pile up in its state, since no reading of its own will need them.
    state = new_state()
    neighbours = area({n: [0.6] * 1000 for n in NGA_TU_SO_NEIGHBOURS})
    assert judge(NGA_TU_SO, in_time_order(neighbours), state) == []
    json.dumps(state)
    kept = {sensor_id: len(records) for sensor_id, records in state["seen"].items()}
    assert all(n <= MAX_WAIT / STEP + 1 for n in kept.values()), kept


# --- the reading path: share and the silence clock --------------------------------------------------


def test_a_silent_sensor_publishes_no_news_once_per_tick_and_nothing_older_than_its_last() -> None:
    detector = SensorDetector(RULES, CITY)
    state = new_sensor_state()
    sensor_id = NGA_TU_SO

    def tick(seconds_after: float) -> list[Deviation]:
        detector.outbox.clear()
        detector.tick(state, "traffic", sensor_id, datetime.fromtimestamp(START + seconds_after, UTC))
        return list(detector.outbox)

    assert tick(2 * SILENT_AFTER) == []  # never published: nothing to move on from
    detector.share(state, sensor_id, START, math.log(0.6))
    assert detector.outbox == [Deviation(sensor_id, START, math.log(0.6))]
    assert tick(SILENT_AFTER) == []  # silent for exactly SILENT_AFTER: nothing newer than its last
    assert tick(SILENT_AFTER + 60) == [Deviation(sensor_id, START + 60, None)]
    assert tick(SILENT_AFTER + 60) == []  # the same tick again: once
    assert tick(SILENT_AFTER + 30) == []  # an earlier tick: nothing older than the last
    assert tick(SILENT_AFTER + 120) == [Deviation(sensor_id, START + 120, None)]
    detector.outbox.clear()
    detector.share(state, sensor_id, START + 90, math.log(0.5))  # a late reading after a "no news"
    detector.share(state, sensor_id, START + 120, math.log(0.5))
    assert detector.outbox == []
    detector.share(state, sensor_id, START + 180, math.log(0.5))
    assert detector.outbox == [Deviation(sensor_id, START + 180, math.log(0.5))]
