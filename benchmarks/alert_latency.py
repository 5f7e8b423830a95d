"""Alert latency under load: from an event's creation to its alert on the operators' live stream.

    python benchmarks/alert_latency.py                     # starts its own Kafka and Redis (ioc infra)
    python benchmarks/alert_latency.py --rates 1000,5000 --seconds 20 --find-max --json out.json
    python benchmarks/alert_latency.py --rates 500,1000 --seconds 10 --catch-up-limit 30 --max-minutes 5

One ``ioc worker`` and one ``ioc api`` run as subprocesses, with a registry scaled to 3,000 sensors
(``--city`` written to the run folder). For each rate, an *open-loop* producer sends air readings of
the scaled registry's air sensors at that many events per second for ``--seconds`` (sent on schedule,
never waiting for Kafka's acknowledgement, so a slow pipeline cannot slow the load down), event time =
creation time. Twice a second it also sends a *probe*: the first sample of a fresh water station with
dissolved oxygen at 0.5 mg/l, below QCVN 08's limit, which ``water.do_low`` alerts at once. Latency is
from the probe's creation (wall clock, just before the send) to its ``opened`` alert arriving on
``GET /v1/stream`` (SSE): the raw topic, the pipeline agent, ``<prefix>.anomalies``, the alert manager,
``<prefix>.alerts``, the picture agent's Redis write and the API's push.

A rate is *sustained* when the worker kept up: when the producer stops, the worker is less than four
seconds of input behind, it catches up within ``--catch-up-limit`` seconds (120), and every probe has
alerted with p99 under 2 s. A rate that is not sustained is a result, printed and recorded (with how far
behind the worker still was when the wait ended), never an error. Rates go in rising order; a listed rate
above one that was not sustained is skipped, and the next rate measured after one that was not sustained
starts on a fresh namespace with a fresh worker and API, so that it does not pay for the backlog and
state the failed one left. ``--find-max`` then bisects between the highest sustained and the lowest
unsustained rate. ``--max-minutes`` bounds the whole: a rate that cannot finish in time is skipped and
listed as such. Kafka, Redis, the worker, the API and this process share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from aiokafka import AIOKafkaProducer  # noqa: E402
from kafka import KafkaAdminClient, TopicPartition  # noqa: E402

from benchmarks.backlog import committed, consumed_topics, end_offsets  # noqa: E402
from benchmarks.servers import Servers, bench_servers  # noqa: E402
from benchmarks.sse_latency import Process, summary, wait_until  # noqa: E402
from connectors.kafka import aiokafka_options, create_topics, kafka_python_options, pipeline_topics  # noqa: E402
from connectors.sources.simulator.scale import with_synthetic_sensors  # noqa: E402
from ioc.city import load_city  # noqa: E402
from ioc.settings import Settings  # noqa: E402
from tests.conftest import free_port, settings_env  # noqa: E402

KEY = "bench-operator-key"
SENSORS = 3000  # the scaled registry: ~670 air sensors carry the load, ~1,200 water stations are probes
PROBES_PER_SECOND = 2
SUSTAINED_P99_MS = 2000
# Seconds the worker gets to catch up after a rate; one that needs longer is not sustained.
CATCH_UP_LIMIT = 120.0


def air_reading(sensor: str, at: datetime, n: int) -> bytes:
    # Clean air (VN_AQI "Tốt") that varies a little: load without alerts of its own.
    pm25 = 18.0 + (n % 17)
    return json.dumps(
        {
            "sensorId": sensor,
            "dateObserved": at.isoformat(timespec="milliseconds"),
            "pm25": pm25,
            "pm10": pm25 * 1.4,
            "no2": 20.0,
            "temperature": 24.0,
            "relativeHumidity": 70.0,
        }  # fmt: skip
    ).encode()


def probe_sample(station: str, at: datetime) -> bytes:
    return json.dumps(
        {
            "sensorId": station,
            "dateObserved": at.isoformat(timespec="milliseconds"),
            "dissolvedOxygen": 0.5,
            "pH": 7.2,
            "temperature": 25.0,
        }  # fmt: skip
    ).encode()


class Probes:
    """Probe stations not used yet, when each probe was created, when its alert arrived."""

    def __init__(self, stations: list[str]) -> None:
        self.unused = list(reversed(stations))
        self.created: dict[str, int] = {}  # station → ns
        self.arrived: dict[str, int] = {}

    def take(self) -> str:
        if not self.unused:
            raise SystemExit("out of probe stations: raise SENSORS or lower --seconds")
        return self.unused.pop()

    def latencies_ms(self, stations: list[str]) -> list[float]:
        return [(self.arrived[s] - self.created[s]) / 1e6 for s in stations if s in self.arrived]


async def listen(url: str, probes: Probes, ready: threading.Event) -> None:
    """Record when each probe's alert opens on the live stream."""
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=None, sock_read=None, sock_connect=30)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(url, headers={"X-API-Key": KEY}) as response,
    ):
        response.raise_for_status()
        kind = None
        async for raw in response.content:
            now = time.time_ns()
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "snapshot":
                ready.set()
            elif line.startswith("data: ") and kind == "alert":
                event = json.loads(line[6:])
                entity = event["alert"]["entity"]
                if event["change"] == "opened" and entity in probes.created:
                    probes.arrived.setdefault(entity, now)


