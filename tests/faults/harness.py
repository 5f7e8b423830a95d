"""What the fault tests share: a Kafka and a Redis of their own (so they can be stopped and restarted),
the offline reference a seeded simulator run gives, supervised workers, and the checks.

The reference is the simulator's own recording of the run (``ioc simulate … --out``: exactly the events
it produces to Kafka, deterministic for the seed), run offline through the feeds' reading path
(``ioc.step``, the worker's own) and the alert manager (``ioc.backtest.run``). A stream run under a fault
must give the same window counts (each event once), the same alert ids (each opened once) and so alert
the same ground-truth scenarios.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from connectors.kafka import kafka_python_options
from connectors.redis_client import connect_sync
from ioc.alerts.rules import load_rules
from ioc.backtest.run import detect, manage, raised_alerts
from ioc.backtest.scoring import RaisedAlert, TruthScenario, load_truth, score
from ioc.city import load_city
from ioc.infra import LocalKafka, LocalRedis
from ioc.models.alert import AlertChange, AlertEvent
from ioc.recording import RecordedEvent, read_recording
from ioc.settings import Settings
from ioc.step import OfflineRun
from tests.conftest import TEST_CARD_KEY, TEST_KEYS, local_infra_settings, settings_env
from tests.processes import IocProcess, topic_ends, wait_for

# Consumers without a group (to read topics) warn that auto-commit is off, once per consumer.
logging.getLogger("kafka.coordinator.consumer").setLevel(logging.ERROR)

# (feed, window label, sensor, window start as epoch seconds): one window of one sensor.
Window = tuple[str, str, str, int]

# A seeded half day of air, traffic and water with every scenario kind of those feeds (the transit
# kinds need the transit feed, whose taps would multiply the volume). July, as in the ground-truth test:
# the simulated air does not reach "Xấu" on its own then. ~12k events.
FEEDS = ("air", "traffic", "water")
KINDS = "pollution_episode,traffic_incident,water_contamination,stuck_value,spike,dropout,out_of_range"
START = "2026-07-06T00:00:00+07:00"
DURATION_SECONDS = 12 * 3600
SEED = 11


def simulate_args(truth: Path) -> list[str]:
    """``ioc simulate`` arguments shared by the recording and the run producing to Kafka."""
    return [
        "simulate",
        "--start",
        START,
        "--duration",
        str(DURATION_SECONDS),
        "--seed",
        str(SEED),
        "--feeds",
        ",".join(FEEDS),
        "--scenarios",
        KINDS,
        "--truth",
        str(truth),
    ]


# --- servers of their own ----------------------------------------------------------------------------


@dataclass
class OwnServers:
    """A Kafka broker and a Redis only the fault tests use: stopping them breaks no other test."""

    kafka: LocalKafka
    redis: LocalRedis

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    @property
    def redis_url(self) -> str:
        return self.redis.url

    def namespace(self, **overrides: object) -> Settings:
        """Settings on these servers with topics, consumer group and Redis keys nobody else uses."""
        namespace = f"f{uuid.uuid4().hex[:10]}"
        values: dict[str, Any] = {
            "kafka_bootstrap": self.bootstrap,
            "redis_url": self.redis_url,
            "topic_prefix": namespace,
            "redis_prefix": namespace,
            "worker_id": namespace,
            "partitions": 2,
            # A killed worker's partitions move on after this; the default 30 s would dominate the run.
            "worker_session_timeout_seconds": 10,
            "api_keys": ",".join(f"{role}:{key}" for role, key in TEST_KEYS.items()),
            "card_hmac_key": TEST_CARD_KEY,
        }
        return Settings(**(values | overrides))

    def stop(self) -> None:
        self.kafka.stop()
        self.redis.stop()


def start_own_servers(run_dir: Path) -> OwnServers:
    local = local_infra_settings(run_dir, partitions=2)
    servers = OwnServers(LocalKafka(local), LocalRedis(local))
    try:
        servers.kafka.start(timeout=180)
        servers.redis.start(timeout=30)
    except BaseException:
        servers.stop()
        raise
    return servers


# --- the offline reference ---------------------------------------------------------------------------


@dataclass
class Reference:
    events: list[RecordedEvent]
    truth: list[TruthScenario]
    counts: dict[Window, int]  # each window's final count
    alert_ids: set[str]  # the alerts the offline alert manager opens
    scenarios_alerted: set[str]  # ground-truth scenarios the offline alerts recall


def record(settings: Settings, directory: Path) -> tuple[list[RecordedEvent], list[TruthScenario]]:
    """The events the seeded simulator run produces, and its ground truth, from ``--out``."""
    recording, truth = directory / "run.jsonl", directory / "truth.jsonl"
    subprocess.run(
        [sys.executable, "-m", "ioc", *simulate_args(truth), "--out", str(recording)],
        env=settings_env(settings),
        check=True,
        capture_output=True,
    )
    return list(read_recording(recording)), load_truth(truth)


def offline_counts(events: Iterable[RecordedEvent], settings: Settings) -> dict[Window, int]:
    """Each window's final count, through the feeds' reading path (``ioc.step``) as the worker runs it."""
    rules, city = load_rules(settings.rules), load_city(settings.city)
    counts: dict[Window, int] = {}
    for feed, result in OfflineRun(settings, rules, city).run(events):
        for (label, sensor_id, start), aggregate in result.aggregates.items():
            counts[(feed, label, sensor_id, start)] = aggregate.count
    return counts


def build_reference(events: list[RecordedEvent], truth: list[TruthScenario], settings: Settings) -> Reference:
    rules, city = load_rules(settings.rules), load_city(settings.city)
    managed = manage(detect(events, rules, city, settings).anomalies, rules, city)
    recalled = score(raised_alerts(managed), truth, rules).recalled
    return Reference(events, truth, offline_counts(events, settings), set(managed.opened_at), set(recalled))


# --- reading topics ----------------------------------------------------------------------------------


class TopicReader:
    """Every record of some topics, read incrementally up to their end offsets at each call."""

    def __init__(self, settings: Settings, topics: Sequence[str], positions: bool = False) -> None:
        self.consumer = KafkaConsumer(
            **kafka_python_options(settings), enable_auto_commit=False, group_id=None
        )
        self.partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(self.consumer.partitions_for_topic(topic))
        ]
        self.consumer.assign(self.partitions)
        self.consumer.seek_to_beginning(*self.partitions)
        self.records: list[tuple[str, dict]] = []  # (topic, value)
        self.positions: list[tuple[int, int]] = []  # (partition, offset) of each record, when asked for
        self.keep_positions = positions

    def read(self) -> list[tuple[str, dict]]:
        """Everything up to the current end (what was there when called), added to ``records``."""
        end = self.consumer.end_offsets(self.partitions)
        while any(self.consumer.position(tp) < end[tp] for tp in self.partitions):
            for tp, messages in self.consumer.poll(timeout_ms=1000).items():
                self.records += [(tp.topic, json.loads(m.value)) for m in messages]
                if self.keep_positions:
                    self.positions += [(tp.partition, m.offset) for m in messages]
        return self.records

    def read_positions(self) -> list[tuple[str, dict, int, int]]:
        """``read``, with each record's partition and offset."""
        records = self.read()
        return [(t, v, p, o) for (t, v), (p, o) in zip(records, self.positions, strict=True)]

    def close(self) -> None:
        self.consumer.close()


