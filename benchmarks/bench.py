"""``make bench``: the limit, ioc, a peer and the Faust floor catching up one backlog, side by side; ioc's
growth with simulated time; its alert latency under load, with the alert target's verdict.

    python benchmarks/bench.py                        # starts its own Kafka and Redis (ioc infra)
    python benchmarks/bench.py --events 8000 --runs 1 --growth-hours 8 --latency-rates '' --out /tmp/b.json
    python benchmarks/bench.py --kafka HOST:9092 --redis redis://HOST:6379/0 --max-minutes 15

Part 1, catch-up. Four consumers of one input, each timed alone:

- limit: a raw aiokafka consumer loop (``benchmarks/limit_consumer.py``): parse the JSON, count. The
  ceiling for Python on this broker.
- ioc: one ``ioc worker``, the full pipeline (validate, three windows, indices, detectors, alerts).
- peer: the same 1-minute windowed mean/max of PM2.5 per sensor and a threshold alert, written with
  Quix Streams (``benchmarks/peer_quix.py``, in its own virtualenv ``.venv-peer``).
- faust-floor: the peer's job written on Faust, the framework under ioc's worker, the way a user would
  (``benchmarks/peer_faust.py``: an agent over the raw topic, ``stream.take()`` batches, a windowed table
  in memory with its changelog), in ioc's virtualenv: what Faust itself costs for the job.
  (Not in the default set: ``faust-iterate``, the same one record at a time; ``faust-take-count`` and
  ``faust-iterate-count``, an agent that only counts: Faust's consuming alone.)

The input is generated once (seeded air events of ``--sensors`` sensors, one a minute each) and, for every
run, produced to the air raw topic of a fresh namespace (same partitions, keyed by sensor, so every run
sees the same records in the same partitions, in the same order) before the consumer starts. The
consumer's group's committed offsets are then polled (at half its commit interval or faster): the rate
is the events committed between the first poll that finds at least 10 % of the input committed and the
first that finds all of it, over the time between them. That leaves out start-up and the wait for a
first commit, which differ between them (process start-up is reported apart). Rounds interleave the
systems, so the machine's drift hits each alike; the summary is the median run with the min and max, and
each ratio ioc/other is also given per round (its min and max are its spread).

Part 2, growth (``benchmarks/growth.py``): ioc's CPU per event over simulated hours 30–33 against hours
0.5–3.5, one worker fed 40 sensors' readings in chunks of event time; target: within 15 %.

Part 3, alert latency (``benchmarks/alert_latency.py``): one worker and one API on a scaled registry, an
open-loop producer first at half of ioc's catch-up rate measured in part 1 (the alert target: p99 from an
event's creation to its alert on the live stream at most 1 s there), then at each of ``--latency-rates``
and a search for the highest rate the worker sustains. A rate the worker cannot sustain is a result.

``--max-minutes`` bounds the whole run: a part (or a round, or a rate) that would not fit is skipped and
marked as such in the JSON, which is written to ``--out`` after every run, chunk and rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kafka import KafkaAdminClient, TopicPartition  # noqa: E402

from benchmarks import alert_latency, growth  # noqa: E402
from benchmarks.backlog import AIR_START, air_events, committed, cpu_seconds, end_offsets, produce  # noqa: E402
from benchmarks.servers import Servers, bench_servers  # noqa: E402
from connectors.kafka import create_topics, kafka_python_options  # noqa: E402
from ioc.settings import Settings  # noqa: E402
from tests.conftest import settings_env  # noqa: E402

SYSTEMS = ("limit", "ioc", "peer", "faust-floor")
# On request (--systems): Faust one record at a time, and Faust's consuming alone (the agent only counts).
FAUST_MODES = {"faust-floor": "take", "faust-iterate": "iterate", "faust-take-count": "take-count",
               "faust-iterate-count": "iterate-count"}  # fmt: skip
EXTRA_SYSTEMS = ("faust-iterate", "faust-take-count", "faust-iterate-count")
PEER_PYTHON = ROOT / ".venv-peer" / "bin" / "python"
STEADY_FROM = 0.10  # the rate is measured from this share of the input committed to all of it
# Seconds between commits. A run ends at the commit after the last event, so each figure is low by up to
# one commit interval over its measured span: ioc's worker and the Faust floor span 7–15 s, so both commit
# every 0.5 s (ioc's worker by IOC_WORKER_COMMIT_INTERVAL_SECONDS; at Faust's default 2.8 s either figure
# came out up to a fifth or a third low, by where the commits fell); the peer's and the limit's spans
# are a few seconds and under a second, so they commit more often, about as often relative to them (the
# limit awaits each commit, which costs it a little). The polls follow each one's commits, at half the
# interval or faster.
FAUST_COMMIT_INTERVAL = 0.5  # ioc's worker's and the Faust floor's broker_commit_interval
COMMIT_INTERVAL = {"limit": 0.02, "peer": 0.2} | {
    name: FAUST_COMMIT_INTERVAL for name in ("ioc", *FAUST_MODES)
}
POLL_SECONDS = {name: min(0.25, interval / 2) for name, interval in COMMIT_INTERVAL.items()}
OUTPUT_TOPIC = {"peer": "peer.alerts", "faust-floor": "faust.alerts", "faust-iterate": "faust.alerts"}
RATIO_ORDER = ("faust-floor", "peer", "limit", *EXTRA_SYSTEMS)  # ioc/<these>, side by side
# Of --max-minutes: kept for stopping the servers and the last write.
RESERVE_SECONDS = 30
# The least the latency part needs: a worker and an API, the warm-up, the target rate and its catch-up.
LATENCY_MIN_SECONDS = 120
ALERT_TARGET_P99_MS = 1000


class RunFailed(Exception):
    """A run that did not finish: its consumer exited (an error), or it ran out of time."""

    def __init__(self, reason: str, error: bool = True) -> None:
        super().__init__(reason)
        self.error = error


@dataclass
class Launch:
    """How to start one system on one namespace, and how to tell it is up."""

    argv: list[str]
    group: str
    ready_marker: bytes  # a line of its log that says it has started
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))


class Budget:
    """The run's time: ``--max-minutes`` from the start, less a reserve for the end."""

    def __init__(self, minutes: float) -> None:
        self.began = time.monotonic()
        self.end = self.began + 60 * minutes - RESERVE_SECONDS

    def left(self) -> float:
        return self.end - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.began


