"""``ioc simulate`` through the real broker: every event it reports is in the raw topic."""

from __future__ import annotations

import subprocess
import sys

import pytest
from kafka import KafkaAdminClient

from connectors.kafka import kafka_python_options
from ioc.city import load_city
from tests.conftest import settings_env
from tests.processes import read_topic

pytestmark = pytest.mark.integration


def test_simulate_backfills_an_hour_into_the_raw_topic(settings):
    stations = load_city("hanoi").sensors_of("air")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ioc",
            "simulate",
            "--speed",
            "max",
            "--start",
            "2026-01-15T07:00:00+07:00",
            "--duration",
            "3600",
            "--interval",
            "600",
            "--seed",
            "5",
            "--feeds",
            "air",
        ],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    expected = 6 * len(stations)
    assert f"{expected:,} events acknowledged by Kafka" in done.stderr

    records = read_topic(settings, settings.raw_topic("air"), expect=expected)
    assert len(records) == expected
    assert {r["key"] for r in records} == {s.id for s in stations}
    assert all(r["key"] == r["value"]["sensorId"] for r in records)
    assert min(r["value"]["dateObserved"] for r in records) == "2026-01-15T07:00:00+07:00"

    admin = KafkaAdminClient(**kafka_python_options(settings))
    try:
        [topic] = admin.describe_topics([settings.raw_topic("air")])
    finally:
        admin.close()
    assert len(topic["partitions"]) == settings.partitions


def test_simulate_rejects_a_start_without_offset(settings):
    done = subprocess.run(
        [sys.executable, "-m", "ioc", "simulate", "--start", "2026-01-15T07:00:00", "--duration", "60"],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "has no UTC offset" in done.stderr
