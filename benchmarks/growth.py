"""Growth: ioc's CPU per event with 33 simulated hours of state, against the figure with 3 hours.

    python benchmarks/growth.py                            # starts its own Kafka and Redis (ioc infra)
    python benchmarks/growth.py --sensors 40 --hours 33 --json growth.json
    python benchmarks/growth.py --kafka HOST:9092 --redis redis://HOST:6379/0

The worker's per-sensor state grows with simulated time (hourly means over the last day, seasonal
baselines), so its cost per event may too. Two ``ioc worker`` processes, each on a namespace of its own,
get ``--sensors`` air sensors (Hanoi's stations and synthetic copies, one reading a minute each, seeded):

- the *old* worker ``--hours`` simulated hours (33), from 2026-01-10 18:30 +07:00: its first 30 hours in
  chunks of up to 3 hours (not measured), then segment B, its hours 30–33, in three 1-hour chunks;
- the *young* worker a 30-minute warm-up from 2026-01-12 00:00 +07:00, then segment A, its hours
  0.5–3.5, in three 1-hour chunks.

So A and B cover the same clock time, 2026-01-12 00:30–03:30 (same hours of the day, same month: the
simulated air is alike), and differ in the state the worker holds: 0.5–3.5 hours against 30–33. The A
and B chunks alternate (A1, B1, A2, …), so the machine's drift (other load on the shared cores) hits
both alike. For each chunk the driver produces it, waits until the worker's group has committed every
topic the worker reads to its end (those its group is assigned: the raw topics, and the inputs of the
alert, incident and picture agents behind the pipeline), then reads the worker's CPU time (user + system,
from ``/proc``): the work of the chunk's events, with none in flight at either end, plus the worker's
idle ticking while the driver waits for Faust's commit (every ~2.8 s); that idle rate, measured over 5 s
before the first chunk, times the chunk's wall time, is subtracted (the figure with it is kept too).

A and B are the CPU per event pooled over their chunks, with the min and max of their chunks. The result
is B/A against the target of 1.15 ("within 15 %"); its range is B's cheapest chunk over A's dearest to
B's dearest over A's cheapest. Each chunk also records the anomalies and alert records it made: rules
that need a day of history fire only in the old worker, which is part of what its state costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kafka import KafkaAdminClient, TopicPartition  # noqa: E402

from benchmarks.alert_latency import lag  # noqa: E402
from benchmarks.backlog import (  # noqa: E402
    AIR_START,
    air_events,
    consumed_topics,
    cpu_seconds,
    end_offsets,
    produce,
)
from benchmarks.servers import Servers, bench_servers  # noqa: E402
from connectors.kafka import create_topics, kafka_python_options, pipeline_topics  # noqa: E402
from ioc.settings import Settings  # noqa: E402
from tests.conftest import settings_env  # noqa: E402

SENSORS = 40
HOURS = 33
TARGET = 1.15  # B/A at most: "within 15 %"
WARM_UP_HOURS = 0.5  # the young worker's, before A
SEGMENT_HOURS = 3  # each of A and B, in 1-hour chunks
MIDDLE_CHUNK_HOURS = 3  # the old worker's hours before B, in chunks of up to this
POLL_SECONDS = 0.25
CHUNK_TIMEOUT = 180.0  # seconds for one chunk to be committed, at most
IDLE_SECONDS = 5.0  # each worker's idle CPU is measured over this long before the first chunk


def old_edges(hours: int) -> list[float]:
    """The old worker's chunk edges, in its simulated hours: up to 3-hour chunks, then B's 1-hour ones."""
    b = hours - SEGMENT_HOURS
    if b < WARM_UP_HOURS + SEGMENT_HOURS:
        raise SystemExit(
            f"--hours {hours} is too short: at least {math.ceil(WARM_UP_HOURS + 2 * SEGMENT_HOURS)}"
        )
    edges = [0.0]
    while edges[-1] < b:
        edges.append(min(edges[-1] + MIDDLE_CHUNK_HOURS, float(b)))
    return edges + [float(b + h) for h in range(1, SEGMENT_HOURS + 1)]


def young_edges() -> list[float]:
    return [0.0, WARM_UP_HOURS, *(WARM_UP_HOURS + h for h in range(1, SEGMENT_HOURS + 1))]


def estimate_seconds(sensors: int, hours: int, events_per_second: float) -> float:
    """Roughly how long a run takes at this catch-up rate (for the bench's time budget)."""
    simulated = hours + WARM_UP_HOURS + SEGMENT_HOURS
    chunks = len(old_edges(hours)) + len(young_edges()) - 2
    return sensors * simulated * 60 / events_per_second * 1.3 + chunks * 4 + 40


def written(settings: Settings) -> dict[str, int]:
    """Records on the anomalies and alerts topics so far: how much alert work a chunk made."""
    topics = {"anomalies": settings.anomalies_topic, "alerts": settings.alerts_topic}
    partitions = [TopicPartition(t, p) for t in topics.values() for p in range(settings.partitions)]
    ends = end_offsets(settings, partitions)
    return {name: sum(n for tp, n in ends.items() if tp.topic == topic) for name, topic in topics.items()}


class Fed:
    """One worker on a fresh namespace, fed chunks of an input, its CPU read once each is committed."""

    def __init__(self, name: str, servers: Servers, partitions: int, events: list, start) -> None:
        self.name, self.events, self.start = name, events, start
        self.settings = settings = servers.fresh_namespace(partitions)
        create_topics(settings)
        self.admin = KafkaAdminClient(**kafka_python_options(settings), client_id="ioc-bench")
        self.log_path = servers.run_dir / f"growth-{name}-worker-{settings.worker_id}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ioc", "worker", "--loglevel", "info"],
            env=settings_env(settings),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        self.topics: list[str] = []
        self.idle_rate = 0.0

    def wait_for(self, probe: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the {self.name} worker exited {self.process.returncode}; see {self.log_path}"
                )
            if probe():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)

    def joined(self) -> None:
        """Wait for it to start, and learn what it reads from its group's assignment."""
        if not self.wait_for(lambda: b"Ready" in self.log_path.read_bytes(), 60):
            raise RuntimeError(f"the {self.name} worker did not start within 60 s; see {self.log_path}")

        def assigned() -> bool:
            among = pipeline_topics(self.settings)
            self.topics = consumed_topics(self.admin, self.settings.worker_id, among)
            return bool(self.topics)

        if not self.wait_for(assigned, 60):
            raise RuntimeError(
                f"the {self.name} worker's group had no assignment in 60 s; see {self.log_path}"
            )

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid) or 0.0

    def feed(self, first: float, last: float, segment: str, timeout: float) -> dict | None:
        """Hours [first, last) of its input; None if not committed within ``timeout``."""
        chunk = [
            e
            for e in self.events
            if first * 3600 <= (e.date_observed - self.start).total_seconds() < last * 3600
        ]
        written_before = written(self.settings)
        cpu_before, began = self.cpu(), time.monotonic()
        asyncio.run(produce(self.settings, chunk))
        if not self.wait_for(lambda: lag(self.settings, self.admin, self.topics) == 0, timeout):
            return None
        cpu, seconds = self.cpu() - cpu_before, time.monotonic() - began
        # Less the idle ticking over the chunk's wall time (an overestimate by the idle rate over the busy
        # part: about 1 % of the chunk's CPU).
        work = max(0.0, cpu - self.idle_rate * seconds)
        return {
            "worker": self.name,
            "from_hour": first,
            "to_hour": last,
            "clock": f"{(self.start + timedelta(hours=first)).isoformat()}/"
            f"{(self.start + timedelta(hours=last)).isoformat()}",
            "segment": segment,
            "events": len(chunk),
            "worker_cpu_seconds": round(cpu, 3),
            "seconds_to_committed": round(seconds, 2),
            "work_cpu_seconds": round(work, 3),
            "cpu_us_per_event": round(1e6 * work / len(chunk), 1),
            "cpu_us_per_event_with_idle": round(1e6 * cpu / len(chunk), 1),
        } | {name: n - written_before[name] for name, n in written(self.settings).items()}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        self.admin.close()