class Report:
    """The JSON results, written again whenever something was measured."""

    def __init__(self, path: Path, data: dict) -> None:
        self.path, self.data = path, data
        self._started: dict[str, float] = {}
        path.parent.mkdir(parents=True, exist_ok=True)

    def update(self, **values: object) -> None:
        self.data.update(values)
        self.save()

    def error(self, what: str) -> None:
        self.data["errors"].append(what)
        self.save()

    def part(self, name: str, status: str) -> None:
        """A part's status; its seconds from "running" to the next status."""
        now = time.monotonic()
        if status == "running":
            self._started[name] = now
        elif name in self._started:
            self.data["parts_seconds"][name] = round(now - self._started.pop(name), 1)
        self.data["parts"][name] = status
        self.save()

    def save(self) -> None:
        temporary = self.path.with_name(self.path.name + ".partial")
        temporary.write_text(json.dumps(self.data, indent=2, allow_nan=False) + "\n")
        os.replace(temporary, self.path)


def output_topic(system: str, settings: Settings) -> str | None:
    if system == "ioc":
        return settings.alerts_topic
    return settings.topic(OUTPUT_TOPIC[system]) if system in OUTPUT_TOPIC else None


def launch(
    system: str, settings: Settings, run_dir: Path, faust_commit_interval: float, profile: Path | None = None
) -> Launch:
    topic, namespace = settings.raw_topic("air"), settings.worker_id
    if system == "ioc":  # its consumer group is its Faust app id, the worker id
        # Under py-spy (--profile): its samples, not its figures, are the point of such a run.
        spy = ["py-spy", "record", "-r", "100", "-f", "raw", "-o", str(profile), "--"] if profile else []
        return Launch(
            [*spy, sys.executable, "-m", "ioc", "worker", "--loglevel", "info"],
            settings.worker_id,
            b"Ready",
            settings_env(settings, worker_commit_interval_seconds=faust_commit_interval),
        )
    group = f"{namespace}-{system}"
    common = ["--broker", settings.bootstrap_servers, "--group", group, "--commit-interval"]
    if system == "limit":
        script = ROOT / "benchmarks" / "limit_consumer.py"
        argv = [sys.executable, str(script), "--topic", topic, *common, str(COMMIT_INTERVAL["limit"])]
        return Launch(argv, group, b"Ready")
    io = ["--input", topic, "--output", output_topic(system, settings) or topic]
    state = ["--state-dir", str(run_dir / f"{system}-state-{namespace}")]
    if system == "peer":
        script = ROOT / "benchmarks" / "peer_quix.py"
        argv = [str(PEER_PYTHON), str(script), *io, *state, *common, str(COMMIT_INTERVAL["peer"])]
        return Launch(argv, group, b"now processing incoming messages")
    # The Faust ones: Faust's worker logs "[^Worker]: Ready" once its partitions are assigned.
    script = ROOT / "benchmarks" / "peer_faust.py"
    mode = FAUST_MODES[system]
    argv = [sys.executable, str(script), *io, *state, *common, str(faust_commit_interval),
            "--partitions", str(settings.partitions), "--mode", mode]  # fmt: skip
    return Launch(argv, group, b"Ready")


