"""A worker killed with SIGKILL mid-stream and restarted: every window counts every event exactly once."""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime, timedelta

import pytest

from connectors.kafka import EventProducer, create_topics
from ioc.alerts.rules import load_rules
from ioc.city import load_city
from ioc.feeds.air.simulator import AirSimulator
from ioc.recording import RecordedEvent
from ioc.step import OfflineRun
from tests.processes import IocProcess, read_topic, wait_for

pytestmark = pytest.mark.e2e

START = datetime.fromisoformat("2026-01-15T07:00:00+07:00")


def simulated(minutes: int) -> list:
    city = load_city("hanoi")
    sim = AirSimulator(city, start=START, interval=timedelta(seconds=5), duration=timedelta(minutes=minutes))
    return list(sim.events())


def expected_counts(events, settings) -> dict[tuple[str, str], int]:
    """The shortest window's final counts, through the worker's own reading path, offline."""
    shortest = settings.windows_of("air")[0].label
    run = OfflineRun(settings, load_rules(settings.rules), load_city(settings.city))
    counts = {}
    for _, result in run.run(RecordedEvent.of(e) for e in events):
        assert not result.dead_letters
        for (label, sensor_id, _), aggregate in result.aggregates.items():
            if label == shortest:
                counts[(sensor_id, aggregate.window_start.isoformat())] = aggregate.count
    return counts


def produced_counts(settings, expect: int, timeout: float = 20) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for record in read_topic(settings, settings.agg_topic("air"), expect=expect, timeout=timeout):
        value = record["value"]
        key = (value["sensorId"], datetime.fromisoformat(value["windowStart"]).isoformat())
        counts[key] = max(counts.get(key, 0), value["count"])
    return counts


async def produce(settings, events) -> None:
    async with EventProducer(settings) as producer:
        await producer.send_many((settings.raw_topic("air"), e.sensor_id, e.to_json()) for e in events)


def test_sigkill_and_restart_neither_loses_nor_double_counts(settings, tmp_path):
    # The killed worker's partitions move on once its session times out.
    settings = settings.model_copy(update={"worker_session_timeout_seconds": 10})
    events = simulated(minutes=6)
    half = len(events) // 2
    create_topics(settings)
    expected = expected_counts(events, settings)

    worker = IocProcess(["worker"], settings, tmp_path / "worker-1.log")
    try:
        asyncio.run(produce(settings, events[:half]))
        # Aggregates are published once per batch: wait until they account for half the first part.
        wait_for(
            lambda: sum(produced_counts(settings, expect=half, timeout=3).values()) >= half // 2,
            timeout=120,
            every=1,
            processes=[worker],
        )
        worker.process.send_signal(signal.SIGKILL)  # before its next offset commit, most likely
        worker.stop()
        asyncio.run(produce(settings, events[half:]))
        worker = IocProcess(["worker"], settings, tmp_path / "worker-2.log")

        def complete():
            counts = produced_counts(settings, expect=len(events))
            return counts if all(counts.get(k) == v for k, v in expected.items()) else None

        try:
            counts = wait_for(complete, timeout=120, every=2, processes=[worker])
        except AssertionError:
            counts = produced_counts(settings, expect=len(events))
        wrong = {k: (counts.get(k), v) for k, v in expected.items() if counts.get(k) != v}
        # The restarted worker's warnings (a stalled partition names what its consumer holds) say why.
        warnings = [line for line in worker.log_file.read_text().splitlines() if "WARNING" in line]
        assert not wrong, (
            f"{len(wrong)} windows differ (got, expected): {dict(list(wrong.items())[:5])}; "
            f"the restarted worker's warnings: {warnings[-10:]}"
        )
        assert set(counts) == set(expected)
    finally:
        worker.stop()
