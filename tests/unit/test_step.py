"""The reading path (``ioc.step``): what a batch of raw records gives, whatever the batches."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner

from ioc.alerts.rules import load_rules
from ioc.city import load_city
from ioc.detectors import clock
from ioc.recording import in_event_time_order, load_events
from ioc.settings import Settings
from ioc.step import (
    RECENT_READINGS,
    FeedStep,
    OfflineRun,
    SourceRecord,
    StepResult,
    new_sensor,
    partition_of,
    upgrade_sensor,
)
from ioc.windows import WindowAggregate

SETTINGS = Settings()
RULES = load_rules("hanoi")
CITY = load_city("hanoi")
RECORDING = Path(__file__).parents[2] / "examples" / "hanoi-morning.jsonl.gz"
SENSOR = "air-hoan-kiem"
RECEIVED_MS = 1_783_382_400_000  # 2026-07-07T00:00Z: the records entered Kafka after the readings


def air(minute: int, pm25: float = 20.0, sensor: str = SENSOR) -> bytes:
    at = datetime(2026, 7, 6, 8, 0, tzinfo=UTC).timestamp() + minute * 60
    observed = datetime.fromtimestamp(at, UTC).isoformat()
    return json.dumps({"sensorId": sensor, "dateObserved": observed, "pm25": pm25}).encode()


class State:
    def __init__(self) -> None:
        self.sensors: dict[str, dict] = defaultdict(new_sensor)
        self.clocks: dict[int, dict] = defaultdict(clock.new_clock)

    def run(self, step: FeedStep, records: list[SourceRecord]) -> StepResult:
        return step.run(records, self.sensors.__getitem__, self.clocks.__getitem__)


def records(values: list[bytes], key: str = SENSOR, first: int = 0) -> list[SourceRecord]:
    return [SourceRecord(key.encode(), v, 0, first + i, RECEIVED_MS) for i, v in enumerate(values)]


def at_event_time(value: bytes | str) -> int:
    """A record's Kafka time in ms when it entered Kafka as it happened (as ``OfflineRun`` has it)."""
    return round(datetime.fromisoformat(json.loads(value)["dateObserved"]).timestamp() * 1000)


def air_step() -> FeedStep:
    return FeedStep.of("air", SETTINGS.windows_of("air"), RULES, CITY, "ioc.air.raw")


def test_each_window_comes_out_once_per_batch_at_its_latest():
    result = State().run(air_step(), records([air(0, 10.0), air(0.5, 30.0), air(1, 50.0)]))
    minute = {
        k: WindowAggregate.model_validate_json(w.json) for k, w in result.aggregates.items() if k[0] == "1m"
    }
    assert sorted((k[2], a.count, a.fields["pm25"].mean) for k, a in minute.items()) == [
        (int(datetime(2026, 7, 6, 8, 0, tzinfo=UTC).timestamp()), 2, 20.0),
        (int(datetime(2026, 7, 6, 8, 1, tzinfo=UTC).timestamp()), 1, 50.0),
    ]
    assert result.sensors == {SENSOR: 0} and result.clocks == {0}


def test_a_record_read_again_after_a_restart_counts_nothing():
    state, step = State(), air_step()
    state.run(step, records([air(0), air(1)]))
    again = state.run(step, records([air(0), air(1)]))  # the same offsets: a repeat
    assert not again.aggregates and not again.anomalies and not again.dead_letters
    assert state.sensors[SENSOR]["position"] == [0, 1]


def test_a_reading_written_twice_to_kafka_counts_once():
    """An edge that died between Kafka's acknowledgement and its duplicate mark: the client's retry puts
    the same reading on the topic again, at a later offset."""
    state, step = State(), air_step()
    state.run(step, records([air(0, 10.0), air(1, 30.0)]))
    again = state.run(step, records([air(0, 10.0), air(2, 50.0)], first=2))
    assert again.repeats == 1 and not again.dead_letters
    minutes = {k[2]: WindowAggregate.model_validate_json(w.json).count for k, w in again.aggregates.items()}
    assert set(minutes.values()) == {1, 3}  # the new minute's window; the hour holds three readings
    assert state.sensors[SENSOR]["position"] == [0, 3]
    # Identified like the edge's marks: by eventId when it has one (another id, another reading) ...
    with_id = [json.dumps({**json.loads(air(3)), "eventId": n}).encode() for n in ("a", "b", "a")]
    assert state.run(step, records(with_id, first=4)).repeats == 1
    # ... and only among the sensor's recent readings: a repeat long after counts again.
    later = [air(10 + n) for n in range(RECENT_READINGS)]
    state.run(step, records(later, first=7))
    assert state.run(step, records([air(0, 10.0)], first=7 + RECENT_READINGS)).repeats == 0


def test_a_sensor_of_the_version_before_recent_readings_starts_with_none():
    version_1 = {k: v for k, v in new_sensor().items() if k != "recent"} | {"v": 1}
    assert upgrade_sensor(version_1) == new_sensor()
    with pytest.raises(ValueError, match="newer"):
        upgrade_sensor({**new_sensor(), "v": 3})