def prepare(system: str, servers: Servers, partitions: int, events: list) -> Settings:
    """A fresh namespace with the input on its air raw topic (not timed)."""
    settings = servers.fresh_namespace(partitions)
    raw = settings.raw_topic("air")
    output = output_topic(system, settings)
    create_topics(settings, None if system == "ioc" else [raw, *([output] if output else [])])
    asyncio.run(produce(settings, events))
    return settings


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent on anything but idling, over all its cores."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def follow(
    launched: Launch, settings: Settings, total: int, log_path: Path, poll: float, timeout: float
) -> dict:
    """Start the consumer and poll its group's committed offsets until it has committed the input."""
    topic = settings.raw_topic("air")
    partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
    ends = end_offsets(settings, partitions)
    assert sum(ends.values()) == total, (sum(ends.values()), total)
    admin = KafkaAdminClient(**kafka_python_options(settings), client_id="ioc-bench")
    log = log_path.open("wb")
    started = time.perf_counter()
    process = subprocess.Popen(
        launched.argv, env=launched.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
    )
    ready = first_commit = steady = None
    try:
        while True:
            time.sleep(poll)
            now = time.perf_counter()
            if process.poll() is not None:
                raise RunFailed(f"exited {process.returncode}; see {log_path}")
            if ready is None and launched.ready_marker in log_path.read_bytes():
                ready = now - started
            offsets = committed(admin, launched.group, partitions)
            done = sum(min(offsets.get(tp, 0), end) for tp, end in ends.items())
            if done and first_commit is None:
                first_commit = now - started
            if steady is None and done >= STEADY_FROM * total:
                steady = (now, done, cpu_seconds(process.pid), busy_cpu_seconds())
            if done >= total:
                if steady[0] == now:  # 10 % and 100 % in one poll: no span to measure
                    raise RunFailed("took the input in one poll; use more --events", error=False)
                return measured(steady, (now, done, cpu_seconds(process.pid), busy_cpu_seconds())) | {
                    "ready_seconds": ready,
                    "first_commit_seconds": first_commit,
                    "total_seconds": now - started,
                    "process_cpu_seconds_total": cpu_seconds(process.pid),
                }
            if now - started > timeout:
                reason = f"{done:,} of {total:,} committed after {timeout:.0f} s; see {log_path}"
                raise RunFailed(reason, error=False)
    finally:
        stop(process)
        log.close()
        admin.close()


def measured(steady: tuple, end: tuple) -> dict:
    """Rate and CPU between the first poll at 10 % committed and the first at 100 %."""
    (t0, done0, cpu0, busy0), (t1, done1, cpu1, busy1) = steady, end
    seconds, events = t1 - t0, done1 - done0
    process_cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
    return {
        "events_per_second": events / seconds,
        "steady_events": events,
        "steady_seconds": seconds,
        "process_cpu_seconds": process_cpu,
        "process_cpu_us_per_event": 1e6 * process_cpu / events if process_cpu is not None else None,
        # The rest of the machine meanwhile: broker, Redis, this driver and whatever else runs there.
        "other_cpu_seconds": busy1 - busy0 - (process_cpu or 0.0),
    }


