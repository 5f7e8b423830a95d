"""Online = offline: the worker and the reading path run in one process give byte-identical outputs."""

from __future__ import annotations

import pytest

from connectors.kafka import create_topics
from tests.online_offline import offline, settled, streamed
from tests.processes import IocProcess, wait_for

pytestmark = pytest.mark.e2e

RECORDING = "examples/hanoi-morning.jsonl.gz"
FEEDS = ["air", "traffic", "water", "transit"]


def test_the_shipped_recording_gives_the_same_windows_anomalies_and_dead_letters(settings, tmp_path):
    create_topics(settings)
    replay = IocProcess(["replay", RECORDING, "--speed", "max"], settings, tmp_path / "replay.log")
    assert replay.process.wait(120) == 0, replay.log_file.read_text()
    worker = IocProcess(["worker"], settings, tmp_path / "worker.log")
    try:
        wait_for(lambda: settled(settings, FEEDS), timeout=300, every=2, processes=[worker])
    finally:
        worker.stop()
    online, expected = streamed(settings, FEEDS), offline(settings, FEEDS)
    assert len(expected.aggregates) > 1000 and expected.anomalies and expected.dead_letters
    assert online.differences(expected) == []
