"""Event time bounded against the receiving clock: one reading dated in the future must not blind the centre.

At the edge (HTTP, NGSI-LD, MQTT, DLQ replay) an item dated more than ``IOC_FUTURE_TOLERANCE_SECONDS``
after it was received is rejected with reason ``future``; in the worker's reading path (``ioc.step``) a
record dated that far after its Kafka time is a ``future`` dead letter, and the partition's silence clock
never runs ahead of Kafka's time, so no sensor moves another's judgement.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from connectors.dlq import Candidate, prepare_candidates
from connectors.sources.base import PacedRecord, _stamp
from connectors.sources.mqtt import Edge, route
from connectors.sources.replay import _bounded
from ioc.alerts.rules import load_rules
from ioc.city import load_city
from ioc.detectors import clock
from ioc.feeds.air.model import AirQualityObserved
from ioc.ingest.edge import FUTURE, Accepted, Rejected, prepare, prepare_json, prepare_ngsi_ld
from ioc.models.ngsi_ld import to_ngsi_ld
from ioc.recording import RecordedEvent
from ioc.settings import Settings
from ioc.step import FeedStep, SourceRecord, StepResult, new_sensor

CITY = load_city("hanoi")
RULES = load_rules("hanoi")
SETTINGS = Settings()
NOW = datetime(2026, 1, 15, 1, 0, 5, tzinfo=UTC)
OPTIONS = {"city": CITY, "card_key": b"k", "card_key_id": "k1", "source": "unit", "received_at": NOW}
FAR = "2036-01-01T00:00:00+07:00"  # the reading


def air(sensor: str, at: datetime | str, pm25: float = 40.0) -> dict:
    observed = at if isinstance(at, str) else at.isoformat()
    return {"sensorId": sensor, "dateObserved": observed, "pm25": pm25}


# --- the edge ----------------------------------------------------------------------------------------


def test_a_reading_dated_years_ahead_is_rejected_naming_both_times_and_the_tolerance():
    outcome = prepare("air", air("air-kim-lien", FAR), **OPTIONS)
    assert isinstance(outcome, Rejected)
    assert (outcome.kind, outcome.field) == (FUTURE, "dateObserved")
    assert FAR in outcome.reason  # the event time
    assert "2026-01-15T01:00:05+00:00" in outcome.reason  # the receiving time
    assert "300 s" in outcome.reason and "IOC_FUTURE_TOLERANCE_SECONDS" in outcome.reason
    assert "9.96 years" not in outcome.reason and "years after it was received" in outcome.reason
    letter = outcome.dead_letter()
    assert letter.reason == "future" and letter.key == "air-kim-lien"
    assert json.loads(letter.payload)["dateObserved"] == FAR  # what the client sent, to fix and replay


def test_the_tolerance_is_the_boundary_and_is_configurable():
    at_limit = prepare("air", air("air-kim-lien", NOW + timedelta(seconds=300)), **OPTIONS)
    beyond = prepare("air", air("air-kim-lien", NOW + timedelta(seconds=301)), **OPTIONS)
    assert isinstance(at_limit, Accepted)
    assert isinstance(beyond, Rejected) and beyond.kind == FUTURE and "301 s after" in beyond.reason
    tight = prepare(
        "air", air("air-kim-lien", NOW + timedelta(seconds=61)), **OPTIONS, future_tolerance=timedelta(0)
    )
    assert isinstance(tight, Rejected) and "at most 0 s ahead" in tight.reason
    # The past is not bounded here: late readings are the windows' business.
    assert isinstance(prepare("air", air("air-kim-lien", "2016-01-01T00:00:00+07:00"), **OPTIONS), Accepted)


def test_ndjson_lines_and_ngsi_ld_entities_are_bounded_too():
    line = prepare_json("air", json.dumps(air("air-kim-lien", FAR)).encode(), **OPTIONS)
    assert isinstance(line, Rejected) and line.kind == FUTURE
    entity = to_ngsi_ld(AirQualityObserved.model_validate(air("air-kim-lien", FAR)))
    for form in (
        entity,
        to_ngsi_ld(AirQualityObserved.model_validate(air("air-kim-lien", FAR)), key_values=True),
    ):
        outcome = prepare_ngsi_ld(form, **OPTIONS)
        assert isinstance(outcome, Rejected) and outcome.kind == FUTURE and outcome.field == "dateObserved"


def test_the_mqtt_bridge_and_the_dlq_replay_use_the_configured_tolerance():
    edge = Edge.from_settings(Settings(future_tolerance_seconds=60, kafka_bootstrap="127.0.0.1:1"))
    assert edge.future_tolerance == timedelta(seconds=60)
    soon = air("air-trung-yen", NOW + timedelta(seconds=90))
    (outcome,) = route(
        "ioc/air/air-trung-yen", json.dumps(soon).encode(), root="ioc", edge=edge, received_at=NOW
    )
    assert isinstance(outcome, Rejected) and outcome.kind == FUTURE and "at most 60 s ahead" in outcome.reason
    assert outcome.source == "mqtt:ioc/air/air-trung-yen"
    (replayed,) = prepare_candidates(
        [Candidate("0:7", "air", item=air("air-trung-yen", FAR))], Settings(), edge=edge, now=NOW
    )
    assert isinstance(replayed.outcome, Rejected) and replayed.outcome.kind == FUTURE


def test_the_setting_is_read_from_the_environment(monkeypatch):
    assert Settings().future_tolerance_seconds == 300
    monkeypatch.setenv("IOC_FUTURE_TOLERANCE_SECONDS", "30")
    assert Settings().future_tolerance_seconds == 30
    monkeypatch.setenv("IOC_FUTURE_TOLERANCE_SECONDS", "-1")
    with pytest.raises(ValueError):
        Settings()


# --- the worker's reading path -------------------------------------------------------------------------

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
A, B, C = "air-hoan-kiem", "air-my-dinh", "air-tay-mo"  # one partition of four


class Run:
    """One air step over records of partition 0, state kept across batches as the worker's tables."""

    def __init__(self) -> None:
        self.step = FeedStep.of("air", SETTINGS.windows_of("air"), RULES, CITY, "ioc.air.raw")
        self.sensors: dict[str, dict] = defaultdict(new_sensor)
        self.clocks: dict[int, dict] = defaultdict(clock.new_clock)
        self.offset = 0

    def record(self, sensor: str, observed: datetime | str, kafka: datetime, pm25: float) -> SourceRecord:
        self.offset += 1
        value = json.dumps(air(sensor, observed, pm25)).encode()
        return SourceRecord(sensor.encode(), value, 0, self.offset, round(kafka.timestamp() * 1000))

    def minutes(self, first: int, last: int, skew: dict[str, float] | None = None) -> StepResult:
        """Every sensor's reading of each minute, entering Kafka 2 s after it happened (``skew``: seconds
        a sensor's own clock is ahead)."""
        records = [
            self.record(
                sensor,
                T0 + timedelta(minutes=m, seconds=(skew or {}).get(sensor, 0)),
                T0 + timedelta(minutes=m, seconds=2),
                40.0 + (m * 7 + n) % 11,  # never stuck on one value
            )
            for m in range(first, last + 1)
            for n, sensor in enumerate((A, B, C))
        ]
        return self.step.run(records, self.sensors.__getitem__, self.clocks.__getitem__)

    def one(self, sensor: str, observed: str, kafka: datetime) -> StepResult:
        return self.step.run(
            [self.record(sensor, observed, kafka, 45.0)], self.sensors.__getitem__, self.clocks.__getitem__
        )