def stop(process: subprocess.Popen) -> None:
    # py-spy writes its samples on Ctrl-C (and passes it on), not on SIGTERM.
    process.send_signal(signal.SIGINT if process.args[0] == "py-spy" else signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def outputs(system: str, settings: Settings) -> dict[str, int]:
    """Records the system wrote to its alerts topic by the time it was stopped (a sanity check)."""
    topic = output_topic(system, settings)
    if topic is None:
        return {}
    ends = end_offsets(settings, [TopicPartition(topic, p) for p in range(settings.partitions)])
    return {"alerts": sum(ends.values())}


def completed(runs: list[dict]) -> list[dict]:
    return [r for r in runs if "events_per_second" in r]


def summary(runs: list[dict]) -> dict | None:
    runs = completed(runs)
    if not runs:
        return None
    rates = [r["events_per_second"] for r in runs]
    cpu = [r["process_cpu_us_per_event"] for r in runs if r["process_cpu_us_per_event"] is not None]
    ready = [r["ready_seconds"] for r in runs if r["ready_seconds"] is not None]
    median = statistics.median(rates)
    return {
        "runs": len(runs),
        "median_events_per_second": median,
        "min_events_per_second": min(rates),
        "max_events_per_second": max(rates),
        "spread_percent": 100 * (max(rates) - min(rates)) / median,
        "median_process_cpu_us_per_event": statistics.median(cpu) if cpu else None,
        "min_process_cpu_us_per_event": min(cpu) if cpu else None,
        "max_process_cpu_us_per_event": max(cpu) if cpu else None,
        "median_ready_seconds": statistics.median(ready) if ready else None,
    }


def ratios(runs: dict[str, list[dict]]) -> dict:
    """ioc over each other system: of the medians, per round (same round, both completed), of CPU."""
    systems = {name: summary(rs) for name, rs in runs.items()}
    out: dict = {"ratios": {}, "ratios_per_round": {}, "ratio_ranges": {}, "cpu_per_event_ratios": {}}
    if not systems.get("ioc"):
        return out
    ioc = systems["ioc"]
    ioc_rounds = {r["round"]: r for r in completed(runs["ioc"])}
    for other in (name for name in RATIO_ORDER if systems.get(name)):
        name, theirs = f"ioc/{other}", systems[other]
        out["ratios"][name] = ioc["median_events_per_second"] / theirs["median_events_per_second"]
        per_round = [
            ioc_rounds[r["round"]]["events_per_second"] / r["events_per_second"]
            for r in completed(runs[other])
            if r["round"] in ioc_rounds
        ]
        out["ratios_per_round"][name] = per_round
        out["ratio_ranges"][name] = [min(per_round), max(per_round)] if per_round else None
        if ioc["median_process_cpu_us_per_event"] and theirs["median_process_cpu_us_per_event"]:
            out["cpu_per_event_ratios"][name] = (
                ioc["median_process_cpu_us_per_event"] / theirs["median_process_cpu_us_per_event"]
            )
    return out


def machine(kafka_external: bool, note: str) -> dict:
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kib = int(
        next(
            line.split()[1]
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    )
    return {
        "cpu": cpu_model,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "kafka": "external" if kafka_external else f"{Settings().kafka_version} (one local KRaft node)",
        "libraries": {
            "aiokafka": version("aiokafka"),
            "faust-streaming": version("faust-streaming"),
            "quixstreams": peer_version(),
        },
        "load_average_at_start": os.getloadavg(),
        "code": code_version(),
        "shares_the_cores": "the consumer under test, the Kafka broker (JVM), Redis (written by ioc only), "
        "this driver (producing between runs, polling offsets)" + (f"; {note}" if note else ""),
    }


def code_version() -> dict:
    """The commit measured, and the files of the worker's code that differ from it (others' work)."""

    def git(*argv: str) -> str:
        answer = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True)
        return answer.stdout.strip() if answer.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "ioc", "streams", "connectors").splitlines()
    return {
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "uncommitted": [line.split(maxsplit=1)[1] for line in changed if line.strip()],
    }


def peer_version() -> str | None:
    if not PEER_PYTHON.exists():  # run without the peer
        return None
    script = "from importlib.metadata import version; print(version('quixstreams'))"
    answer = subprocess.run([str(PEER_PYTHON), "-c", script], capture_output=True, text=True)
    return answer.stdout.strip() if answer.returncode == 0 else None


def ioc_rate(report: Report) -> float | None:
    """ioc's median catch-up rate in this run's part 1, if it was measured."""
    ioc = report.data["systems"].get("ioc", {}).get("summary")
    return ioc["median_events_per_second"] if ioc else None


def estimate(system: str, events: int, took: dict[str, float]) -> float:
    """Seconds a run of this system takes (producing the input included): its last run, or a guess."""
    if system in took:
        return took[system]
    return events / 700 + 25 if system == "ioc" else events / 20_000 + 25


