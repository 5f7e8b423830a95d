"""``make bench``: the limit, ioc and a peer catching up the same backlog of air events, side by side.

    python benchmarks/bench.py                        # starts its own Kafka and Redis (ioc infra)
    python benchmarks/bench.py --events 20000 --runs 1 --out /tmp/bench.json
    python benchmarks/bench.py --kafka HOST:9092 --redis redis://HOST:6379/0

Three consumers of one input, each timed alone:

- limit: a raw aiokafka consumer loop (``benchmarks/limit_consumer.py``): parse the JSON, count. The
  ceiling for Python on this broker.
- ioc: one ``ioc worker``, the full pipeline (validate, three windows, indices, detectors, alerts).
- peer: the same 1-minute windowed mean/max of PM2.5 per sensor and a threshold alert, written with
  Quix Streams (``benchmarks/peer_quix.py``, in its own virtualenv ``.venv-peer``).

The input is generated once (seeded air events of ``--sensors`` sensors, one a minute each) and, for every
run, produced to the air raw topic of a fresh namespace (same partitions, keyed by sensor, so every run
sees the same records in the same partitions, in the same order) before the consumer starts. The
consumer's group's committed offsets are then polled (at half its commit interval or faster): the rate
is the events committed between the first poll that finds at least 10 % of the input committed and the
first that finds all of it, over the time between them. That leaves out start-up and the wait for a
first commit, which differ between the three (process start-up is reported apart). Rounds interleave
the three, so the machine's drift hits each alike; the summary is the median run with the min and max.
Then the alert latency part (``benchmarks/alert_latency.py``): one worker and one API on a scaled
registry, an open-loop producer at each of ``--latency-rates`` and a search for the highest rate the
worker sustains, p50/p99 from an event's creation to its alert on the live stream.

Results go to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kafka import KafkaAdminClient, TopicPartition  # noqa: E402

from benchmarks import alert_latency  # noqa: E402
from benchmarks.backlog import committed, cpu_seconds, end_offsets, produce  # noqa: E402
from benchmarks.servers import Servers, bench_servers  # noqa: E402
from connectors.kafka import create_topics  # noqa: E402
from connectors.sources.simulator import AirSimulator  # noqa: E402
from connectors.sources.simulator.scale import COPIED_KINDS, with_synthetic_sensors  # noqa: E402
from ioc.city import City, load_city  # noqa: E402
from ioc.settings import Settings  # noqa: E402
from tests.conftest import settings_env  # noqa: E402

SYSTEMS = ("limit", "ioc", "peer")
# January: Hanoi's worst month for PM2.5, so some windows pass the peer's threshold and ioc's alerts fire.
START = datetime.fromisoformat("2026-01-12T00:00:00+07:00")
PEER_PYTHON = ROOT / ".venv-peer" / "bin" / "python"
STEADY_FROM = 0.10  # the rate is measured from this share of the input committed to all of it
# Seconds between commits. A run ends at the commit after the last event, so each figure is low by up to
# one commit interval over its measured span: ioc's Faust commits every 2.8 s (not configurable in the
# worker) over a span of half a minute or more; the peer's and the limit's spans are a few seconds and
# under a second, so they commit about as often relative to them (the limit awaits each commit, which
# costs it a little). The polls follow each one's commits.
COMMIT_INTERVAL = {"limit": 0.02, "ioc": 2.8, "peer": 0.2}
POLL_SECONDS = {"limit": 0.01, "ioc": 0.25, "peer": 0.05}


@dataclass
class Launch:
    """How to start one system on one namespace, and how to tell it is up."""

    argv: list[str]
    group: str
    ready_marker: bytes  # a line of its log that says it has started
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))


def air_city(sensors: int) -> City:
    """Hanoi's air stations plus synthetic copies, ``sensors`` air sensors in all and nothing else."""
    city = load_city("hanoi")
    copied = [s for s in city.sensors if s.kind in COPIED_KINDS]
    rounds = math.ceil(sensors / sum(s.kind == "air" for s in copied))
    scaled = with_synthetic_sensors(city, len(city.sensors) + rounds * len(copied))
    return scaled.model_copy(update={"sensors": scaled.sensors_of("air")[:sensors]})


def air_events(events: int, sensors: int, seed: int) -> list:
    minutes = math.ceil(events / sensors)
    source = AirSimulator(air_city(sensors), start=START, duration=timedelta(minutes=minutes), seed=seed)
    return list(source.events())[:events]