def end_offsets_total(settings: Settings, topics: Sequence[str]) -> int:
    """Records ever written to ``topics`` (no retention in a test): the sum of their end offsets."""
    return sum(topic_ends(settings, list(topics)).values())


def lost_events(settings: Settings, counts: Tally) -> dict[tuple[str, int], list[tuple[int, str, str]]]:
    """For a failure message: the raw events behind the shortest windows that are short or missing, by
    (topic, partition): (offset, sensor, event time). Each shortest window holds a sensor's one reading."""
    shortest = {feed: settings.windows_of(feed)[0] for feed in FEEDS}
    short = {
        (w[0], w[2], w[3])
        for w, (counted, offline) in counts.wrong.items()
        if w[1] == shortest[w[0]].label and (counted or 0) < (offline or 0)
    }
    reader = TopicReader(settings, raw_topics(settings), positions=True)
    found: dict[tuple[str, int], list[tuple[int, str, str]]] = defaultdict(list)
    try:
        for topic, value, partition, offset in reader.read_positions():
            feed = topic.split(".")[-2]
            at = datetime.fromisoformat(value["dateObserved"]).timestamp()
            start = int(at - at % shortest[feed].size_seconds)
            if (feed, value["sensorId"], start) in short:
                found[(topic, partition)].append((offset, value["sensorId"], value["dateObserved"]))
    finally:
        reader.close()
    return dict(found)


def raw_topics(settings: Settings) -> list[str]:
    return [settings.raw_topic(feed) for feed in FEEDS]


