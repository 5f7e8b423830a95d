"""The shipped recording replayed twice with ``ioc replay``, each into a fresh namespace with its own
worker, through the real broker: the same alerts both times (ids, rules, entities, episode starts,
severities), the live namespace untouched, and ``ioc record`` reading back what was replayed.
"""

from __future__ import annotations

import json
import re
import signal
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient

from connectors.kafka import create_topics, kafka_python_options
from connectors.redis_client import connect_sync
from ioc.alerts.rules import load_rules
from ioc.backtest.run import detect, manage
from ioc.city import load_city
from ioc.models.alert import AlertEvent
from ioc.recording import in_event_time_order, load_events, read_recording
from ioc.settings import Settings
from tests.conftest import isolated_settings
from tests.processes import IocProcess, read_topic, topic_ends, wait_for

pytestmark = pytest.mark.e2e

RECORDING = Path(__file__).parents[2] / "examples" / "hanoi-morning.jsonl.gz"
# What identifies an alert to an operator, and what a replay must reproduce.
AlertFacts = tuple[str, str, str, str, str]  # id, rule, entity, episode start, severity


def offline_alerts(settings: Settings) -> dict[str, AlertFacts]:
    """The recording through the same pure detectors and alert manager, in one process."""
    rules, city = load_rules(settings.rules), load_city(settings.city)
    _, events = load_events(RECORDING)
    outcome = detect(in_event_time_order(events), rules, city, settings)
    return {alert.id: _facts(alert) for alert in manage(outcome.anomalies, rules, city).alerts}


def _facts(alert) -> AlertFacts:
    return (alert.id, alert.rule, alert.entity, alert.episode_start.isoformat(), str(alert.severity))


def streamed_alerts(settings: Settings) -> dict[str, AlertFacts]:
    """Each alert's latest version (highest revision) on the namespace's alerts topic."""
    latest: dict[str, AlertEvent] = {}
    for record in read_topic(settings, settings.alerts_topic, expect=1_000_000, timeout=3):
        event = AlertEvent.model_validate(record["value"])
        if event.alert.id not in latest or event.revision > latest[event.alert.id].revision:
            latest[event.alert.id] = event
    return {alert_id: _facts(event.alert) for alert_id, event in latest.items()}


def all_topics(settings: Settings) -> set[str]:
    admin = KafkaAdminClient(**kafka_python_options(settings))
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def redis_snapshot(settings: Settings) -> dict[str, bytes]:
    store = connect_sync(settings)
    try:
        keys = sorted(store.scan_iter(match=f"{settings.redis_prefix}:*", count=1000))
        return {key.decode(): store.dump(key) for key in keys}
    finally:
        store.close()


@dataclass
class Replays:
    live: Settings
    namespaces: list[Settings]
    expected: dict[str, AlertFacts]
    alerts: list[dict[str, AlertFacts]]
    live_before: tuple[dict, dict]
    live_after: tuple[dict, dict]
    topics_before: set[str]
    topics_after: set[str]


@pytest.fixture(scope="module")
def replays(servers, tmp_path_factory) -> Replays:
    live = isolated_settings(servers)
    tmp = tmp_path_factory.mktemp("replay")
    # The live namespace has topics and a picture of its own that the replays must not touch.
    create_topics(live)
    replay_live = IocProcess(["replay", str(RECORDING), "--speed", "max"], live, tmp / "replay-live.log")
    assert replay_live.process.wait(120) == 0, replay_live.log_file.read_text()
    store = connect_sync(live)
    store.set(live.redis_key("picture", "marker"), "live")
    store.close()
    live_topics = sorted(t for t in all_topics(live) if t.startswith(f"{live.topic_prefix}."))
    live_before = (topic_ends(live, live_topics), redis_snapshot(live))
    topics_before = all_topics(live)

    expected = offline_alerts(live)
    namespaces = [live.in_namespace(f"{live.topic_prefix}r{n}") for n in (1, 2)]
    alerts = []
    for number, space in enumerate(namespaces, start=1):
        args = ["replay", str(RECORDING), "--speed", "max", "--namespace", space.namespace]
        replay = IocProcess(args, live, tmp / f"replay-{number}.log")
        assert replay.process.wait(120) == 0, replay.log_file.read_text()
        worker = IocProcess(["worker", "--namespace", space.namespace], live, tmp / f"worker-{number}.log")
        try:
            wait_for(lambda space=space: streamed_alerts(space) == expected, timeout=240, every=3,
                     processes=[worker])  # fmt: skip
        finally:
            worker.stop()
        alerts.append(streamed_alerts(space))
    return Replays(
        live,
        namespaces,
        expected,
        alerts,
        live_before,
        (topic_ends(live, live_topics), redis_snapshot(live)),
        topics_before,
        all_topics(live),
    )