def later_parts(args: argparse.Namespace, rate: float | None) -> float:
    """Seconds to keep for the growth and latency parts, the least each needs."""
    keep = LATENCY_MIN_SECONDS if latency_enabled(args) else 0.0
    if args.growth_hours:
        keep += growth.estimate_seconds(args.growth_sensors, args.growth_hours, rate or 700)
    return keep


def latency_enabled(args: argparse.Namespace) -> bool:
    return bool(args.latency_rates.strip()) or args.alert_target


def catch_up_part(args, systems: list[str], servers: Servers, events: list, budget: Budget, report: Report):
    runs: dict[str, list[dict]] = {s: [] for s in systems}
    took: dict[str, float] = {}
    rounds = 0
    report.part("catch_up", "running")
    for round_ in range(1, args.runs + 1):
        need = sum(estimate(s, len(events), took) for s in systems)
        if round_ > 1 and budget.left() - later_parts(args, ioc_rate(report)) < need:
            break
        for system in systems:
            if budget.left() < estimate(system, len(events), took) * (0.5 if round_ == 1 else 1):
                runs[system].append({"round": round_, "skipped": "out of time (--max-minutes)"})
                print(f"  round {round_} {system:<19} skipped: out of time", flush=True)
                continue
            began = time.monotonic()
            try:
                settings = prepare(system, servers, args.partitions, events)
                log_path = servers.run_dir / f"{system}-{settings.worker_id}.log"
                result = follow(
                    launch(
                        system,
                        settings,
                        servers.run_dir,
                        args.faust_commit_interval,
                        args.profile / f"ioc-round{round_}.txt" if args.profile else None,
                    ),
                    settings,
                    len(events),
                    log_path,
                    POLL_SECONDS[system],
                    max(10.0, min(args.timeout, budget.left())),
                )
                result |= {"round": round_, "namespace": settings.worker_id} | outputs(system, settings)
                print(
                    f"  round {round_} {system:<19} {result['events_per_second']:>9,.0f} events/s "
                    f"{result['process_cpu_us_per_event'] or math.nan:>7,.0f} µs/event "
                    f"(ready {result['ready_seconds'] or math.nan:.1f} s, "
                    f"{result['total_seconds']:.1f} s in all)",
                    flush=True,
                )
            except RunFailed as failure:
                result = {"round": round_, "failed": str(failure)}
                print(f"  round {round_} {system:<19} FAILED: {failure}", flush=True)
                if failure.error:
                    report.error(f"{system} round {round_}: {failure}")
            took[system] = time.monotonic() - began
            runs[system].append(result)
            report.update(
                systems={name: {"runs": rs, "summary": summary(rs)} for name, rs in runs.items()},
                **ratios(runs),
            )
        rounds = round_
    status = (
        "done" if rounds == args.runs else f"{rounds} of {args.runs} rounds; the rest skipped (--max-minutes)"
    )
    report.part("catch_up", status)


def growth_part(args, servers: Servers, budget: Budget, report: Report) -> None:
    if not args.growth_hours:
        report.part("growth", "not run (--growth-hours 0)")
        return
    keep = LATENCY_MIN_SECONDS if latency_enabled(args) else 0.0
    needed = growth.estimate_seconds(args.growth_sensors, args.growth_hours, ioc_rate(report) or 700)
    if budget.left() - keep < needed:
        kept = f", {keep:.0f} of them kept for the latency part" if keep else ""
        report.part("growth", f"skipped: needs about {needed:.0f} s; {budget.left():.0f} s left{kept}")
        print(f"growth skipped: out of time (needs about {needed:.0f} s)", flush=True)
        return
    report.part("growth", "running")
    try:
        result = growth.run(
            servers,
            args.growth_sensors,
            args.growth_hours,
            args.partitions,
            args.seed,
            deadline=budget.end - keep,
            on_chunk=lambda partial: report.update(growth=partial),
        )
    except RuntimeError as error:
        report.part("growth", f"failed: {error}")
        report.error(f"growth: {error}")
        print(f"growth FAILED: {error}", flush=True)
        return
    report.update(growth=result)
    report.part("growth", "done" if result["complete"] else f"partial: {result.get('stopped')}")


