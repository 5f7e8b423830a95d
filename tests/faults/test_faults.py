"""Fault tests (``make faults``): the simulator produces a seeded, scenario-injected half day of air,
traffic and water at a steady rate while one fault is injected mid-stream; then every event must be
counted exactly once in the window aggregates, the alert ids must be the offline run's (each opened
once, no (id, revision) twice) and so every ground-truth scenario the offline run alerts is alerted.

Faults: a worker SIGKILLed and restarted; one of two workers stopped (rebalance) and started again; the
Kafka broker stopped and restarted on its data; Redis stopped and restarted empty (the picture then
rebuilt from Kafka); the API SIGKILLed while a client pushes the same events through
``POST /v1/ingest/{feed}`` (every acknowledged item on the raw topic and counted).

Kafka and Redis are the module's own (``harness.start_own_servers``), so restarting them breaks no other
test. Workers run under a supervisor that restarts them when they exit (docs/operations.md asks for
one); exits the test did not cause are reported as ``worker_exits``. Each test prints one ``FAULT`` line
with its figures (run with ``-s``).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from connectors.kafka import create_topics
from ioc.city import load_city
from ioc.feeds import MODELS
from ioc.recording import RecordedEvent
from ioc.settings import Settings
from tests.conftest import TEST_KEYS, free_port
from tests.faults.harness import (
    AlertTally,
    OwnServers,
    Reference,
    Supervised,
    Tally,
    TopicReader,
    agg_topics,
    alert_tally,
    assert_exactly_once_and_alerted,
    build_reference,
    counted_windows,
    end_offsets_total,
    figures,
    finished,
    latest_revisions,
    lost_events,
    picture_differences,
    raw_topics,
    record,
    simulate_args,
    start_own_servers,
    tally,
    until,
)
from tests.processes import IocProcess, committed_offsets

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(900)]

RATE = 400  # events/s: a steady live rate one worker keeps up with on a shared 2-core machine
# Seconds for the workers to catch up and commit after a fault. Processing takes seconds; after a
# restart Faust's commits can creep over the events it re-read (a commit interval per offset or two, for
# tens of offsets: docs/operations.md, "Commits creep after a restart"), so this is generous.
SETTLE_TIMEOUT = 360


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnServers]:
    servers = start_own_servers(tmp_path_factory.mktemp("fault-infra"))
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="module")
def recording(
    own: OwnServers, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[RecordedEvent], Reference]:
    settings = own.namespace()
    events, truth = record(settings, tmp_path_factory.mktemp("fault-recording"))
    return events, build_reference(events, truth, settings)


@pytest.fixture
def reference(recording: tuple[list[RecordedEvent], Reference]) -> Reference:
    return recording[1]


# --- one run ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def streaming(
    own: OwnServers, tmp_path: Path, workers: Sequence[str] = ("worker",)
) -> Iterator[tuple[Settings, list[Supervised], IocProcess]]:
    """A fresh namespace, supervised workers in it, and the simulator producing to it; all stopped after."""
    settings = own.namespace()
    create_topics(settings)
    supervised = [Supervised(name, ["worker"], settings, tmp_path) for name in workers]
    args = [*simulate_args(tmp_path / "truth.jsonl"), "--speed", "max", "--rate", str(RATE)]
    stream = IocProcess(args, settings, tmp_path / "simulator.log")
    try:
        yield settings, supervised, stream
    finally:
        stream.stop()
        for worker in supervised:
            worker.stop()


def produced(settings: Settings) -> int:
    return end_offsets_total(settings, raw_topics(settings))


def published(settings: Settings) -> int:
    return end_offsets_total(settings, agg_topics(settings))


def settle(settings: Settings, workers: list[Supervised]) -> tuple[dict[str, tuple[int | None, int]], float]:
    """Until the consumer group has committed every raw event and anomaly (Faust flushes its producer
    before it commits, so the outputs are in Kafka then). Returns the partitions still behind after
    SETTLE_TIMEOUT, as (committed, end) (the checks that follow say what is missing), and the seconds from
    the worker catching up (its last aggregate out, or the settling's start) to every offset committed."""
    topics = [*raw_topics(settings), settings.anomalies_topic]
    outputs = {"count": published(settings), "at": time.monotonic()}

    def behind() -> dict[str, tuple[int | None, int]]:
        offsets = committed_offsets(settings, settings.worker_id, topics)
        return {tp: (done, end) for tp, (done, end) in offsets.items() if (done or 0) != end}

    def settled() -> bool:
        count = published(settings)
        if count != outputs["count"]:
            outputs.update(count=count, at=time.monotonic())
        return not behind()

    with contextlib.suppress(AssertionError):
        until(settled, timeout=SETTLE_TIMEOUT, every=0.5, supervised=workers)
    return behind(), time.monotonic() - outputs["at"]


def until_produced(
    settings: Settings, count: int, workers: list[Supervised], stream: IocProcess, published_above: int = 0
) -> int:
    """Wait until the simulator has produced ``count`` events and the workers published more than
    ``published_above`` aggregates (mid-stream, with the workers busy); returns the number produced."""
    until(
        lambda: produced(settings) >= count and published(settings) > published_above,
        timeout=120,
        supervised=workers,
        processes=[stream],
    )
    return produced(settings)


def check(
    name: str,
    settings: Settings,
    reference: Reference,
    workers: list[Supervised],
    simulated: bool = True,
    **extra: object,
) -> tuple[Tally, AlertTally, list[tuple[str, dict]]]:
    """Once the workers have settled: read the outputs, print the figures, assert exactly once, the
    alerts, and every offset committed."""
    behind, lag_to_zero = settle(settings, workers)
    uncommitted = sum(end - (done or 0) for done, end in behind.values())
    aggregates = TopicReader(settings, agg_topics(settings))
    alerts = TopicReader(settings, [settings.alerts_topic])
    try:
        counts = tally(reference.counts, counted_windows(aggregates.read()), produced(settings), settings)
        alert_records = alerts.read()
    finally:
        aggregates.close()
        alerts.close()
    alerted = alert_tally(alert_records, reference, settings)
    exits = [code for worker in workers for code in worker.exits]
    # Lag to zero: from the worker catching up to every offset committed (two commit intervals at most).
    extra.update(worker_exits=exits, uncommitted=uncommitted, lag_to_zero_s=round(lag_to_zero, 1))
    print("\n" + figures(name, counts, alerted, reference, **extra))
    if not counts.exact:  # where the lost events were: topic, partition, offsets, event times
        for (topic, partition), lost in lost_events(settings, counts).items():
            print(f"  lost on {topic}[{partition}]: {len(lost)} events, {lost[0]} … {lost[-1]}")
    if behind:
        print(f"  uncommitted (committed, end): {behind}")
    if simulated:  # the simulator's idempotent producer wrote each event once, across the fault too
        assert counts.produced == len(reference.events), "the raw topics do not hold the recording"
    assert_exactly_once_and_alerted(counts, alerted, reference)
    assert uncommitted == 0, "the consumer group stopped committing a partition"
    return counts, alerted, alert_records


# --- the faults ---------------------------------------------------------------------------------------


def test_worker_killed_mid_stream_and_restarted(own: OwnServers, reference: Reference, tmp_path: Path):
    with streaming(own, tmp_path) as (settings, [worker], stream):
        # Mid-stream, with the worker busy: a third produced and aggregates coming out.
        at = until_produced(settings, len(reference.events) // 3, [worker], stream)
        worker.kill()
        worker.restart()
        until(lambda: finished(stream), timeout=180, supervised=[worker])
        check("worker SIGKILL", settings, reference, [worker], killed_at_produced=at)


def test_one_of_two_workers_stopped_and_started_again(own: OwnServers, reference: Reference, tmp_path: Path):
    with streaming(own, tmp_path, ("worker-a", "worker-b")) as (settings, workers, stream):
        first, second = workers
        stopped_at = until_produced(settings, len(reference.events) // 4, workers, stream)
        assert second.stop() in (0, -15)  # a clean leave: the group rebalances onto the first
        # The first worker carries on alone for a while (its output grows), then the second comes back.
        before = published(settings)
        started_at = until_produced(settings, len(reference.events) // 2, [first], stream, before)
        second.restart()
        until(lambda: finished(stream), timeout=180, supervised=workers)
        check(
            "rebalance",
            settings,
            reference,
            workers,
            stopped_at_produced=stopped_at,
            started_at_produced=started_at,
        )


def test_kafka_broker_stopped_and_restarted(own: OwnServers, reference: Reference, tmp_path: Path):
    with streaming(own, tmp_path) as (settings, [worker], stream):
        at = until_produced(settings, len(reference.events) // 3, [worker], stream)
        began = time.monotonic()
        own.kafka.stop()  # SIGTERM: a clean broker shutdown, the log dir kept
        own.kafka.start(timeout=180)  # the same ports and data: a restarted broker
        outage = time.monotonic() - began
        until(lambda: finished(stream), timeout=240, supervised=[worker])
        check(
            "kafka restart",
            settings,
            reference,
            [worker],
            stopped_at_produced=at,
            broker_down_s=round(outage, 1),
        )


def test_redis_stopped_and_restarted_picture_rebuilt(own: OwnServers, reference: Reference, tmp_path: Path):
    with streaming(own, tmp_path) as (settings, [worker], stream):
        at = until_produced(settings, len(reference.events) // 3, [worker], stream)
        own.redis.stop()
        # The stream goes on while Redis is down (a sixth of the run), then Redis comes back empty.
        until_produced(settings, at + len(reference.events) // 6, [worker], stream)
        own.redis.start(timeout=30)
        until(lambda: finished(stream), timeout=180, supervised=[worker])
        _, alerted, alert_records = check(
            "redis restart", settings, reference, [worker], stopped_at_produced=at
        )
        revisions = latest_revisions(alert_records)

        # What the running worker alone put back: the windows and alerts that changed after the restart.
        missing = picture_differences(settings, reference, revisions)
        # The documented recovery (README, docs/operations.md): ``ioc picture rebuild``.
        rebuild = IocProcess(["picture", "rebuild"], settings, tmp_path / "rebuild.log")
        assert rebuild.process.wait(300) == 0, rebuild.log_file.read_text()
        assert picture_differences(settings, reference, revisions) == []
        alerts = TopicReader(settings, [settings.alerts_topic])
        try:
            after = alert_tally(alerts.read(), reference, settings)
        finally:
            alerts.close()
        print(
            f"FAULT redis restart (rebuild): picture_missing_before_rebuild={len(missing)} {missing[:3]} "
            f"picture_missing_after=0 alert_events_after_rebuild={after.events} "
            f"opened_twice_after={after.opened_twice} redelivered_after={after.redelivered}"
        )
        assert after == alerted  # the rebuild published nothing


# --- the API killed during ingest ------------------------------------------------------------------------

BATCH = 50


class Client(threading.Thread):
    """An integrator: pushes the items in order, BATCH at a time at RATE items/s, each batch until a 200
    (a connection error or a 5xx: wait and send the same batch again, as the API asks)."""

    def __init__(self, url: str, batches: list[tuple[str, list[dict]]]) -> None:
        super().__init__(daemon=True)
        self.url, self.batches = url, batches
        self.acknowledged: set[str] = set()  # eventIds in a 200's accepted or duplicates
        self.sent = 0  # batches acknowledged
        self.retries = 0
        self.failures: list[str] = []  # answers other than 200, connection errors
        self.rejected: list[dict] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as error:  # reported by the test, not lost in the thread
            self.error = error

    def _run(self) -> None:
        started = time.monotonic()
        headers = {"X-API-Key": TEST_KEYS["integrator"]}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as http:
            for n, (feed, items) in enumerate(self.batches):
                time.sleep(max(0.0, started + n * BATCH / RATE - time.monotonic()))
                while True:
                    try:
                        response = http.post(f"/v1/ingest/{feed}", json=items)
                    except httpx.TransportError as error:
                        response = None
                        self.failures.append(type(error).__name__)
                    if response is not None and response.status_code == 200:
                        break
                    if response is not None:
                        self.failures.append(str(response.status_code))
                        assert response.status_code >= 500, response.text
                    self.retries += 1
                    time.sleep(0.2)  # the API is restarting; the retry is the client's own back-off
                body = response.json()
                self.rejected += body["rejected"]
                assert body["accepted"] + body["duplicates"] == len(items), body
                self.acknowledged.update(item["eventId"] for item in items)
                self.sent += 1


def ingest_items(events: list[RecordedEvent]) -> tuple[list[RecordedEvent], list[tuple[str, list[dict]]]]:
    """The events that validate (the API would reject the others to the DLQ, where the worker never sees
    them), each with an eventId, in batches of one feed each, in the recording's order."""
    city = load_city("hanoi")
    kept: list[RecordedEvent] = []
    batches: list[tuple[str, list[dict]]] = []
    for n, event in enumerate(events):
        try:
            MODELS[event.feed].model_validate_json(event.value, context={"city": city})
        except ValidationError:
            continue
        item = json.loads(event.value) | {"eventId": f"e{n}"}
        kept.append(RecordedEvent(event.feed, event.key, event.event_time, json.dumps(item).encode()))
        if not batches or batches[-1][0] != event.feed or len(batches[-1][1]) >= BATCH:
            batches.append((event.feed, []))
        batches[-1][1].append(item)
    return kept, batches


def test_api_killed_during_ingest(own: OwnServers, recording, tmp_path: Path):
    events, full = recording
    kept, batches = ingest_items(events)
    settings = own.namespace()
    reference = build_reference(kept, full.truth, settings)
    create_topics(settings)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    worker = Supervised("worker", ["worker"], settings, tmp_path)
    api = IocProcess(["api", "--port", str(port)], settings, tmp_path / "api-1.log")
    client = Client(url, batches)
    try:
        until(
            lambda: httpx.get(f"{url}/healthz").status_code == 200,
            timeout=60,
            supervised=[worker],
            processes=[api],
        )
        client.start()
        until(
            lambda: client.sent >= len(batches) // 3 and published(settings) > 0,
            timeout=120,
            supervised=[worker],
            processes=[api],
        )
        killed_at = client.sent
        api.process.kill()  # SIGKILL, most likely with a request in flight (the client never pauses)
        api.stop()
        api = IocProcess(["api", "--port", str(port)], settings, tmp_path / "api-2.log")
        until(lambda: not client.is_alive(), timeout=240, supervised=[worker], processes=[api])
        assert client.error is None, repr(client.error)
        assert not client.rejected, client.rejected[:3]

        raw = TopicReader(settings, raw_topics(settings))
        try:
            written = Counter(value["eventId"] for _topic, value in raw.read())
        finally:
            raw.close()
        missing = client.acknowledged - written.keys()
        twice = {event_id: n for event_id, n in written.items() if n > 1}
        print(
            f"\nFAULT api SIGKILL (ingest): items={len(kept)} acknowledged={len(client.acknowledged)} "
            f"on_raw_topic={len(written)} raw_records={sum(written.values())} "
            f"acknowledged_missing={len(missing)} "
            f"written_twice={len(twice)} retries={client.retries} failures={Counter(client.failures)} "
            f"killed_after_batches={killed_at}/{len(batches)}"
        )
        assert client.acknowledged == {item["eventId"] for _feed, items in batches for item in items}
        assert not missing, f"{len(missing)} acknowledged items are not on the raw topics"
        check(
            "api SIGKILL (ingest)",
            settings,
            reference,
            [worker],
            simulated=False,
            items_written_twice=len(twice),
        )
    finally:
        api.stop()
        worker.stop()