def follow_stream(url: str, probes: Probes, ready: threading.Event) -> None:
    """``listen`` until the API goes away (at the end of the run)."""
    import aiohttp

    with contextlib.suppress(aiohttp.ClientError, ConnectionError):
        asyncio.run(listen(url, probes, ready))


async def produce_at(
    settings: Settings, rate: float, seconds: float, air: list[str], probes: Probes
) -> tuple[int, list[str], float]:
    """Open loop: the due events every 10 ms, acknowledgements awaited only at the end."""
    producer = AIOKafkaProducer(
        **aiokafka_options(settings), enable_idempotence=True, acks="all", linger_ms=5,
        max_batch_size=262_144,
    )  # fmt: skip
    await producer.start()
    sent, sent_probes, pending = 0, [], []
    air_topic, water_topic = settings.raw_topic("air"), settings.raw_topic("water")
    try:
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            now = datetime.now(UTC)
            for _ in range(int(elapsed * rate) - sent):
                sensor = air[sent % len(air)]
                value = air_reading(sensor, now, sent)
                pending.append(await producer.send(air_topic, value, key=sensor.encode()))
                sent += 1
            if len(sent_probes) < elapsed * PROBES_PER_SECOND:
                station = probes.take()
                probes.created[station] = time.time_ns()
                value = probe_sample(station, datetime.now(UTC))
                pending.append(await producer.send(water_topic, value, key=station.encode()))
                sent_probes.append(station)
            await asyncio.sleep(0.01)
        produced_for = time.monotonic() - started
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent, sent_probes, produced_for


def lag(settings: Settings, admin: KafkaAdminClient, topics: list[str]) -> int:
    """Records of ``topics`` the worker's group has not committed yet."""
    partitions = [TopicPartition(topic, p) for topic in topics for p in range(settings.partitions)]
    ends = end_offsets(settings, partitions)
    done = committed(admin, settings.worker_id, partitions)
    return sum(end - done.get(tp, 0) for tp, end in ends.items())


class Rig:
    """One worker and one API on a namespace of their own, and a reader of the live stream."""

    def __init__(self, servers: Servers, partitions: int, city_file: Path, probes: Probes) -> None:
        self.settings = settings = servers.fresh_namespace(
            partitions, api_keys=f"operator:{KEY}", city=str(city_file)
        )
        create_topics(settings)
        env, port, logs = settings_env(settings), free_port(), servers.run_dir
        name = settings.worker_id
        worker = Process("worker", [sys.executable, "-m", "ioc", "worker"], logs / f"worker-{name}.log",
                         env=env)  # fmt: skip
        api = Process("api", [sys.executable, "-m", "ioc", "api", "--port", str(port)],
                      logs / f"api-{name}.log", env=env)  # fmt: skip
        self.processes = [worker, api]
        self.admin = KafkaAdminClient(**kafka_python_options(settings), client_id="ioc-bench")
        try:
            http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
            wait_until(lambda: http.get("/healthz").status_code == 200, 60, "the API", self.processes)
            # The live stream is read in a thread of its own while the producer runs here; it ends
            # when the API stops.
            ready = threading.Event()
            url = f"http://127.0.0.1:{port}/v1/stream"
            threading.Thread(target=follow_stream, args=(url, probes, ready), daemon=True).start()
            wait_until(ready.is_set, 30, "the live stream", self.processes)
            # What the worker reads, from its group's assignment (its agents change as it does).
            self.topics: list[str] = []

            def joined() -> bool:
                self.topics = consumed_topics(self.admin, settings.worker_id, pipeline_topics(settings))
                return bool(self.topics)

            wait_until(joined, 60, "the worker's consumer group", self.processes)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for process in self.processes:
            process.stop()
        self.admin.close()