def run(
    servers: Servers,
    sensors: int = SENSORS,
    hours: int = HOURS,
    partitions: int = 4,
    seed: int = 7,
    *,
    deadline: float | None = None,
    on_chunk: Callable[[dict], None] | None = None,
) -> dict:
    """The chunks, A, B and B/A. ``deadline`` (``time.monotonic()``) stops it early, marked partial."""
    # The old worker's hour hours−3 is the young one's 0.5: the same clock time.
    old_start = AIR_START - timedelta(hours=hours - SEGMENT_HOURS - WARM_UP_HOURS)
    old_events = air_events(sensors * hours * 60, sensors, seed, old_start)
    young_hours = WARM_UP_HOURS + SEGMENT_HOURS
    young_events = air_events(round(sensors * young_hours * 60), sensors, seed, AIR_START)
    result: dict = {
        "method": "two workers: the old one fed hours 0-33, the young one 0-3.5 of the same clock time "
        "as the old one's 29.5-33; the 1-hour chunks of A (young, hours 0.5-3.5) and B (old, hours 30-33) "
        "alternate; each chunk's worker CPU (/proc) read once every topic it reads is committed, less "
        "its idle rate",
        "sensors": sensors,
        "simulated_hours": hours,
        "interval_seconds": 60,
        "events": len(old_events) + len(young_events),
        "partitions": partitions,
        "old_worker_start": old_start.isoformat(),
        "young_worker_start": AIR_START.isoformat(),
        "target_ratio": TARGET,
        "chunks": [],
        "complete": False,
    }
    workers = [Fed("old", servers, partitions, old_events, old_start)]
    try:
        workers.append(Fed("young", servers, partitions, young_events, AIR_START))
        old, young = workers
        for worker in workers:
            worker.joined()
        time.sleep(3)  # past the first idle commit
        idle_from, idle_cpu = time.monotonic(), [w.cpu() for w in workers]
        time.sleep(IDLE_SECONDS)
        for worker, before in zip(workers, idle_cpu, strict=True):
            worker.idle_rate = (worker.cpu() - before) / (time.monotonic() - idle_from)
        result["idle_cpu_cores"] = {w.name: round(w.idle_rate, 4) for w in workers}
        # The old worker's history and the young one's warm-up, then A and B alternately.
        edges = old_edges(hours)
        plan = [(old, a, b, "history") for a, b in pairwise(edges[:-SEGMENT_HOURS])]
        plan.append((young, 0.0, WARM_UP_HOURS, "warm-up"))
        a_edges, b_edges = young_edges()[1:], edges[-SEGMENT_HOURS - 1 :]
        for h in range(SEGMENT_HOURS):
            plan += [(young, a_edges[h], a_edges[h + 1], "A"), (old, b_edges[h], b_edges[h + 1], "B")]
        idle = ", ".join(f"{w.name} {w.idle_rate:.1%}" for w in workers)
        print(
            f"growth: {sensors} air sensors; old worker {hours} simulated hours from "
            f"{old_start:%Y-%m-%d %H:%M}, young {young_hours:g} from {AIR_START:%Y-%m-%d %H:%M}; "
            f"A and B alternate (idle: {idle} of a core)",
            flush=True,
        )
        for worker, first, last, segment in plan:
            needed = sensors * (last - first) * 60 / 500 + 10  # a slow machine's pace, and a commit
            if deadline is not None and time.monotonic() + needed > deadline:
                result["stopped"] = (
                    f"out of time (--max-minutes) before the {worker.name} worker's hour {first:g}"
                )
                break
            timeout = CHUNK_TIMEOUT if deadline is None else min(CHUNK_TIMEOUT, deadline - time.monotonic())
            record = worker.feed(first, last, segment, timeout)
            if record is None:
                what = f"the {worker.name} worker's hours {first:g}–{last:g}"
                result["stopped"] = f"{what} not committed within {timeout:.0f} s"
                break
            result["chunks"].append(record)
            print(
                f"  {worker.name:<5} hours {first:>4g}–{last:<4g} {segment:<7} {record['events']:>6,} events "
                f"{record['cpu_us_per_event']:>7,.0f} µs/event  "
                f"({record['anomalies']:,} anomalies, {record['alerts']:,} alert records)",
                flush=True,
            )
            if on_chunk is not None:
                on_chunk(result | figures(result["chunks"]))
        else:
            result["complete"] = True
    finally:
        for worker in workers:
            worker.stop()
    return result | figures(result["chunks"])