def agg_topics(settings: Settings) -> list[str]:
    return [settings.agg_topic(feed, spec.label) for feed in FEEDS for spec in settings.windows_of(feed)]


# --- processes ---------------------------------------------------------------------------------------


class Supervised:
    """An ``ioc`` process under a supervisor that restarts it whenever it exits, as docs/operations.md
    asks of workers (a batch that fails stops the worker on purpose). Exits we did not cause are kept in
    ``exits`` and reported."""

    def __init__(self, name: str, args: list[str], settings: Settings, log_dir: Path, **env: object) -> None:
        self.name, self.args, self.settings, self.log_dir, self.env = name, args, settings, log_dir, env
        self.runs = 0
        self.exits: list[int] = []  # exit statuses of unexpected exits (each followed by a restart)
        self.process = self._start()

    def _start(self) -> IocProcess:
        self.runs += 1
        return IocProcess(self.args, self.settings, self.log_dir / f"{self.name}-{self.runs}.log", **self.env)

    def poll(self) -> None:
        if self.process.process.poll() is not None:
            self.exits.append(self.process.stop())
            self.process = self._start()

    def kill(self) -> None:
        """SIGKILL, as a crash of the machine would; the caller restarts it (``restart``)."""
        self.process.process.send_signal(signal.SIGKILL)
        self.process.stop()

    def restart(self) -> None:
        self.process.stop()
        self.process = self._start()

    def stop(self) -> int:
        return self.process.stop()


def until(
    probe: Callable[[], Any],
    *,
    timeout: float,
    every: float = 1,
    supervised: Sequence[Supervised] = (),
    processes: Sequence[IocProcess] = (),
) -> Any:
    """``wait_for``, keeping supervised processes running meanwhile."""

    def supervised_probe() -> Any:
        for each in supervised:
            each.poll()
        return probe()

    return wait_for(supervised_probe, timeout=timeout, every=every, processes=processes)


def finished(process: IocProcess) -> bool:
    """The process exited, successfully (a failure is an error at once)."""
    code = process.process.poll()
    if code is None:
        return False
    if code != 0:
        raise AssertionError(
            f"{process.log_file.name} exited {code}:\n{process.log_file.read_text()[-3000:]}"
        )
    return True


# --- the checks --------------------------------------------------------------------------------------


def counted_windows(records: Iterable[tuple[str, dict]]) -> dict[Window, int]:
    """Each window's count on the aggregate topics: the highest published (a window is republished with
    each batch that adds to it, and again after a crash, with the same count)."""
    counts: dict[Window, int] = {}
    for _topic, value in records:
        start = int(datetime.fromisoformat(value["windowStart"]).timestamp())
        window = (value["feed"], value["window"], value["sensorId"], start)
        counts[window] = max(counts.get(window, 0), value["count"])
    return counts


@dataclass
class Tally:
    """The stream's window counts against the offline ones."""

    produced: int  # records on the raw topics
    counted: int  # events in the shortest window of their feed, on the aggregate topics
    expected: int  # the same, offline
    lost: int  # window counts short of the offline ones, summed
    duplicated: int  # window counts beyond the offline ones, summed
    wrong: dict[Window, tuple[int | None, int | None]] = field(default_factory=dict)  # (counted, offline)

    @property
    def exact(self) -> bool:
        return not self.wrong


def tally(
    expected: dict[Window, int], counted: dict[Window, int], produced: int, settings: Settings
) -> Tally:
    shortest = {feed: settings.windows_of(feed)[0].label for feed in FEEDS}
    wrong = {
        w: (counted.get(w), expected.get(w))
        for w in expected.keys() | counted.keys()
        if counted.get(w) != expected.get(w)
    }
    return Tally(
        produced=produced,
        counted=sum(n for w, n in counted.items() if w[1] == shortest[w[0]]),
        expected=sum(n for w, n in expected.items() if w[1] == shortest[w[0]]),
        lost=sum(max(0, n - counted.get(w, 0)) for w, n in expected.items()),
        duplicated=sum(max(0, n - expected.get(w, 0)) for w, n in counted.items()),
        wrong=wrong,
    )


@dataclass
class AlertTally:
    ids: set[str]  # alert ids opened on the alerts topic
    events: int  # alert events on the topic
    opened_twice: int  # `opened` events beyond one per id
    redelivered: int  # (id, revision) pairs seen more than once, beyond the first
    scenarios_alerted: set[str]  # ground-truth scenarios the stream's alerts recall