def test_invalid_and_mismatched_records_are_dead_letters_timed_by_kafka():
    bad = json.dumps({"sensorId": SENSOR, "dateObserved": "2026-07-06T08:00:00+07:00", "pm25": -5}).encode()
    result = State().run(air_step(), [*records([bad]), *records([air(1)], key="air-other", first=1)])
    assert [letter.reason for letter in result.dead_letters] == ["invalid", "invalid"]
    assert "pm25" in result.dead_letters[0].detail
    assert "is not the sensorId" in result.dead_letters[1].detail
    assert {letter.time for letter in result.dead_letters} == {
        datetime.fromtimestamp(RECEIVED_MS / 1000, UTC)
    }
    assert SENSOR in result.sensors  # the refused reading still tells the sensor's health


def test_a_reading_too_late_for_the_shortest_window_is_a_dead_letter_the_detectors_never_see():
    state, step = State(), air_step()
    state.run(step, records([air(0), air(30)]))
    detect_before = json.dumps(state.sensors[SENSOR]["detect"])
    late = state.run(step, records([air(5)], first=2))
    assert [letter.reason for letter in late.dead_letters] == ["late"]
    assert json.dumps(state.sensors[SENSOR]["detect"]) == detect_before
    assert {key[0] for key in late.aggregates} == {"1h"}  # still counted where a window was open


def replayed(batch: int) -> tuple[dict, list[bytes], list[bytes]]:
    """The shipped recording's air and water through the step in batches of ``batch`` per partition."""
    _, events = load_events(RECORDING)
    ordered = [e for e in in_event_time_order(events) if e.feed in ("air", "water")]
    windows: dict = {}
    anomalies, letters = [], []
    for feed in ("air", "water"):
        step, state = FeedStep.of(feed, SETTINGS.windows_of(feed), RULES, CITY, feed), State()
        by_partition = defaultdict(list)
        for event in (e for e in ordered if e.feed == feed):
            partition = partition_of(event.key.encode(), SETTINGS.partitions)
            offset = len(by_partition[partition])
            by_partition[partition].append(
                SourceRecord(event.key.encode(), event.value, partition, offset, at_event_time(event.value))
            )
        for partition_records in by_partition.values():
            for first in range(0, len(partition_records), batch):
                result = state.run(step, partition_records[first : first + batch])
                windows.update({k: w.json for k, w in result.aggregates.items()})
                anomalies += [a.to_json() for a in result.anomalies]
                letters += [d.to_json() for d in result.dead_letters]
    return windows, anomalies, letters


def test_batches_do_not_change_what_comes_out():
    one_by_one, in_batches = replayed(1), replayed(997)
    assert len(one_by_one[0]) > 1000 and one_by_one[1]
    assert one_by_one == in_batches


def test_the_offline_run_puts_each_key_in_the_partition_kafka_gives_it():
    kafka = DefaultPartitioner()  # aiokafka's, as the edge's producers use
    for key in (b"air-hoan-kiem", b"traffic-kim-lien", b"a", b"unregistered:x"):
        assert partition_of(key, 4) == kafka(key, [0, 1, 2, 3], [0, 1, 2, 3])
    run = OfflineRun(SETTINGS, RULES, CITY)
    _, events = load_events(RECORDING)
    assert sum(result.records for _, result in run.run(in_event_time_order(events))) == len(events)


@pytest.fixture(scope="module")
def version_0() -> dict:
    return json.loads((Path(__file__).parents[1] / "fixtures" / "sensor_table_v0.json").read_text())


def test_a_sensor_saved_by_the_previous_version_carries_on(version_0):
    """A worker upgraded in place reads the sensor table its previous version wrote (the fixture: a
    table value of the version before state versions, with the readings that followed and the windows
    that version then published)."""
    step, state = air_step(), State()
    state.sensors[version_0["sensor"]] = upgrade_sensor(version_0["state"])
    then = [
        SourceRecord(r["key"].encode(), r["value"].encode(), 0, r["offset"], at_event_time(r["value"]))
        for r in version_0["next"]
    ]
    result = state.run(step, then)
    published = {
        f"{k[0]} {k[2]}": WindowAggregate.model_validate_json(w.json) for k, w in result.aggregates.items()
    }
    expected = {key: WindowAggregate.model_validate(value) for key, value in version_0["published"].items()}
    assert published == expected


def test_event_and_kafka_times_at_the_calendars_ends_are_dead_letters_not_a_crash():
    # A producer that bypasses the edge can write any dateObserved and any record timestamp (CreateTime).
    def reading(observed: str, pm25: float = 20.0) -> bytes:
        return json.dumps({"sensorId": SENSOR, "dateObserved": observed, "pm25": pm25}).encode()

    extremes = [
        reading("0001-01-01T00:00:00+07:00"),
        reading("0001-01-01T00:00:00-07:00"),
        reading("0001-01-01T00:00:00+07:00", pm25=-1),  # invalid too: its sensor's health must not convert it
        reading("9999-12-31T23:59:59-07:00"),
    ]
    state, step = State(), air_step()
    result = state.run(step, records(extremes))
    assert [letter.reason for letter in result.dead_letters] == ["invalid"] * 4
    assert all("dateObserved" in letter.detail for letter in result.dead_letters[:2])
    assert not result.aggregates

    for i, timestamp_ms in enumerate((2**63 - 1, -(2**63), -1)):
        record = SourceRecord(SENSOR.encode(), air(i), 0, 10 + i, timestamp_ms)
        assert state.run(step, [record]).records == 1  # no ValueError from datetime.fromtimestamp