def figures(chunks: list[dict]) -> dict:
    """A and B pooled over their chunks, their chunks' spread, B/A and the verdict."""
    out: dict = {}
    for name in ("A", "B"):
        ours = [c for c in chunks if c["segment"] == name]
        if len(ours) < SEGMENT_HOURS:
            out[name] = None
            continue
        per_chunk = [c["cpu_us_per_event"] for c in ours]
        events = sum(c["events"] for c in ours)
        out[name] = {
            "worker": ours[0]["worker"],
            "from_hour": ours[0]["from_hour"],
            "to_hour": ours[-1]["to_hour"],
            "events": events,
            "cpu_us_per_event": round(1e6 * sum(c["work_cpu_seconds"] for c in ours) / events, 1),
            "cpu_us_per_event_with_idle": round(1e6 * sum(c["worker_cpu_seconds"] for c in ours) / events, 1),
            "min_cpu_us_per_event": min(per_chunk),
            "max_cpu_us_per_event": max(per_chunk),
            "anomalies_per_1000_events": round(1000 * sum(c["anomalies"] for c in ours) / events, 1),
            "alert_records_per_1000_events": round(1000 * sum(c["alerts"] for c in ours) / events, 1),
        }
    a, b = out["A"], out["B"]
    if a and b:
        ratio = b["cpu_us_per_event"] / a["cpu_us_per_event"]
        out["ratio"] = round(ratio, 3)
        # The widest the chunks allow: B's cheapest over A's dearest, B's dearest over A's cheapest.
        out["ratio_range"] = [
            round(b["min_cpu_us_per_event"] / a["max_cpu_us_per_event"], 3),
            round(b["max_cpu_us_per_event"] / a["min_cpu_us_per_event"], 3),
        ]
        out["within_target"] = ratio <= TARGET
    else:
        out["ratio"] = out["ratio_range"] = out["within_target"] = None
    return out