def launch(system: str, settings: Settings, run_dir: Path) -> Launch:
    topic, namespace = settings.raw_topic("air"), settings.worker_id
    if system == "ioc":  # its consumer group is its Faust app id, the worker id
        return Launch(
            [sys.executable, "-m", "ioc", "worker", "--loglevel", "info"],
            settings.worker_id,
            b"Ready",
            settings_env(settings),
        )
    common = [
        "--broker",
        settings.bootstrap_servers,
        "--group",
        f"{namespace}-{system}",
        "--commit-interval",
        str(COMMIT_INTERVAL[system]),
    ]
    if system == "limit":
        script = ROOT / "benchmarks" / "limit_consumer.py"
        return Launch(
            [sys.executable, str(script), "--topic", topic, *common], f"{namespace}-limit", b"Ready"
        )
    script = ROOT / "benchmarks" / "peer_quix.py"
    argv = [
        str(PEER_PYTHON),
        str(script),
        "--input",
        topic,
        "--output",
        peer_output(settings),
        "--state-dir",
        str(run_dir / f"peer-state-{namespace}"),
        *common,
    ]
    return Launch(argv, f"{namespace}-peer", b"now processing incoming messages")


def peer_output(settings: Settings) -> str:
    return settings.topic("peer.alerts")


def prepare(system: str, servers: Servers, partitions: int, events: list) -> Settings:
    """A fresh namespace with the input on its air raw topic (not timed)."""
    settings = servers.fresh_namespace(partitions)
    raw = settings.raw_topic("air")
    create_topics(settings, None if system == "ioc" else [raw, peer_output(settings)])
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
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id="ioc-bench")
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
                raise SystemExit(f"{launched.argv[1]} exited {process.returncode}; see {log_path}")
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
                    raise SystemExit(f"{launched.group} took the input in one poll; use more --events")
                return measured(steady, (now, done, cpu_seconds(process.pid), busy_cpu_seconds())) | {
                    "ready_seconds": ready,
                    "first_commit_seconds": first_commit,
                    "total_seconds": now - started,
                    "process_cpu_seconds_total": cpu_seconds(process.pid),
                }
            if now - started > timeout:
                raise SystemExit(f"{done:,} of {total:,} committed after {timeout:.0f} s; see {log_path}")
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
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def outputs(system: str, settings: Settings) -> dict[str, int]:
    """Records the system wrote to its alerts topic by the time it was stopped (a sanity check)."""
    topic = {"ioc": settings.alerts_topic, "peer": peer_output(settings)}.get(system)
    if topic is None:
        return {}
    ends = end_offsets(settings, [TopicPartition(topic, p) for p in range(settings.partitions)])
    return {"alerts": sum(ends.values())}


def summary(runs: list[dict]) -> dict:
    rates = [r["events_per_second"] for r in runs]
    cpu = [r["process_cpu_us_per_event"] for r in runs if r["process_cpu_us_per_event"] is not None]
    ready = [r["ready_seconds"] for r in runs if r["ready_seconds"] is not None]
    median = statistics.median(rates)
    return {
        "median_events_per_second": median,
        "min_events_per_second": min(rates),
        "max_events_per_second": max(rates),
        "spread_percent": 100 * (max(rates) - min(rates)) / median,
        "median_process_cpu_us_per_event": statistics.median(cpu) if cpu else None,
        "median_ready_seconds": statistics.median(ready) if ready else None,
    }


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
        "shares_the_cores": "the consumer under test, the Kafka broker (JVM), Redis (written by ioc only), "
        "this driver (producing between runs, polling offsets)" + (f"; {note}" if note else ""),
    }


def peer_version() -> str | None:
    if not PEER_PYTHON.exists():  # run without the peer
        return None
    script = "from importlib.metadata import version; print(version('quixstreams'))"
    return subprocess.run(
        [str(PEER_PYTHON), "-c", script], capture_output=True, text=True, check=True
    ).stdout.strip()


