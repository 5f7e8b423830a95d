"""Worker catch-up: how fast ``ioc worker`` processes (one, or several in one group) consume a backlog.

    python benchmarks/worker_catch_up.py                  # starts its own Kafka and Redis (ioc infra)
    python benchmarks/worker_catch_up.py --hours 6 --partitions 2
    python benchmarks/worker_catch_up.py --workers 2      # two workers sharing the partitions
    python benchmarks/worker_catch_up.py --kafka 127.0.0.1:9092 --redis redis://127.0.0.1:6379/0

``--hours`` simulated hours of all four feeds (seeded, with the simulator's planned scenarios injected
as in ``tests/e2e/test_alerts_ground_truth.py`` when the run is long enough to hold them) are produced
to the raw topics before the clock starts. Then ``--workers`` ``ioc worker`` processes are started
(one consumer group), and the clock runs from their start until the group (the Faust app id) has
committed every raw topic partition to its
end offset: every event went through the per-feed pipeline agents and their offsets were committed
(Faust commits about every 2.8 s, so the figure includes up to one commit interval). The alert,
incident and picture agents run too but are not waited for. Prints the events, the seconds, events/s,
the start-up time (until every worker logs ``Ready``), and what the pipeline wrote. Run it on an
otherwise idle machine: the workers share the CPU with the broker and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kafka import KafkaAdminClient, TopicPartition  # noqa: E402

from benchmarks.backlog import committed, cpu_seconds, end_offsets, produce  # noqa: E402
from benchmarks.servers import bench_servers  # noqa: E402
from connectors.kafka import create_topics, kafka_python_options  # noqa: E402
from connectors.sources.simulator import city_simulator  # noqa: E402
from connectors.sources.simulator.scenarios import KINDS, ScenarioInjector, plan_scenarios  # noqa: E402
from ioc.city import load_city  # noqa: E402
from ioc.feeds import FEEDS  # noqa: E402
from ioc.settings import Settings  # noqa: E402
from tests.conftest import settings_env  # noqa: E402

START = datetime.fromisoformat("2026-07-06T00:00:00+07:00")


def simulated(settings: Settings, hours: float, seed: int) -> list:
    city = load_city(settings.city)
    duration = timedelta(hours=hours)
    key, key_id = settings.card_hmac_key.get_secret_value().encode(), settings.card_hmac_key_id
    source = city_simulator(city, FEEDS, start=START, duration=duration, seed=seed, card_key=key,
                            card_key_id=key_id)  # fmt: skip
    try:
        scenarios = plan_scenarios(city, KINDS, start=START, duration=duration, seed=seed)
    except ValueError:  # too short a run for every kind of scenario: the plain feeds
        return list(source.events())
    return list(
        ScenarioInjector(source, scenarios, city, seed=seed, card_key=key, card_key_id=key_id).events()
    )


def raw_partitions(settings: Settings) -> list[TopicPartition]:
    topics = [settings.raw_topic(feed) for feed in FEEDS]
    return [TopicPartition(topic, p) for topic in topics for p in range(settings.partitions)]


def written(settings: Settings, admin: KafkaAdminClient) -> dict[str, int]:
    """Records on the pipeline's output topics and on its tables' changelogs (a diagnostic: the fewer
    records per event, the less the worker produces)."""
    topics = {
        "aggregates": [settings.agg_topic(f, spec.label) for f in FEEDS for spec in settings.windows_of(f)],
        "anomalies": [settings.anomalies_topic],
        "dead letters": [settings.dlq_topic],
        "table changelog": [
            t
            for t in admin.list_topics()
            if t.startswith(f"{settings.worker_id}-")
            and t.endswith(("-sensors-changelog", "-clocks-changelog", "-offsets-changelog"))
        ],
    }
    ends = end_offsets(settings, [TopicPartition(t, p) for ts in topics.values() for t in ts
                                  for p in range(settings.partitions)])  # fmt: skip
    return {name: sum(n for tp, n in ends.items() if tp.topic in ts) for name, ts in topics.items()}


def catch_up(
    settings: Settings, run_dir: Path, total: int, timeout: float, stall: float, workers: int = 1
) -> dict:
    partitions = raw_partitions(settings)
    ends = end_offsets(settings, partitions)
    assert sum(ends.values()) == total, (sum(ends.values()), total)
    admin = KafkaAdminClient(**kafka_python_options(settings), client_id="ioc-bench")
    log_paths = [run_dir / f"worker-{settings.worker_id}-{n}.log" for n in range(workers)]
    logs = [path.open("wb") for path in log_paths]
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "ioc", "worker", "--loglevel", "info"],
            env=settings_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for log in logs
    ]
    ready = first_commit = None
    last_done, last_progress, last_report = 0, started, started
    try:
        while True:
            time.sleep(0.25)
            now = time.perf_counter()
            for process, path in zip(processes, log_paths, strict=True):
                if process.poll() is not None:
                    raise SystemExit(f"a worker exited {process.returncode}; see {path}")
            if ready is None and all(b"Ready" in path.read_bytes() for path in log_paths):
                ready = now - started
            offsets = committed(admin, settings.worker_id, partitions)
            done = sum(min(offsets.get(tp, 0), end) for tp, end in ends.items())
            if done and first_commit is None:
                first_commit = now - started
            if done > last_done:
                last_done, last_progress = done, now
            if all(offsets.get(tp, 0) >= end for tp, end in ends.items()):
                cpu = [cpu_seconds(process.pid) for process in processes]
                result = {"seconds": now - started, "ready": ready, "first_commit": first_commit}
                total_cpu = None if None in cpu else sum(cpu)
                return result | {"cpu": total_cpu, "written": written(settings, admin)}
            if now - last_report >= 10:
                print(f"    {now - started:6.1f} s: {done:,} of {total:,} committed", flush=True)
                last_report = now
            if now - started > timeout or (ready is not None and now - last_progress > stall):
                tail = log_paths[0].read_text(errors="replace")[-3000:]
                raise SystemExit(
                    f"no progress for {now - last_progress:.0f} s at {done:,}/{total:,}:\n{tail}"
                )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            log.close()
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kafka", help="existing bootstrap servers (default: start a local broker)")
    parser.add_argument("--redis", help="existing Redis URL (default: start a local one)")
    parser.add_argument("--hours", type=float, default=24, help="simulated hours of all four feeds")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--partitions", type=int, default=4, help="partitions of every topic")
    parser.add_argument("--runs", type=int, default=1, help="runs to time, each on fresh topics")
    parser.add_argument("--workers", type=int, default=1, help="worker processes in the consumer group")
    parser.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds")
    parser.add_argument("--stall", type=float, default=120, help="give up after this long without progress")
    args = parser.parse_args()

    with bench_servers(args.kafka, args.redis) as servers:
        run_dir = servers.run_dir
        events = simulated(Settings(), args.hours, args.seed)
        feeds = Counter(e.feed for e in events)
        print(
            f"{len(events):,} events ({', '.join(f'{f} {n:,}' for f, n in sorted(feeds.items()))}), "
            f"{args.hours:g} simulated hours, {args.partitions} partitions per topic, "
            f"{args.workers} worker{'s' if args.workers > 1 else ''}; "
            f"{os.cpu_count()} CPUs shared with Kafka and Redis; logs in {run_dir}",
            flush=True,
        )
        for run in range(args.runs):
            # Fresh topics, consumer group and tables each run: nothing left over from the one before.
            settings = servers.fresh_namespace(args.partitions)
            create_topics(settings)
            asyncio.run(produce(settings, events))
            result = catch_up(settings, run_dir, len(events), args.timeout, args.stall, args.workers)
            seconds, ready = result["seconds"], result["ready"]
            after_ready = f"; {len(events) / (seconds - ready):,.0f} events/s after start-up" if ready else ""
            print(
                f"  run {run + 1}: {len(events):,} events in {seconds:.1f} s = "
                f"{len(events) / seconds:,.0f} events/s (start-up until Ready "
                f"{ready if ready is not None else float('nan'):.1f} s, first commit "
                f"{result['first_commit'] or float('nan'):.1f} s{after_ready})",
                flush=True,
            )
            if result["cpu"] is not None:
                per_event = 1e6 * result["cpu"] / len(events)
                print(f"    workers' CPU (with start-up): {result['cpu']:.1f} s, {per_event:.0f} µs/event")
            print(f"    written: {', '.join(f'{n:,} {name}' for name, n in result['written'].items())}")


if __name__ == "__main__":
    main()