def stale(results: list[StepResult]) -> set[str]:
    """The sensors found silent."""
    return {a.entity for r in results for a in r.anomalies if a.rule == "health.stale" and a.firing}


def test_a_record_from_the_future_that_bypassed_the_edge_is_a_dead_letter_and_blinds_no_one():
    run = Run()
    before = run.minutes(0, 30)
    future = run.one(A, FAR, T0 + timedelta(minutes=30, seconds=30))
    after = [run.minutes(31, 40)]

    assert [d.reason for d in future.dead_letters] == ["future"]
    detail = future.dead_letters[0].detail
    assert detail.startswith("dateObserved is 2036-01-01T00:00:00+07:00")
    assert "after its record entered Kafka (2026-11-23T01:30:30+00:00)" in detail
    assert "300 s" in detail and "IOC_FUTURE_TOLERANCE_SECONDS" in detail
    assert not future.aggregates and not future.anomalies
    # The other sensors are not silent, and the sensor's real readings after it are not late.
    assert stale([before, future, *after]) == set()
    assert [d.reason for r in after for d in r.dead_letters] == []
    minute_windows = {(k[1], k[2]) for r in after for k in r.aggregates if k[0] == "1m"}
    assert (A, int((T0 + timedelta(minutes=40)).timestamp())) in minute_windows
    assert run.sensors[A]["windows"]["1m"]["watermark"] == (T0 + timedelta(minutes=40)).timestamp()
    assert run.clocks[0]["now"] <= (T0 + timedelta(minutes=40, seconds=2)).timestamp()


