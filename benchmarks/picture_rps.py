"""``GET /v1/picture`` throughput: requests per second one ``ioc api`` process serves.

    python benchmarks/picture_rps.py                        # starts its own Kafka and Redis (ioc infra)
    python benchmarks/picture_rps.py --connections 1 8 32 --seconds 10
    python benchmarks/picture_rps.py --kafka 127.0.0.1:9092 --redis redis://127.0.0.1:6379/0 --json out.json

The picture is filled the way production fills it: one simulated hour of all four feeds (the simulator,
seeded; a morning rush hour, so every transit station has taps) is produced to the raw topics and one
``ioc worker`` works through it, until every registry sensor (95 in Hanoi) shows in the picture; then
the worker is stopped, so it takes no CPU during the load. ``--alerts`` open alerts (50) are written
straight to Redis as the worker's alert sink writes them, spread over the feeds, districts and
severities.

Then one ``ioc api`` process (uvicorn, one worker, as ``ioc api`` runs it) is loaded with an operator's
key by ``--connections`` concurrent keep-alive connections (aiohttp, each sending its next request as
soon as the last answer is read) for ``--seconds`` per value, after a short warm-up. Prints requests/s,
latency p50/p99/max, failures, the response size, and the CPU the API and this load generator used: they
share this machine's cores (Kafka and Redis too, idle but for the Redis reads).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import datetime, timedelta
from itertools import cycle
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from benchmarks.servers import bench_servers  # noqa: E402
from benchmarks.sse_latency import Process, machine_busy, summary, wait_until  # noqa: E402
from benchmarks.worker_catch_up import cpu_seconds  # noqa: E402
from connectors.kafka import EventProducer, create_topics  # noqa: E402
from connectors.sinks.redis_picture import RedisPicture, connect  # noqa: E402
from connectors.sources.simulator import city_simulator  # noqa: E402
from ioc.api.examples import EXAMPLES  # noqa: E402
from ioc.city import load_city  # noqa: E402
from ioc.feeds import FEEDS  # noqa: E402
from ioc.models.alert import Alert, AlertChange, AlertEvent  # noqa: E402
from ioc.models.anomaly import Severity  # noqa: E402
from ioc.settings import Settings  # noqa: E402
from tests.conftest import free_port, settings_env  # noqa: E402

KEY = "bench-operator-key"


async def produce_hour(settings: Settings, start: datetime, seed: int) -> int:
    """One simulated hour of all feeds onto the raw topics; returns how many events."""
    city = load_city(settings.city)
    source = city_simulator(
        city,
        FEEDS,
        start=start,
        duration=timedelta(hours=1),
        seed=seed,
        card_key=settings.card_hmac_key.get_secret_value().encode(),
        card_key_id=settings.card_hmac_key_id,
    )
    events = list(source.events())
    async with EventProducer(settings, linger_ms=20, max_batch_size=262_144) as producer:
        await producer.send_many((settings.raw_topic(e.feed), e.sensor_id, e.to_json()) for e in events)
    return len(events)


async def write_alerts(settings: Settings, count: int) -> None:
    """``count`` open alerts, as the worker's alert sink stores them, over the feeds' sensors."""
    city = load_city(settings.city)
    base = Alert.model_validate(EXAMPLES["open_alert"])
    sensors = [(feed, sensor) for feed in FEEDS for sensor in city.sensors_of(feed)]
    severities = cycle([Severity.warning, Severity.critical, Severity.warning, Severity.info])
    client = connect(settings)
    try:
        store = RedisPicture(settings, client)
        for number in range(count):
            feed, sensor = sensors[(number * 7) % len(sensors)]  # a stride: every feed and district
            alert = base.model_copy(
                update={
                    "id": f"bench-{number:03d}",
                    "fingerprint": f"{feed}.bench|{sensor.id}",
                    "rule": f"{feed}.bench",
                    "feed": feed,
                    "entity": sensor.id,
                    "entity_name": sensor.name,
                    "district": sensor.district,
                    "district_name": city.district(sensor.district).name,
                    "severity": next(severities),
                    "episode_start": base.episode_start - timedelta(minutes=number),
                }
            )
            event = AlertEvent(change=AlertChange.opened, revision=1, at=alert.last_seen, alert=alert)
            assert await store.write_alert(event)
    finally:
        await client.aclose()


def fill(settings: Settings, logs: Path, start: datetime, seed: int, timeout: float) -> dict:
    """The picture after one simulated hour through a real worker: sensors reporting per feed."""
    events = asyncio.run(produce_hour(settings, start, seed))
    worker = Process(
        "worker", [sys.executable, "-m", "ioc", "worker"], logs / "worker.log", env=settings_env(settings)
    )
    city = load_city(settings.city)
    registered = {feed: len(city.sensors_of(feed)) for feed in FEEDS}

    async def reporting() -> dict[str, int]:
        client = connect(settings)
        try:
            store = RedisPicture(settings, client)
            return {
                feed: len(await store.latest_aggregates(feed, settings.windows_of(feed)[0].label))
                for feed in FEEDS
            }
        finally:
            await client.aclose()

    started = time.perf_counter()
    shown: dict[str, int] = {}
    try:
        while shown != registered:
            worker.check()
            if time.perf_counter() - started > timeout:
                raise SystemExit(
                    f"gave up filling the picture after {timeout:.0f} s: {shown} of {registered}"
                )
            time.sleep(0.5)
            shown = asyncio.run(reporting())
        time.sleep(3)  # the last aggregates of the backlog (later windows of sensors already shown)
    finally:
        worker.stop()
    print(
        f"picture filled by a worker from {events:,} simulated events in "
        f"{time.perf_counter() - started:.0f} s: "
        f"{sum(registered.values())} sensors ({', '.join(f'{f} {n}' for f, n in registered.items())})",
        flush=True,
    )
    return {"events": events, "sensors": registered}


async def load(url: str, connections: int, seconds: float) -> dict:
    """``connections`` loops of back-to-back requests for ``seconds``: latencies, failures, bytes."""
    import aiohttp

    latencies: list[float] = []
    failures: dict[str, int] = {}
    sizes: list[int] = []
    end = time.perf_counter() + seconds

    async def loop(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < end:
            began = time.perf_counter()
            try:
                async with session.get(url, headers={"X-API-Key": KEY}) as response:
                    body = await response.read()
                    if response.status != 200:
                        failures[str(response.status)] = failures.get(str(response.status), 0) + 1
                        continue
            except aiohttp.ClientError as error:
                failures[type(error).__name__] = failures.get(type(error).__name__, 0) + 1
                continue
            latencies.append((time.perf_counter() - began) * 1000)
            sizes.append(len(body))

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(loop(session) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return {
        "connections": connections,
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "latency_ms": summary(latencies),
        "failures": failures,
        "bytes": round(sum(sizes) / len(sizes)) if sizes else 0,
    }


def run(args: argparse.Namespace) -> dict:
    with bench_servers(args.kafka, args.redis) as servers:
        settings = servers.fresh_namespace(args.partitions, api_keys=f"operator:{KEY}")
        logs = servers.run_dir
        print(f"{os.cpu_count()} CPUs shared by Kafka, Redis, the API and the load generator; logs in {logs}")
        create_topics(settings)
        filled = fill(settings, logs, args.start, args.seed, args.fill_timeout)
        asyncio.run(write_alerts(settings, args.alerts))

        port = free_port()
        command = [sys.executable, "-m", "ioc", "api", "--port", str(port)]
        api = Process("api", command, logs / "api.log", env=settings_env(settings))
        url = f"http://127.0.0.1:{port}/v1/picture"
        try:
            wait_until(
                lambda: httpx.get(url, headers={"X-API-Key": KEY}).status_code == 200, 60, "the API", [api]
            )
            picture = httpx.get(url, headers={"X-API-Key": KEY}).json()
            shown = sum(len(feed["sensors"]) for feed in picture["feeds"].values())
            with_index = sum(1 for feed in picture["feeds"].values() for s in feed["sensors"] if s["indices"])
            print(
                f"the picture: {shown} sensors ({with_index} with an index), "
                f"{picture['openAlerts']['total']} open alerts, {len(picture['districts'])} districts",
                flush=True,
            )
            asyncio.run(load(url, args.connections[0], args.warmup))
            rounds = []
            print(HEADER)
            for connections in args.connections:
                api_before, busy_before = cpu_seconds(api.popen.pid), machine_busy()
                me_before = time.process_time()
                result = asyncio.run(load(url, connections, args.seconds))
                busy_after = machine_busy()
                result["api_cpu"] = (cpu_seconds(api.popen.pid) - api_before) / result["seconds"]
                result["load_generator_cpu"] = (time.process_time() - me_before) / result["seconds"]
                result["machine_busy"] = (busy_after[0] - busy_before[0]) / max(
                    1, busy_after[1] - busy_before[1]
                )
                rounds.append(result)
                report_round(result)
                api.check()
        finally:
            api.stop()
    return {
        "fill": filled,
        "sensors_shown": shown,
        "sensors_with_index": with_index,
        "open_alerts": picture["openAlerts"]["total"],
        "seconds": args.seconds,
        "rounds": rounds,
        "cpus": os.cpu_count(),
    }


HEADER = (
    f"{'connections':>11}{'requests':>10}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}"
    f"{'KB':>6}{'API CPU':>9}{'load CPU':>10}{'machine':>9}  failures"
)


def report_round(result: dict) -> None:
    latency = result["latency_ms"]
    print(
        f"{result['connections']:>11}{result['requests']:>10,}{result['rps']:>8.0f}{latency['p50']:>8.1f}"
        f"{latency['p99']:>8.1f}{latency['max']:>8.1f}{result['bytes'] / 1024:>6.0f}"
        f"{100 * result['api_cpu']:>8.0f}%{100 * result['load_generator_cpu']:>9.0f}%"
        f"{100 * result['machine_busy']:>8.0f}%  {result['failures'] or 'none'}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kafka", help="existing bootstrap servers (default: start a local broker)")
    parser.add_argument("--redis", help="existing Redis URL (default: start a local one)")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8, 32], help="concurrencies to run")
    parser.add_argument("--seconds", type=float, default=10, help="seconds of load per concurrency")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of load before the first")
    parser.add_argument("--alerts", type=int, default=50, help="open alerts in the picture")
    parser.add_argument("--seed", type=int, default=7, help="the simulator's seed")
    parser.add_argument(
        "--start",
        type=datetime.fromisoformat,
        default=datetime.fromisoformat("2026-07-06T07:00:00+07:00"),
        help="start of the simulated hour (default: a Monday's morning rush, when every station has taps)",
    )
    parser.add_argument("--partitions", type=int, default=4, help="partitions of every topic")
    parser.add_argument("--fill-timeout", type=float, default=300, help="give up filling after this long")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