def describe(result: dict) -> str | None:
    """One line: A, B, and B/A against the target."""
    a, b = result.get("A"), result.get("B")
    if not (a and b):
        return None

    def segment(name: str, s: dict) -> str:
        return (
            f"{name} ({s['worker']} worker, hours {s['from_hour']:g}–{s['to_hour']:g}) "
            f"{s['cpu_us_per_event']:,.0f} µs/event ({s['min_cpu_us_per_event']:,.0f}–"
            f"{s['max_cpu_us_per_event']:,.0f}; {s['anomalies_per_1000_events']:g} anomalies per 1,000)"
        )

    low, high = result["ratio_range"]
    return (
        f"{segment('A', a)}, {segment('B', b)}: B/A = {result['ratio']:.2f} ({low:.2f}–{high:.2f}), "
        + ("within" if result["within_target"] else "NOT within")
        + f" {TARGET - 1:.0%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kafka", help="existing bootstrap servers (default: start a local broker)")
    parser.add_argument("--redis", help="existing Redis URL (default: start a local one)")
    parser.add_argument("--sensors", type=int, default=SENSORS, help="air sensors, one reading a minute")
    parser.add_argument("--hours", type=int, default=HOURS, help="simulated hours of the old worker")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args()
    with bench_servers(args.kafka, args.redis) as servers:
        result = run(servers, args.sensors, args.hours, args.partitions, args.seed)
    if line := describe(result):
        print(line)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