def alert_target(latency: dict, catch_up: float | None) -> dict:
    """The alert target: p99 ≤ 1 s at a sustained rate of at least half the worker's catch-up rate."""
    verdict: dict = {
        "criterion": "p99 from event creation to its alert on GET /v1/stream <= 1000 ms at a sustained "
        "open-loop rate of at least half the worker's catch-up throughput measured in the same run "
        "(part 1's ioc median)",
        "catch_up_events_per_second": catch_up,
        "required_rate": catch_up / 2 if catch_up else None,
    }
    rates = latency.get("rates", [])
    target = next((r for r in rates if r.get("role") == "target"), None)
    if target is not None:
        verdict |= {
            "measured_rate": target["target_rate"],
            "achieved_rate": target["achieved_rate"],
            "p50_ms": target["latency_ms"]["p50"],
            "p99_ms": target["latency_ms"]["p99"],
            "sustained": target["sustained"],
        }
    if not catch_up or not rates:
        return verdict | {"holds": None}
    meeting = [
        r["target_rate"]
        for r in rates
        if r["sustained"]
        and r["latency_ms"]["p99"] is not None
        and r["latency_ms"]["p99"] <= ALERT_TARGET_P99_MS
    ]
    return verdict | {
        "highest_rate_meeting_it": max(meeting) if meeting else None,
        "holds": any(rate >= catch_up / 2 for rate in meeting),
    }


def latency_part(args, servers: Servers, budget: Budget, report: Report) -> None:
    rates = [float(rate) for rate in args.latency_rates.split(",") if rate.strip()]
    catch_up = ioc_rate(report)
    target = math.ceil(catch_up / 2 / 10) * 10 if catch_up and args.alert_target else None
    if not rates and target is None:
        report.part("latency", "not run (no --latency-rates, no alert target)")
        return
    if budget.left() < LATENCY_MIN_SECONDS:
        report.part("latency", f"skipped: {budget.left():.0f} s left (--max-minutes)")
        report.update(alert_target=alert_target({}, catch_up))
        print("alert latency skipped: out of time", flush=True)
        return
    report.part("latency", "running")
    print("alert latency under open-loop load (benchmarks/alert_latency.py):", flush=True)

    def record(partial: dict) -> None:
        report.update(latency=partial, alert_target=alert_target(partial, catch_up))

    try:
        result = alert_latency.run(
            servers,
            rates,
            args.latency_seconds,
            args.partitions,
            find_max=True,
            target_rate=target,
            deadline=budget.end,
            catch_up_limit=args.catch_up_limit,
            on_result=record,
        )
    except (SystemExit, RuntimeError, OSError) as error:  # a worker or the API died, or did not start
        report.part("latency", f"failed: {error}")
        report.error(f"latency: {error}")
        print(f"alert latency FAILED: {error}", flush=True)
        return
    record(result)
    skipped = [s for s in result["skipped"] if "time" in s["reason"]]
    report.part("latency", f"{len(skipped)} rates skipped (--max-minutes)" if skipped else "done")


def header(args: argparse.Namespace, described: dict, events: list, systems: list[str]) -> dict:
    return {
        "benchmark": "limit, ioc, a Quix Streams peer and the Faust floor catching up one backlog of air "
        "events; ioc's CPU per event as its state grows; alert latency under load",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": None,
        "max_minutes": args.max_minutes,
        "complete": False,
        "parts": {"catch_up": "pending", "growth": "pending", "latency": "pending"},
        "parts_seconds": {},
        "errors": [],
        "machine": described,
        "input": {
            "events": len(events),
            "air_sensors": args.sensors,
            "partitions": args.partitions,
            "seed": args.seed,
            "first_event": AIR_START.isoformat(),
            "interval_seconds": 60,
        },
        "method": {
            "rate": f"events committed from the first poll at >= {STEADY_FROM:.0%} of the input committed "
            "to the first at 100 %, over the time between them",
            "cpu": "the consumer process's user + system time (/proc/<pid>/stat) over the same span, "
            "per event",
            "poll_seconds": POLL_SECONDS,
            "commit_interval_seconds": COMMIT_INTERVAL
            | {name: args.faust_commit_interval for name in ("ioc", *FAUST_MODES)},
            "faust_floor": "benchmarks/peer_faust.py: faust.App, one agent, stream.take(1000, within=0.1), "
            "a windowed table (1-minute tumbling windows, memory store, changelog, use_partitioner), "
            f"broker_commit_interval {args.faust_commit_interval} s (ioc's worker's too), "
            "Faust's defaults otherwise",
            "runs": args.runs,
            "order": "rounds of " + ", ".join(systems),
            "ratios": "ioc/<system> of the median events/s; ratios_per_round pairs the same round's runs, "
            "ratio_ranges is their min and max; cpu_per_event_ratios of the median CPU per event",
            "growth": "benchmarks/growth.py: one worker, --growth-sensors air sensors over --growth-hours "
            "simulated hours in chunks of event time, each chunk's worker CPU once every topic it reads "
            "is committed, less its idle rate; A = hours 0.5-3.5, B = the last 3 hours; B/A <= 1.15",
            "latency": "benchmarks/alert_latency.py: the target rate (half of ioc's catch-up median, up to "
            "a multiple of 10) first, then --latency-rates rising, then a search; a fresh worker after "
            "any rate that was not sustained",
            "budget": f"--max-minutes {args.max_minutes}: parts, rounds and rates that would not fit are "
            "skipped and marked",
        },
        "systems": {},
        "ratios": {},
    }


