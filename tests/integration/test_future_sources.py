"""Sources that write straight to Kafka and the future bound, through the real broker.

``ioc replay`` bounds event time like the edge, unless asked (``--allow-future``); ``ioc simulate``
faster than real time from now runs ahead of the wall clock on purpose. What they do send must pass the
worker's own bound (event time against the record's Kafka time): the reading path is run over the raw
topic as the worker would read it, Kafka timestamps included.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from kafka import KafkaConsumer

from connectors.kafka import kafka_python_options
from ioc.recording import RecordedEvent, RecordingHeader, write_recording
from tests.conftest import isolated_settings, settings_env
from tests.online_offline import offline

pytestmark = pytest.mark.integration

SENSOR = "air-kim-lien"


def ioc(args: list[str], settings) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ioc", *args],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


def raw(settings) -> list[tuple[str, int]]:
    """(dateObserved, Kafka timestamp in ms) of every record of the air raw topic."""
    consumer = KafkaConsumer(
        settings.raw_topic("air"),
        **kafka_python_options(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=3000,
    )
    try:
        return sorted((json.loads(m.value)["dateObserved"], m.timestamp) for m in consumer)
    finally:
        consumer.close()


def reasons(settings) -> list[str]:
    """The reasons of the dead letters the worker's reading path gives for the air raw topic."""
    return sorted(json.loads(letter)["reason"] for letter in offline(settings, ["air"]).dead_letters)


def test_replay_refuses_events_from_the_future_unless_asked(servers, tmp_path):
    now = datetime.now(UTC).replace(microsecond=0)
    times = [now - timedelta(minutes=10), now - timedelta(minutes=9), now + timedelta(days=1)]
    events = [
        RecordedEvent(
            "air",
            SENSOR,
            at,
            json.dumps({"schemaVersion": 1, "sensorId": SENSOR, "dateObserved": at.isoformat(), "pm25": 30.0})
            .replace(" ", "")
            .encode(),
        )
        for at in times
    ]
    recording = tmp_path / "r.jsonl"
    write_recording(events, recording, RecordingHeader(source="test", feeds=["air"]))

    refusing = isolated_settings(servers)
    done = ioc(["replay", str(recording), "--speed", "max"], refusing)
    assert done.returncode == 1, done.stderr
    said = " ".join(done.stderr.split())
    assert "1 events refused" in said and "--allow-future" in said
    assert f"dateObserved is {times[2].isoformat()}" in said and "IOC_FUTURE_TOLERANCE_SECONDS" in said
    assert "2 events acknowledged by Kafka" in said
    assert [at for at, _ in raw(refusing)] == [t.isoformat() for t in times[:2]]
    assert reasons(refusing) == []

    allowing = isolated_settings(servers)
    done = ioc(["replay", str(recording), "--speed", "max", "--allow-future"], allowing)
    assert done.returncode == 0, done.stderr
    sent = raw(allowing)
    assert [at for at, _ in sent] == [t.isoformat() for t in times]
    assert sent[2][1] == times[2].timestamp() * 1000  # stamped with its own time: the replay's clock
    assert sent[0][1] > times[0].timestamp() * 1000  # the past ones as usual: when Kafka got them
    assert reasons(allowing) == []  # the worker's bound lets through what the user asked for


def test_a_simulation_faster_than_real_time_from_now_is_not_refused_by_the_worker(settings):
    begun = datetime.now(UTC)
    done = ioc(
        [
            "simulate",
            "--speed",
            "max",
            "--duration",
            "3600",
            "--interval",
            "600",
            "--feeds",
            "air",
            "--seed",
            "3",
        ],
        settings,
    )
    assert done.returncode == 0, done.stderr
    sent = raw(settings)
    last = max(datetime.fromisoformat(at) for at, _ in sent)
    assert last > begun + timedelta(minutes=45)  # an hour of event time from now, in seconds of wall time
    for at, kafka_ms in sent:
        assert datetime.fromisoformat(at).timestamp() * 1000 <= kafka_ms + 300_000
    assert reasons(settings) == []