def caught_up(probe, timeout: float, processes: list[Process]) -> bool:
    """Whether ``probe()`` came true within ``timeout`` seconds (a crashed process is an error)."""
    deadline = time.monotonic() + timeout
    while True:
        for process in processes:
            process.check()
        if probe():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


def measure_rate(rig: Rig, rate: float, seconds: float, air: list[str], probes: Probes,
                 catch_up_limit: float) -> dict:  # fmt: skip
    """One rate: open-loop load, then up to ``catch_up_limit`` seconds for the worker to catch up."""
    settings, admin = rig.settings, rig.admin
    print(f"  {rate:,.0f} events/s for {seconds:g} s …", flush=True)
    sent, stations, produced_for = asyncio.run(produce_at(settings, rate, seconds, air, probes))
    raw = [settings.raw_topic("air"), settings.raw_topic("water")]
    behind = lag(settings, admin, raw)
    stopped_at = time.monotonic()
    # Catch up before the next rate, on every topic the worker reads (the alert manager and the picture
    # agent trail the pipeline), so a rate never pays for the one before. Faust commits every
    # ~3 s: lag reads high by up to that. A worker that does not catch up within the limit is a result
    # (not sustained), not an error.
    done = caught_up(lambda: lag(settings, admin, rig.topics) == 0
                     and all(s in probes.arrived for s in stations), catch_up_limit,
                     rig.processes)  # fmt: skip
    catch_up = time.monotonic() - stopped_at
    alerted = probes.latencies_ms(stations)
    latencies = {k: (round(v, 1) if not math.isnan(v) else None) if isinstance(v, float) else v
                 for k, v in summary(alerted).items()}  # fmt: skip
    missing = len(stations) - len(alerted)
    p99 = latencies["p99"]
    sustained = done and behind <= rate * 4 and not missing and p99 is not None and p99 < SUSTAINED_P99_MS
    result = {
        "target_rate": rate,
        "achieved_rate": round(sent / produced_for),
        "events": sent,
        "probes": len(stations),
        "probes_without_alert": missing,
        # Probes that never alerted are not in the percentiles: with any missing, they are lower bounds.
        "latency_ms": latencies,
        "lag_when_producer_stopped": behind,
        "caught_up": done,
        "catch_up_seconds": round(catch_up, 1),
        "sustained": sustained,
    }
    if not done:
        result["lag_when_given_up"] = lag(settings, admin, rig.topics)
    p50 = "–" if latencies["p50"] is None else f"{latencies['p50']:,.0f}"
    print(
        f"    achieved {result['achieved_rate']:,}/s; p50 {p50} ms, p99 {p99 or math.nan:,.0f} ms; "
        f"{behind:,} behind when the producer stopped; "
        + ("sustained" if sustained else "NOT sustained")
        + ("" if done else f" (still {result['lag_when_given_up']:,} behind after {catch_up_limit:.0f} s; "
                           f"{missing} of {len(stations)} probes without an alert)"),
        flush=True,
    )  # fmt: skip
    return result


