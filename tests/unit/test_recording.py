"""The recording format, CSV loading, replay order and shifting, and the replay command's refusals."""

from __future__ import annotations

import gzip
import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.sources.replay import replay_plan
from ioc.city import load_city
from ioc.cli import app
from ioc.recording import (
    RecordedEvent,
    RecordingError,
    RecordingHeader,
    csv_feed,
    load_events,
    read_header,
    read_recording,
    write_recording,
)

EXAMPLES = Path(__file__).parents[2] / "examples"
T0 = datetime.fromisoformat("2026-07-07T06:00:00+07:00")


def event(key: str, minutes: int, feed: str = "air", **extra: object) -> RecordedEvent:
    at = T0 + timedelta(minutes=minutes)
    value = {"schemaVersion": 1, "sensorId": key, "dateObserved": at.isoformat(), "pm25": 10.0 + minutes}
    return RecordedEvent(feed, key, at, json.dumps(value | extra, separators=(",", ":")).encode())


@pytest.mark.parametrize("name", ["r.jsonl", "r.jsonl.gz"])
def test_a_recording_reads_back_what_was_written(tmp_path, name):
    path = tmp_path / name
    events = [
        event("air-a", 0),
        event("air-b", 1),
        RecordedEvent("air", "air-c", T0, b'{"x":1}', (("h", b"v"),)),
    ]
    header = RecordingHeader(source="test", feeds=["air"], start=T0)
    assert write_recording(events, path, header) == 3
    assert list(read_recording(path)) == events
    assert read_header(path).start == T0
    assert path.name.endswith(".gz") == (path.read_bytes()[:2] == b"\x1f\x8b")


def test_the_shipped_recording_is_a_readable_version_1_recording():
    header, events = load_events(EXAMPLES / "hanoi-morning.jsonl.gz")
    assert (header.format, header.version) == ("ioc-recording", 1)
    assert len(events) > 5000 and {e.feed for e in events} == set(header.feeds)


def test_a_file_that_is_no_recording_is_refused_clearly(tmp_path):
    plain = tmp_path / "events.jsonl"
    plain.write_text('{"feed": "air", "key": "a", "value": {}}\n')
    with pytest.raises(RecordingError, match="not an ioc recording"):
        list(read_recording(plain))
    newer = tmp_path / "newer.jsonl"
    newer.write_text('{"format": "ioc-recording", "version": 99, "source": "x", "feeds": []}\n')
    with pytest.raises(RecordingError, match="version 99; this ioc reads up to 1"):
        read_header(newer)


def test_a_bad_line_is_named_by_its_number(tmp_path):
    path = tmp_path / "r.jsonl.gz"
    write_recording([event("air-a", 0)], path, RecordingHeader(source="test", feeds=["air"]))
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    lines.append('{"feed": "noise", "key": "a", "value": {"dateObserved": "2026-07-07T06:00:00+07:00"}}')
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    with pytest.raises(RecordingError, match=r"r.jsonl.gz:3: feed 'noise' is not one of"):
        list(read_recording(path))


def test_csv_files_load_as_a_recording_validated_like_ingested_events(tmp_path):
    header, events = load_events(EXAMPLES / "csv", load_city("hanoi"))
    assert header.feeds == ["air", "water"]
    assert {e.feed for e in events} == {"air", "water"} and len(events) == 20
    assert csv_feed(Path("traffic-2026-01.csv")) == "traffic"

    bad = tmp_path / "air.csv"
    bad.write_text(
        "sensorId,dateObserved,pm25\nair-hoan-kiem,2026-07-07T06:00:00+07:00,12\nair-hoan-kiem,2026-07-07T06:01:00+07:00,-5\n"
    )
    with pytest.raises(RecordingError, match=r"air.csv:3: pm25: "):
        load_events(bad)
    unknown = tmp_path / "air-extra.csv"
    unknown.write_text("sensorId,dateObserved,colour\nair-hoan-kiem,2026-07-07T06:00:00+07:00,red\n")
    with pytest.raises(RecordingError, match=r"air-extra.csv:2: colour: Extra inputs are not permitted"):
        load_events(unknown)
    with pytest.raises(RecordingError, match="name it after its feed"):
        csv_feed(tmp_path / "readings.csv")


def test_replay_order_is_event_time_and_ties_keep_file_order():
    events = [event("air-a", 5), event("air-b", 0), event("air-a", 0, pm10=1.0), event("air-b", 0, pm10=2.0)]
    planned = replay_plan(events)
    assert [(e.key, e.event_time) for e in planned] == [
        ("air-b", T0), ("air-a", T0), ("air-b", T0), ("air-a", T0 + timedelta(minutes=5))
    ]  # fmt: skip
    assert json.loads(planned[0].value).get("pm10") is None and json.loads(planned[2].value)["pm10"] == 2.0


def test_shifting_moves_event_and_ingest_times_and_nothing_else():
    target = datetime.fromisoformat("2026-12-02T09:00:00+07:00")
    recorded = [event("air-a", 0, ingestTime=T0.isoformat()), event("air-a", 10)]
    shifted = replay_plan(recorded, target)
    assert [e.event_time for e in shifted] == [target, target + timedelta(minutes=10)]
    first = json.loads(shifted[0].value)
    assert datetime.fromisoformat(first["dateObserved"]) == target
    assert datetime.fromisoformat(first["ingestTime"]) == target
    assert first["pm25"] == 10.0 and first["sensorId"] == "air-a"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--namespace", "Not OK"], "a namespace is 1–48 of a-z"),
        (["--namespace", "ioc"], "'ioc' is the live system's own name"),
        (["--speed", "0"], "give a positive number or max"),
        (["--shift-to", "2026-07-07T06:00:00"], "has no UTC offset"),
    ],
)
def test_replay_refuses_bad_options_before_touching_kafka(options, message):
    result = CliRunner().invoke(app, ["replay", str(EXAMPLES / "hanoi-morning.jsonl.gz"), *options])
    assert result.exit_code == 2
    assert message in plain(result.output)


def test_replay_names_the_problem_in_a_file_that_is_no_recording(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    result = CliRunner().invoke(app, ["replay", str(path)])
    assert result.exit_code == 2
    assert "not an ioc recording" in plain(result.output)


def plain(output: str) -> str:
    """The CLI's message without rich's box and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())