def test_a_sensor_whose_clock_runs_ahead_within_the_tolerance_makes_no_other_look_silent():
    run = Run()
    # A's clock is 280 s fast: accepted (under 300 s), but the silence clock follows Kafka's time, not
    # A's, so B and C (every minute, on time) are never 3 reporting intervals behind it.
    results = [run.minutes(0, 30, skew={A: 280})]
    assert [d.reason for r in results for d in r.dead_letters] == []
    assert stale(results) == set()
    # A silence is still found: C stops, A and B carry on.
    run2 = Run()
    quiet = [run2.minutes(0, 20)]
    for m in range(21, 30):
        records = [
            run2.record(s, T0 + timedelta(minutes=m), T0 + timedelta(minutes=m, seconds=2), 40.0 + m % 5 + n)
            for n, s in enumerate((A, B))
        ]
        quiet.append(run2.step.run(records, run2.sensors.__getitem__, run2.clocks.__getitem__))
    assert stale(quiet) == {C}


def test_offline_where_the_event_time_is_the_record_time_nothing_is_refused():
    run = Run()
    result = run.one(A, FAR, datetime.fromisoformat(FAR))  # OfflineRun's record: its own event time
    assert result.dead_letters == [] and run.clocks[0]["now"] == datetime.fromisoformat(FAR).timestamp()


# --- the clock's state: versioned, and a clock poisoned before the bound heals ---------------------------


def test_a_clock_of_the_previous_format_is_upgraded_and_a_poisoned_one_restarts():
    received = T0 + timedelta(minutes=31)
    healthy = {"now": (T0 + timedelta(minutes=30)).timestamp(), "next_tick": 0.0, "sensors": [A, B]}
    upgraded = clock.upgrade_clock(dict(healthy, sensors=[A, B]), received, 300)
    assert upgraded == dict(healthy, v=clock.VERSION)
    poisoned = {
        "now": datetime.fromisoformat(FAR).timestamp(),
        "next_tick": 2082733260.0,
        "sensors": [A, B, C],
    }
    upgraded = clock.upgrade_clock(poisoned, received, 300)
    assert upgraded == {"v": clock.VERSION, "now": None, "next_tick": None, "sensors": [A, B, C]}
    assert clock.upgrade_clock(upgraded, received + timedelta(days=3650), 300) is upgraded  # once only
    with pytest.raises(ValueError, match="newer"):
        clock.upgrade_clock({"v": clock.VERSION + 1}, received, 300)


def test_a_worker_upgraded_in_place_carries_on_from_a_poisoned_clock_table():
    """The clock table value a worker before the bound left after the issue's reading: silence checks
    waiting until 2036. The upgraded step restarts it from Kafka's time and judges silence again."""
    run = Run()
    run.minutes(0, 20)
    far = datetime.fromisoformat(FAR).timestamp()
    run.clocks[0] = {"now": far, "next_tick": far + 60, "sensors": [A, B, C]}  # version 0
    results = [run.minutes(21, 25)]
    assert run.clocks[0]["v"] == clock.VERSION
    assert run.clocks[0]["now"] == (T0 + timedelta(minutes=25)).timestamp()
    assert stale(results) == set()
    # Ticking again: C stops and is found silent.
    for m in range(26, 32):
        records = [
            run.record(s, T0 + timedelta(minutes=m), T0 + timedelta(minutes=m, seconds=2), 41.0 + m % 3 + n)
            for n, s in enumerate((A, B))
        ]
        results.append(run.step.run(records, run.sensors.__getitem__, run.clocks.__getitem__))
    assert stale(results) == {C}


def test_a_new_clock_is_versioned():
    assert clock.new_clock() == {"v": clock.VERSION, "now": None, "next_tick": None, "sensors": []}


# --- sources that write straight to Kafka ---------------------------------------------------------------


def test_a_replay_refuses_what_is_too_far_ahead_of_the_wall_clock_unless_asked():
    now = datetime.now(UTC)
    events = [
        RecordedEvent("air", A, at, json.dumps(air(A, at)).encode())
        for at in (now - timedelta(hours=1), now + timedelta(seconds=60), now + timedelta(days=1))
    ]
    refused: list[tuple[RecordedEvent, str]] = []
    sent = list(_bounded(events, timedelta(seconds=300), lambda e, reason: refused.append((e, reason))))
    assert sent == events[:2]
    [(event, reason)] = refused
    assert event is events[2] and reason.startswith(
        f"is {events[2].event_time.isoformat()}, 24 h after it was"
    )
    assert list(_bounded(events, None, lambda e, reason: pytest.fail("nothing is refused"))) == events


def test_a_source_with_its_own_clock_stamps_what_is_ahead_of_the_wall_clock_with_its_event_time():
    now_ms = datetime(2026, 12, 4, tzinfo=UTC).timestamp() * 1000
    ahead = PacedRecord("t", "k", b"{}", now_ms / 1000 + 600.0005)
    behind = PacedRecord("t", "k", b"{}", now_ms / 1000 - 600)
    assert _stamp(ahead, now_ms, own_clock=True) == now_ms + 600_001  # rounded up: never before it
    assert _stamp(behind, now_ms, own_clock=True) is None  # the producer's clock, as usual
    assert _stamp(ahead, now_ms, own_clock=False) is None