def run(
    servers: Servers,
    rates: list[float],
    seconds: float,
    partitions: int,
    find_max: bool,
    *,
    target_rate: float | None = None,
    deadline: float | None = None,
    catch_up_limit: float = CATCH_UP_LIMIT,
    on_result=None,
) -> dict:
    """Measure each rate (and, with ``find_max``, bisect for the highest sustained) on these servers.

    ``target_rate`` first, when given; then ``rates`` in rising order, skipping those above a rate that
    was not sustained. After a rate that was not sustained, the next one starts on a fresh namespace with
    a fresh worker and API (after the warm-up), so it does not pay for the backlog and the state the
    failed one left. ``deadline`` (``time.monotonic()``) bounds it: a rate that could not finish by then
    is not started, and is listed as skipped. ``on_result(partial)`` is called after every rate.
    """
    city = with_synthetic_sensors(load_city("hanoi"), SENSORS)
    city_file = servers.run_dir / "city.json"
    city_file.write_text(city.model_dump_json(by_alias=True), encoding="utf-8")
    air = [s.id for s in city.sensors if s.kind == "air"]
    # Copies of class A–C water bodies: water.do_low judges those (drains are anoxic by nature).
    probes = Probes(
        [s.id for s in city.sensors if s.kind == "water" and "~" in s.id and s.water_class in "ABC"]
    )
    results: list[dict] = []
    skipped: list[dict] = []
    rigs = 0
    rig: Rig | None = None

    def report() -> dict:
        sustained = [r["target_rate"] for r in results if r["sustained"]]
        return {
            "method": "open-loop producer; probe creation → opened alert on GET /v1/stream",
            "seconds_per_rate": seconds,
            "partitions": partitions,
            "catch_up_limit_seconds": catch_up_limit,
            "rates": results,
            "skipped": skipped,
            "workers_started": rigs,
            "highest_sustained_rate": max(sustained) if sustained else None,
        }

    def left() -> float:
        return math.inf if deadline is None else deadline - time.monotonic()

    def measure(rate: float, role: str) -> None:
        nonlocal rig, rigs
        # The load, a short catch-up, and a fresh worker's start-up and warm-up when one is needed.
        needed = seconds + 15 + (0 if rig else 35)
        if left() < needed:
            skipped.append({"target_rate": rate, "role": role, "reason": "out of time (--max-minutes)"})
            print(f"  {rate:,.0f} events/s skipped: out of time", flush=True)
            return
        if rig is None:
            rig = Rig(servers, partitions, city_file, probes)
            rigs += 1
            if rigs == 1:
                print(f"{os.cpu_count()} CPUs shared by Kafka, Redis, the worker, the API and the "
                      f"producer; logs in {servers.run_dir}", flush=True)  # fmt: skip
            # Warm-up: the worker has joined its group and the first windows exist before measuring.
            measure_rate(rig, 100, 5, air, probes, min(catch_up_limit, max(left() - seconds, 10)))
        limit = max(10.0, min(catch_up_limit, left() - 5))
        result = measure_rate(rig, rate, seconds, air, probes, limit) | {"role": role}
        results.append(result)
        if not result["sustained"]:
            rig.stop()  # the next rate gets a fresh worker, without this one's backlog and state
            rig = None
        if on_result is not None:
            on_result(report())

    try:
        if target_rate:
            measure(target_rate, "target")
        for rate in sorted(rates):
            failed = [r["target_rate"] for r in results if not r["sustained"] and r["target_rate"] <= rate]
            if failed:
                reason = f"{min(failed):,.0f} events/s was not sustained"
                skipped.append({"target_rate": rate, "role": "listed", "reason": reason})
                print(f"  {rate:,.0f} events/s skipped: {reason}", flush=True)
                continue
            measure(rate, "listed")
        if find_max:
            for _ in range(2):
                low = max((r["target_rate"] for r in results if r["sustained"]), default=0)
                high = min((r["target_rate"] for r in results if not r["sustained"]), default=None)
                if high is None or high - low <= 250:
                    break
                measure(round((low + high) / 2 / 250) * 250, "search")
                if skipped and skipped[-1]["role"] == "search":
                    break
    finally:
        if rig is not None:
            rig.stop()
    return report()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kafka", help="existing bootstrap servers (default: start a local broker)")
    parser.add_argument("--redis", help="existing Redis URL (default: start a local one)")
    parser.add_argument("--rates", default="1000,5000", help="comma-separated events per second")
    parser.add_argument("--seconds", type=float, default=20, help="seconds of load per rate")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--find-max", action="store_true", help="bisect for the highest sustained rate")
    parser.add_argument("--catch-up-limit", type=float, default=CATCH_UP_LIMIT,
                        help="seconds the worker gets to catch up after a rate")  # fmt: skip
    parser.add_argument("--max-minutes", type=float, help="start no rate that cannot finish by then")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    rates = [float(rate) for rate in args.rates.split(",")]
    deadline = time.monotonic() + 60 * args.max_minutes if args.max_minutes else None
    with bench_servers(args.kafka, args.redis) as servers:
        result = run(servers, rates, args.seconds, args.partitions, args.find_max, deadline=deadline,
                     catch_up_limit=args.catch_up_limit)  # fmt: skip
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