def test_two_replays_into_fresh_namespaces_raise_the_same_alerts(replays):
    first, second = replays.alerts
    assert len(first) >= 10  # the recording's scenarios: water, air, traffic and sensor-health alerts
    assert first == second
    assert first == replays.expected  # …and the ones the offline run of the same code gives


def test_a_namespaced_replay_leaves_the_live_topics_and_keys_untouched(replays):
    assert replays.live_after == replays.live_before
    # Kafka's own topics (__consumer_offsets, created by the first consumer group) aside.
    new_topics = {t for t in replays.topics_after - replays.topics_before if not t.startswith("__")}
    names = [space.namespace for space in replays.namespaces]
    assert new_topics and all(topic.startswith(tuple(names)) for topic in new_topics), new_topics
    for space in replays.namespaces:
        assert redis_snapshot(space), f"the worker in {space.namespace} wrote no picture"


def test_record_reads_back_what_was_replayed(replays, tmp_path):
    space = replays.namespaces[0]
    out = tmp_path / "recorded.jsonl.gz"
    args = ["record", "--out", str(out), "--feeds", "air,water", "--namespace", space.namespace]
    args += ["--from", "2026-07-07T07:00:00+07:00", "--to", "2026-07-07T08:00:00+07:00"]
    recorder = IocProcess(args, replays.live, tmp_path / "record.log")
    assert recorder.process.wait(120) == 0, recorder.log_file.read_text()

    def wanted(event) -> bool:
        return event.feed in ("air", "water") and "07:00:00" <= event.event_time.isoformat()[11:19] < "08"

    original = [e for e in in_event_time_order(load_events(RECORDING)[1]) if wanted(e)]
    recorded = list(read_recording(out))
    assert len(recorded) == len(original) > 0
    # Each sensor's events come back in event-time order, byte for byte.
    by_key = defaultdict(list)
    for event in recorded:
        by_key[event.key].append((event.event_time, json.loads(event.value)))
    for key, events in by_key.items():
        assert events == [(e.event_time, json.loads(e.value)) for e in original if e.key == key]


@pytest.mark.parametrize("inherited", ["default", "ignored"])
def test_ctrl_c_stops_a_replay_cleanly_and_says_exactly_how_far_it_got(settings, tmp_path, inherited):
    raw_topics = [settings.raw_topic(feed) for feed in ("air", "traffic", "water")]
    # "ignored": as a script's background job (or a CI step) starts, with SIGINT ignored; children inherit it.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if inherited == "ignored" else None
    try:
        replay = IocProcess(["replay", str(RECORDING), "--speed", "60"], settings, tmp_path / "replay.log")
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    try:
        wait_for(lambda: sum(topic_ends(settings, raw_topics).values()) > 0, timeout=60, processes=[replay])
        replay.process.send_signal(signal.SIGINT)
        assert replay.process.wait(30) == 130
    finally:
        replay.stop()
    said = re.search(r"Stopped: ([\d,]+) of ([\d,]+) events", replay.log_file.read_text())
    assert said, replay.log_file.read_text()
    sent, total = (int(number.replace(",", "")) for number in said.groups())
    assert 0 < sent < total
    assert sum(topic_ends(settings, raw_topics).values()) == sent  # nothing half-sent, nothing more