def print_summary(data: dict) -> None:
    systems = data.get("systems", {})
    width = max([13, *(len(name) for name in systems)])
    if systems:
        print(
            f"\n{'system':<{width}} {'median ev/s':>12} {'min':>9} {'max':>9} {'spread':>7} "
            f"{'CPU µs/ev':>10} {'ready s':>8} {'runs':>5}"
        )
    for name, result in systems.items():
        s = result["summary"]
        if s is None:
            print(f"{name:<{width}} {'no completed run':>12}")
            continue
        cpu = s["median_process_cpu_us_per_event"]
        print(
            f"{name:<{width}} {s['median_events_per_second']:>12,.0f} {s['min_events_per_second']:>9,.0f} "
            f"{s['max_events_per_second']:>9,.0f} {s['spread_percent']:>6.0f}% "
            f"{cpu if cpu is not None else math.nan:>10,.0f} {s['median_ready_seconds'] or math.nan:>8.1f} "
            f"{s['runs']:>5}"
        )
    if data.get("ratios"):
        print("ratios of events/s (median; per-round min–max):")
        for name, value in data["ratios"].items():
            low, high = data["ratio_ranges"].get(name) or (math.nan, math.nan)
            cpu = data["cpu_per_event_ratios"].get(name)
            print(
                f"  {name:<23} {value:.4f} ({low:.4f}–{high:.4f})"
                + (f"   CPU per event ×{cpu:,.1f}" if cpu else "")
            )
    if (g := data.get("growth")) and (line := growth.describe(g)):
        print(f"growth ({g['sensors']} sensors, {g['simulated_hours']} simulated hours): {line}")
    if latency := data.get("latency"):
        print("alert latency (probe creation → alert on /v1/stream):")
        for r in latency["rates"]:
            ms = r["latency_ms"]
            print(
                f"  {r['role']:<7} {r['target_rate']:>7,.0f}/s achieved {r['achieved_rate']:>6,}/s  "
                f"p50 {ms['p50'] or math.nan:>8,.0f} ms  p99 {ms['p99'] or math.nan:>8,.0f} ms  "
                + ("sustained" if r["sustained"] else "NOT sustained")
                + ("" if r["caught_up"] else f" (not caught up within {r['catch_up_seconds']:.0f} s)")
            )
        for s in latency["skipped"]:
            print(f"  {s['role']:<7} {s['target_rate']:>7,.0f}/s skipped: {s['reason']}")
    if (t := data.get("alert_target")) is not None:
        holds = {True: "HOLDS", False: "DOES NOT HOLD", None: "not decided"}[t.get("holds")]
        rate = t.get("catch_up_events_per_second")
        measured = (
            f"; at {t['measured_rate']:,.0f}/s: p99 {t['p99_ms'] or math.nan:,.0f} ms, "
            + ("sustained" if t["sustained"] else "not sustained")
            if "measured_rate" in t
            else ""
        )
        print(
            "alert target (p99 ≤ 1 s at ≥ half the catch-up rate"
            + (f", {rate:,.0f}/2 = {rate / 2:,.0f} events/s" if rate else "")
            + f"){measured}: {holds}"
        )
    took = data.get("parts_seconds", {})
    print(
        "parts: "
        + "; ".join(
            f"{name}: {status}" + (f" ({took[name] / 60:.1f} min)" if name in took else "")
            for name, status in data["parts"].items()
        )
    )
    for error in data.get("errors", []):
        print(f"ERROR: {error}")
    if data.get("wall_seconds"):
        print(f"{data['wall_seconds'] / 60:.1f} minutes (--max-minutes {data['max_minutes']:g})")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kafka", help="existing bootstrap servers (default: start a local broker)")
    parser.add_argument("--redis", help="existing Redis URL (default: start a local one)")
    parser.add_argument("--events", type=int, default=40_000, help="air events in the input")
    parser.add_argument("--sensors", type=int, default=200, help="air sensors, each reporting once a minute")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of the input topic")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3, help="rounds of the systems")
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"which of {','.join(SYSTEMS + EXTRA_SYSTEMS)} to run, in this order each round",
    )
    parser.add_argument("--timeout", type=float, default=900, help="give up on a run after this long")
    parser.add_argument(
        "--faust-commit-interval",
        type=float,
        default=FAUST_COMMIT_INTERVAL,
        help="ioc's worker's and the Faust floor's broker_commit_interval, seconds (polled at half of it)",
    )
    parser.add_argument("--note", default="", help="what else runs on the machine, for the JSON")
    parser.add_argument(
        "--growth-hours",
        type=int,
        default=growth.HOURS,
        help="simulated hours of the growth part; 0 skips it",
    )
    parser.add_argument("--growth-sensors", type=int, default=growth.SENSORS, help="air sensors for growth")
    parser.add_argument(
        "--latency-rates",
        default="1000,5000",
        help="open-loop rates for the alert latency part, after the target rate (then a search for the "
        "highest sustained); empty for none",
    )
    parser.add_argument(
        "--no-alert-target",
        dest="alert_target",
        action="store_false",
        help="do not measure at half the catch-up rate (the alert target's rate)",
    )
    parser.add_argument("--latency-seconds", type=float, default=15, help="seconds of load per rate")
    parser.add_argument(
        "--catch-up-limit",
        type=float,
        default=alert_latency.CATCH_UP_LIMIT,
        help="seconds the worker gets to catch up after a latency rate; longer is not sustained",
    )
    parser.add_argument(
        "--max-minutes", type=float, default=25, help="bound on the whole run; what would not fit is skipped"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench.json")
    parser.add_argument(
        "--profile",
        type=Path,
        help="a folder: run ioc's worker under py-spy (on PATH) and write each round's samples there",
    )
    args = parser.parse_args()
    for name in ("ioc", *FAUST_MODES):
        POLL_SECONDS[name] = min(0.25, args.faust_commit_interval / 2)
    return args


def main() -> None:
    args = arguments()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    systems = [s for s in args.systems.split(",") if s]
    if unknown := set(systems) - set(SYSTEMS + EXTRA_SYSTEMS):
        raise SystemExit(
            f"unknown systems {sorted(unknown)}; choose from {', '.join(SYSTEMS + EXTRA_SYSTEMS)}"
        )
    if "peer" in systems and not PEER_PYTHON.exists():
        raise SystemExit(f"no {PEER_PYTHON}: run `make bench`, or leave the peer out of --systems")
    budget = Budget(args.max_minutes)
    events = air_events(args.events, args.sensors, args.seed)
    report = None
    try:
        with bench_servers(args.kafka, args.redis) as servers:
            described = machine(bool(args.kafka), args.note)
            report = Report(args.out, header(args, described, events, systems))
            report.save()
            print(
                f"{len(events):,} air events of {args.sensors} sensors, {args.partitions} partitions; "
                f"{described['cores']} cores shared with Kafka and Redis (load average "
                f"{described['load_average_at_start'][0]:.2f}); up to {args.max_minutes:g} minutes; "
                f"logs in {servers.run_dir}",
                flush=True,
            )
            catch_up_part(args, systems, servers, events, budget, report)
            growth_part(args, servers, budget, report)
            latency_part(args, servers, budget, report)
            report.data["complete"] = all(
                v == "done" or v.startswith("not run") for v in report.data["parts"].values()
            )
    finally:
        if report is not None:
            report.data["wall_seconds"] = budget.elapsed()
            report.data["load_average_at_end"] = os.getloadavg()
            report.save()
            print_summary(report.data)
            print(f"written to {args.out}")
    if report is not None and report.data["errors"]:
        raise SystemExit("errors (the results so far are in the JSON): " + "; ".join(report.data["errors"]))


if __name__ == "__main__":
    main()
