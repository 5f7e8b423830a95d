"""HTTP ingest throughput: accepted events per second for one ``ioc api`` process (uvicorn, 1 worker).

    python benchmarks/ingest_http.py                      # starts its own Kafka and Redis (ioc infra)
    python benchmarks/ingest_http.py --kafka 127.0.0.1:9092 --redis redis://127.0.0.1:6379/0

Batches of ``--batch`` valid air readings (distinct sensor + time, so no duplicates) are prepared before
the clock starts, then ``--connections`` clients post them back to back for ``--seconds``. Every
accepted event was acknowledged by Kafka (idempotent producer, acks=all) before its response. Prints
events/s, batches/s and the latency of a batch (p50, p95, max). Run it on an otherwise idle machine:
the client shares the CPU with the API, the broker and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.servers import Servers, bench_servers  # noqa: E402
from ioc.city import load_city  # noqa: E402
from tests.conftest import TEST_CARD_KEY, free_port  # noqa: E402

KEY = "bench-integrator-key"


class Batches:
    """Distinct batches, made on demand with plain string formatting (cheap next to the server's work)."""

    def __init__(self, size: int, *, compress: bool) -> None:
        self.sensors = [s.id for s in load_city("hanoi").sensors_of("air")]
        self.size, self.compress, self.made = size, compress, 0
        self.start = datetime.fromisoformat("2026-01-15T00:00:00+07:00")

    def __iter__(self) -> Batches:
        return self

    def __next__(self) -> bytes:
        b, self.made = self.made, self.made + 1
        items = ",".join(
            f'{{"sensorId":"{self.sensors[i % len(self.sensors)]}",'
            f'"dateObserved":"{(self.start + timedelta(seconds=b * self.size + i)).isoformat()}",'
            f'"pm25":{20 + i % 50}.5,"pm10":{40 + i % 70}.0,"no2":30.5,"temperature":24.5,'
            f'"relativeHumidity":71.0}}'
            for i in range(self.size)
        )
        body = f"[{items}]".encode()
        return gzip.compress(body, 5) if self.compress else body


async def run(url: str, bodies: Batches, connections: int, seconds: float, compress: bool) -> dict:
    headers = {"X-API-Key": KEY, "Content-Type": "application/json"}
    if compress:
        headers["Content-Encoding"] = "gzip"
    latencies: list[float] = []
    accepted = 0
    failures: dict[int, int] = {}
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal accepted
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            while time.perf_counter() < deadline:
                body = next(bodies)
                started = time.perf_counter()
                response = await http.post("/v1/ingest/air", content=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                if response.status_code == 200:
                    accepted += response.json()["accepted"]
                else:
                    failures[response.status_code] = failures.get(response.status_code, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "elapsed": elapsed,
        "accepted": accepted,
        "batches": len(latencies),
        "failures": failures,
        "p50": statistics.median(latencies),
        "p95": latencies[int(0.95 * (len(latencies) - 1))],
        "max": latencies[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kafka", help="existing bootstrap servers (default: start a local broker)")
    parser.add_argument("--redis", help="existing Redis URL (default: start a local one)")
    parser.add_argument("--batch", type=int, default=1000, help="items per request")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4], help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=20, help="duration of each run")
    parser.add_argument("--gzip", action="store_true", help="gzip the bodies")
    args = parser.parse_args()

    with bench_servers(args.kafka, args.redis) as servers:
        measure(args, servers)


def measure(args: argparse.Namespace, servers: Servers) -> None:
    run_dir = servers.run_dir
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")} | {
        "IOC_KAFKA_BOOTSTRAP": servers.kafka,
        "IOC_REDIS_URL": servers.redis,
        "IOC_TOPIC_PREFIX": namespace,
        "IOC_REDIS_PREFIX": namespace,
        "IOC_API_KEYS": f"integrator:{KEY}",
        "IOC_CARD_HMAC_KEY": TEST_CARD_KEY,
        "IOC_INGEST_RATE_PER_KEY": "1e9",
        "IOC_INGEST_MAX_ITEMS": str(max(args.batch, 5000)),
    }
    log = (run_dir / "api.log").open("wb")
    api = subprocess.Popen(
        [sys.executable, "-m", "ioc", "api", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        # Warm-up: topics, the producer, the Redis scripts.
        bodies = Batches(args.batch, compress=args.gzip)
        asyncio.run(run(url, bodies, 1, 3, args.gzip))
        print(
            f"one ioc api process (uvicorn, 1 worker), {args.batch}-item batches of air readings, "
            f"{'gzip' if args.gzip else 'plain JSON'}, {os.cpu_count()} CPUs shared with Kafka and Redis"
        )
        for connections in args.connections:
            result = asyncio.run(run(url, bodies, connections, args.seconds, args.gzip))
            rate = result["accepted"] / result["elapsed"]
            print(
                f"  {connections} connection(s): {rate:,.0f} events/s accepted "
                f"({result['batches'] / result['elapsed']:.1f} batches/s), batch latency "
                f"p50 {result['p50'] * 1000:.0f} ms, p95 {result['p95'] * 1000:.0f} ms, "
                f"max {result['max'] * 1000:.0f} ms; failures {result['failures'] or 'none'}"
            )
    finally:
        api.terminate()
        api.wait(30)
        log.close()


if __name__ == "__main__":
    main()