def print_table(systems: dict, ratios: dict) -> None:
    print(
        f"\n{'system':<6} {'median ev/s':>12} {'min':>9} {'max':>9} {'spread':>7} "
        f"{'CPU µs/ev':>10} {'ready s':>8}"
    )
    for name, result in systems.items():
        s = result["summary"]
        cpu = s["median_process_cpu_us_per_event"]
        print(
            f"{name:<6} {s['median_events_per_second']:>12,.0f} {s['min_events_per_second']:>9,.0f} "
            f"{s['max_events_per_second']:>9,.0f} {s['spread_percent']:>6.0f}% "
            f"{cpu if cpu is not None else math.nan:>10,.0f} {s['median_ready_seconds'] or math.nan:>8.1f}"
        )
    print("  ".join(f"{name} = {value:.3f}" for name, value in ratios.items()))


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
    parser.add_argument("--runs", type=int, default=3, help="rounds of limit, ioc and peer")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="which of limit,ioc,peer to run")
    parser.add_argument("--timeout", type=float, default=900, help="give up on a run after this long")
    parser.add_argument("--note", default="", help="what else runs on the machine, for the JSON")
    parser.add_argument(
        "--latency-rates",
        default="1000,5000",
        help="open-loop rates for the alert latency part (then a search for the highest sustained); "
        "empty to skip it",
    )
    parser.add_argument("--latency-seconds", type=float, default=15, help="seconds of load per rate")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench.json")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    systems = [s for s in args.systems.split(",") if s]
    if unknown := set(systems) - set(SYSTEMS):
        raise SystemExit(f"unknown systems {sorted(unknown)}; choose from {', '.join(SYSTEMS)}")
    if "peer" in systems and not PEER_PYTHON.exists():
        raise SystemExit(f"no {PEER_PYTHON}: run `make bench`, or drop the peer with --systems limit,ioc")
    began = time.perf_counter()
    events = air_events(args.events, args.sensors, args.seed)
    runs: dict[str, list[dict]] = {s: [] for s in systems}
    with bench_servers(args.kafka, args.redis) as servers:
        described = machine(bool(args.kafka), args.note)
        print(
            f"{len(events):,} air events of {args.sensors} sensors, {args.partitions} partitions; "
            f"{described['cores']} cores shared with Kafka and Redis; logs in {servers.run_dir}",
            flush=True,
        )
        for round_ in range(1, args.runs + 1):
            for system in systems:
                settings = prepare(system, servers, args.partitions, events)
                log_path = servers.run_dir / f"{system}-{settings.worker_id}.log"
                result = follow(
                    launch(system, settings, servers.run_dir),
                    settings,
                    len(events),
                    log_path,
                    POLL_SECONDS[system],
                    args.timeout,
                )
                result |= {"round": round_, "namespace": settings.worker_id} | outputs(system, settings)
                runs[system].append(result)
                print(
                    f"  round {round_} {system:<5} {result['events_per_second']:>9,.0f} events/s "
                    f"(ready {result['ready_seconds'] or math.nan:.1f} s, "
                    f"{result['total_seconds']:.1f} s in all)",
                    flush=True,
                )
        latency = None
        if rates := [float(rate) for rate in args.latency_rates.split(",") if rate]:
            print("alert latency under open-loop load (benchmarks/alert_latency.py):", flush=True)
            latency = alert_latency.run(servers, rates, args.latency_seconds, args.partitions, find_max=True)
    report = results(args, described, events, runs, time.perf_counter() - began)
    if latency is not None:
        report["latency"] = latency
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report["systems"], report["ratios"])
    print(f"written to {args.out}")


def results(args: argparse.Namespace, described: dict, events: list, runs: dict, seconds: float) -> dict:
    systems = {name: {"runs": rs, "summary": summary(rs)} for name, rs in runs.items()}
    medians = {name: s["summary"]["median_events_per_second"] for name, s in systems.items()}
    ratios = {
        f"ioc/{other}": medians["ioc"] / medians[other]
        for other in ("limit", "peer")
        if "ioc" in medians and other in medians
    }
    return {
        "benchmark": "limit, ioc and a peer catching up one backlog of air events",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": seconds,
        "machine": described,
        "input": {
            "events": len(events),
            "air_sensors": args.sensors,
            "partitions": args.partitions,
            "seed": args.seed,
            "first_event": START.isoformat(),
            "interval_seconds": 60,
        },
        "method": {
            "rate": f"events committed from the first poll at >= {STEADY_FROM:.0%} of the input committed "
            "to the first at 100 %, over the time between them",
            "poll_seconds": POLL_SECONDS,
            "commit_interval_seconds": COMMIT_INTERVAL,
            "runs": args.runs,
            "order": "rounds of " + ", ".join(runs),
        },
        "systems": systems,
        "ratios": ratios,
    }


if __name__ == "__main__":
    main()