def alert_tally(records: Iterable[tuple[str, dict]], reference: Reference, settings: Settings) -> AlertTally:
    events = [AlertEvent.model_validate(value) for _topic, value in records]
    opened = Counter(e.alert.id for e in events if e.change == AlertChange.opened)
    revisions = Counter((e.alert.id, e.revision) for e in events)
    first_opened: dict[str, RaisedAlert] = {}
    for e in events:
        if e.change == AlertChange.opened and e.alert.id not in first_opened:
            first_opened[e.alert.id] = RaisedAlert(
                e.alert.id, e.alert.rule, e.alert.entity, e.alert.episode_start, e.at
            )
    recalled = score(list(first_opened.values()), reference.truth, load_rules(settings.rules)).recalled
    return AlertTally(
        ids=set(opened),
        events=len(events),
        opened_twice=sum(n - 1 for n in opened.values()),
        redelivered=sum(n - 1 for n in revisions.values()),
        scenarios_alerted=set(recalled),
    )


def figures(name: str, counts: Tally, alerts: AlertTally, reference: Reference, **extra: object) -> str:
    """The one line a test prints: what the note reports."""
    parts = [
        f"produced={counts.produced}",
        f"counted={counts.counted}",
        f"expected={counts.expected}",
        f"lost={counts.lost}",
        f"duplicated={counts.duplicated}",
        f"windows_wrong={len(counts.wrong)}",
        f"alerts={len(alerts.ids)}/{len(reference.alert_ids)}",
        f"alert_events={alerts.events}",
        f"opened_twice={alerts.opened_twice}",
        f"redelivered={alerts.redelivered}",
        f"scenarios_alerted={len(alerts.scenarios_alerted)}/{len(reference.truth)}"
        f"(offline {len(reference.scenarios_alerted)})",
        *(f"{key}={value}" for key, value in extra.items()),
    ]
    return f"FAULT {name}: " + " ".join(parts)


def assert_exactly_once_and_alerted(counts: Tally, alerts: AlertTally, reference: Reference) -> None:
    sample = dict(sorted(counts.wrong.items())[:20])
    assert counts.exact, f"{len(counts.wrong)} windows differ (counted, offline), e.g. {sample}"
    assert counts.lost == counts.duplicated == 0
    missing, extra = reference.alert_ids - alerts.ids, alerts.ids - reference.alert_ids
    assert alerts.ids == reference.alert_ids, f"missing {sorted(missing)}, extra {sorted(extra)}"
    assert alerts.scenarios_alerted >= reference.scenarios_alerted, sorted(
        reference.scenarios_alerted - alerts.scenarios_alerted
    )
    assert alerts.opened_twice == 0, "an alert id was opened twice"
    assert alerts.redelivered == 0, "an alert event (id, revision) was published twice"


# --- the picture in Redis ----------------------------------------------------------------------------


def picture_differences(
    settings: Settings, reference: Reference, alert_revisions: dict[str, int]
) -> list[str]:
    """What the Redis picture lacks: each sensor's newest window of every length (start and count) and
    every alert at its latest revision. Empty when the picture is whole."""
    newest: dict[tuple[str, str, str], tuple[int, int]] = {}
    for (feed, label, sensor, start), count in reference.counts.items():
        newest[(feed, label, sensor)] = max(newest.get((feed, label, sensor), (start, count)), (start, count))
    store = connect_sync(settings, decode_responses=True)
    try:
        with store.pipeline(transaction=False) as pipe:
            for feed, label, sensor in newest:
                pipe.hmget(settings.redis_key("agg", feed, label, sensor), "start", "count")
            for alert_id in alert_revisions:
                pipe.hget(settings.redis_key("alert", alert_id), "revision")
            answers = pipe.execute()
    finally:
        store.close()
    problems = []
    for (key, expected), stored in zip(newest.items(), answers[: len(newest)], strict=True):
        if tuple(int(v) if v is not None else None for v in stored) != expected:
            problems.append(f"agg {key}: {stored} != {expected}")
    for (alert_id, revision), stored in zip(alert_revisions.items(), answers[len(newest) :], strict=True):
        if stored is None or int(stored) != revision:
            problems.append(f"alert {alert_id}: revision {stored} != {revision}")
    return problems


def latest_revisions(records: Iterable[tuple[str, dict]]) -> dict[str, int]:
    revisions: dict[str, int] = {}
    for _topic, value in records:
        event = AlertEvent.model_validate(value)
        revisions[event.alert.id] = max(revisions.get(event.alert.id, 0), event.revision)
    return revisions
