"""SSE delivery latency: how long an alert takes to reach every open ``GET /v1/stream``.

    python benchmarks/sse_latency.py                       # starts its own Kafka and Redis (ioc infra)
    python benchmarks/sse_latency.py --clients 200 --rate 20 --seconds 30
    python benchmarks/sse_latency.py --kafka 127.0.0.1:9092 --redis redis://127.0.0.1:6379/0 --json out.json

One ``ioc worker`` and one ``ioc api`` run as subprocesses. ``--clients`` SSE clients (aiohttp, spread
over ``--client-processes`` processes of their own) open ``GET /v1/stream`` and wait for their snapshot;
then this process produces alert events (``opened``, revision 1, a new alert id each) straight onto
``<prefix>.alerts`` at ``--rate`` a second for ``--seconds``. The worker's alerts-picture agent writes
each to Redis, which appends it to the stream every client's ``XREAD BLOCK`` waits on; the API sends it
as an SSE ``alert`` event. Each alert's id carries its send time (wall clock, just before the produce).

For every (client, alert) it records: end to end, receive − send; and the Redis-to-client part,
receive − the stream entry id's milliseconds (the ``XADD`` time, by Redis's clock: the same machine).
Prints p50/p90/p99/max of both and of the send-to-Redis part (produce, Kafka, the worker, the write:
entry id − send, once per alert), whether every client got every alert, and the CPU each process used
meanwhile: Kafka, Redis, the worker, the API and the clients all share this machine's cores. The entry
id has millisecond resolution: the two parts are ±1 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from aiokafka import AIOKafkaProducer  # noqa: E402

from benchmarks.servers import bench_servers  # noqa: E402
from benchmarks.worker_catch_up import cpu_seconds  # noqa: E402
from connectors.kafka import aiokafka_options, create_topics  # noqa: E402
from ioc.api.examples import EXAMPLES  # noqa: E402
from ioc.models.alert import Alert, AlertChange, AlertEvent  # noqa: E402
from ioc.settings import Settings  # noqa: E402
from tests.conftest import free_port, settings_env  # noqa: E402

KEY = "bench-operator-key"
PREFIX = "bench-"  # ids of the measured alerts: bench-<sequence>-<send time, ns>
BASE = Alert.model_validate(EXAMPLES["open_alert"])


def alert_event(ident: str) -> bytes:
    alert = BASE.model_copy(update={"id": ident})
    return AlertEvent(change=AlertChange.opened, revision=1, at=alert.last_seen, alert=alert).to_json()


# --- the clients (run as their own processes: python sse_latency.py --client-process ...) --------------


async def run_clients(url: str, count: int, drain: float, out: Path) -> None:
    """Open ``count`` streams; print ``ready`` once each has its snapshot; on ``done <n>`` from stdin, wait
    until each stream has ``n`` measured alerts (or ``drain`` seconds), then write what each received."""
    import aiohttp

    received: list[list[tuple[int, int, int]]] = [[] for _ in range(count)]  # (sequence, e2e µs, redis µs)
    ready = [asyncio.Event() for _ in range(count)]
    expected: int | None = None
    complete = asyncio.Event()

    async def listen(session: aiohttp.ClientSession, number: int) -> None:
        mine = received[number]
        async with session.get(url, headers={"X-API-Key": KEY}) as response:
            response.raise_for_status()
            ident = kind = None
            async for raw in response.content:
                now_ns = time.time_ns()
                line = raw.decode().rstrip("\n")
                if line.startswith("id: "):
                    ident = line[4:]
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    if kind == "snapshot":
                        ready[number].set()
                    elif kind == "alert":
                        alert_id = json.loads(line[6:])["alert"]["id"]
                        if alert_id.startswith(PREFIX):
                            _, sequence, sent_ns = alert_id.split("-")
                            stored_ms = int(ident.split("-")[0])
                            mine.append(
                                (
                                    int(sequence),
                                    (now_ns - int(sent_ns)) // 1000,
                                    now_ns // 1000 - stored_ms * 1000,
                                )
                            )
                            if expected is not None and all(len(r) >= expected for r in received):
                                complete.set()

    async def read_command() -> str:
        return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

    timeout = aiohttp.ClientTimeout(total=None, sock_read=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        tasks = [asyncio.create_task(listen(session, n)) for n in range(count)]
        waiting = asyncio.gather(*(event.wait() for event in ready))
        await asyncio.wait([waiting, *tasks], return_when=asyncio.FIRST_COMPLETED)
        if not waiting.done():  # a stream failed before its snapshot
            for task in tasks:
                if task.done():
                    task.result()
        print("ready", flush=True)
        cpu_at_ready = time.process_time()
        command = await read_command()
        expected = int(command.split()[1])
        if all(len(r) >= expected for r in received):
            complete.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(complete.wait(), drain)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        cpu = time.process_time() - cpu_at_ready
    out.write_text(json.dumps({"streams": received, "cpu": cpu}))


# --- the run --------------------------------------------------------------------------------------------


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of a sorted list."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def summary(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    return {f"p{q}": percentile(ordered, q) for q in (50, 90, 99)} | {
        "max": ordered[-1] if ordered else float("nan"),
        "n": len(ordered),
    }


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


class Process:
    def __init__(self, name: str, args: list[str], log: Path, **popen) -> None:
        self.name, self.log_path = name, log
        self._log = log.open("wb")
        self.popen = subprocess.Popen(args, stdout=popen.pop("stdout", self._log), stderr=self._log, **popen)

    def check(self) -> None:
        if self.popen.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise SystemExit(f"{self.name} exited {self.popen.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()


def wait_until(probe, timeout: float, what: str, processes: list[Process]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            process.check()
        try:
            if probe():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"gave up waiting for {what} after {timeout:.0f} s")


async def produce(settings: Settings, rate: float, seconds: float) -> int:
    """Alert events at a steady ``rate``; each id carries its send time. Returns how many were sent."""
    producer = AIOKafkaProducer(
        **aiokafka_options(settings), enable_idempotence=True, acks="all", linger_ms=0
    )
    await producer.start()
    try:
        total = round(rate * seconds)
        pending = []
        start = time.monotonic() + 0.1
        for sequence in range(total):
            delay = start + sequence / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            ident = f"{PREFIX}{sequence}-{time.time_ns()}"
            pending.append(await producer.send(settings.alerts_topic, alert_event(ident), key=ident.encode()))
        await asyncio.gather(*pending)
        return total
    finally:
        await producer.stop()


def run(args: argparse.Namespace) -> dict:
    with bench_servers(args.kafka, args.redis) as servers:
        settings = servers.fresh_namespace(args.partitions, api_keys=f"operator:{KEY}")
        create_topics(settings)
        env = settings_env(settings)
        port = free_port()
        logs = servers.run_dir
        print(
            f"{os.cpu_count()} CPUs shared by Kafka, Redis, the worker, the API and the clients; "
            f"logs in {logs}"
        )
        worker = Process("worker", [sys.executable, "-m", "ioc", "worker"], logs / "worker.log", env=env)
        api = Process(
            "api", [sys.executable, "-m", "ioc", "api", "--port", str(port)], logs / "api.log", env=env
        )
        processes = [worker, api]
        clients: list[Process] = []
        base = f"http://127.0.0.1:{port}"
        http = httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=10)
        try:
            wait_until(lambda: http.get("/healthz").status_code == 200, 60, "the API", processes)
            # Warm up: the worker has joined its group and stores alerts before any client connects.
            warmup = f"warmup-{uuid.uuid4().hex[:8]}"

            async def send_warmup() -> None:
                producer = AIOKafkaProducer(**aiokafka_options(settings), acks="all")
                await producer.start()
                try:
                    await producer.send_and_wait(
                        settings.alerts_topic, alert_event(warmup), key=warmup.encode()
                    )
                finally:
                    await producer.stop()

            asyncio.run(send_warmup())
            wait_until(
                lambda: http.get(f"/v1/alerts/{warmup}").status_code == 200, 180, "the worker", processes
            )

            shares = [args.clients // args.client_processes + (n < args.clients % args.client_processes)
                      for n in range(args.client_processes)]  # fmt: skip
            outputs = [
                Path(tempfile.mkstemp(prefix="sse-clients-", suffix=".json", dir=logs)[1]) for _ in shares
            ]
            connect_started = time.perf_counter()
            for n, (share, out) in enumerate(zip(shares, outputs, strict=True)):
                url = f"{base}/v1/stream"
                command = [sys.executable, __file__, "--client-process", url, str(share), str(out)]
                command += ["--drain", str(args.drain)]
                clients.append(Process(f"clients {n + 1}", command, logs / f"clients-{n + 1}.log",
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE))  # fmt: skip
            for client in clients:
                line = client.popen.stdout.readline()
                if line.strip() != b"ready":
                    client.check()
                    raise SystemExit(f"{client.name} said {line!r}")
            connected = time.perf_counter() - connect_started
            print(f"{args.clients} clients connected and got their snapshot in {connected:.1f} s", flush=True)

            everyone = _server_pids(servers.run_dir) + [(p.name, p.popen.pid) for p in [worker, api]]
            cpu_before = {f"{name} {pid}": cpu_seconds(pid) for name, pid in everyone}
            busy_before = machine_busy()
            started = time.perf_counter()
            sent = asyncio.run(produce(settings, args.rate, args.seconds))
            elapsed = time.perf_counter() - started
            for client in clients:
                client.popen.stdin.write(f"done {sent}\n".encode())
                client.popen.stdin.flush()
            for client in clients:
                client.popen.wait(args.drain + 60)
            measured = time.perf_counter() - started
            busy_after = machine_busy()
            cpu = {}
            for label, before in cpu_before.items():
                after = cpu_seconds(int(label.rsplit(" ", 1)[1]))
                if before is not None and after is not None:
                    cpu[label.rsplit(" ", 1)[0]] = cpu.get(label.rsplit(" ", 1)[0], 0) + after - before
            results = [json.loads(out.read_text()) for out in outputs]
            cpu["clients"] = sum(r["cpu"] for r in results)
            received = [stream for r in results for stream in r["streams"]]
        finally:
            http.close()
            for process in [*clients, api, worker]:
                process.stop()

    e2e = [e / 1000 for stream in received for _, e, _ in stream]
    redis_part = [r / 1000 for stream in received for _, _, r in stream]
    # Send → Redis (produce, Kafka, the worker, the write) once per alert: e2e − the Redis part.
    first = {}
    for stream in received:
        for sequence, e, r in stream:
            first.setdefault(sequence, (e - r) / 1000)
    counts = [len({s for s, _, _ in stream}) for stream in received]
    busy = (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1])
    return {
        "clients": args.clients,
        "client_processes": args.client_processes,
        "rate": args.rate,
        "seconds": args.seconds,
        "sent": sent,
        "produce_seconds": elapsed,
        "delivered": sum(counts),
        "expected": sent * args.clients,
        "short_clients": {n: sent - c for n, c in enumerate(counts) if c < sent},
        "duplicates": sum(len(stream) for stream in received) - sum(counts),
        "end_to_end_ms": summary(e2e),
        "redis_to_client_ms": summary(redis_part),
        "send_to_redis_ms": summary(list(first.values())),
        "connect_seconds": connected,
        "cpu_seconds": cpu,
        "measured_seconds": measured,
        "machine_busy": busy,
        "cpus": os.cpu_count(),
    }


def _server_pids(run_dir: Path) -> list[tuple[str, int]]:
    """(name, pid) of the local Kafka and Redis this run started (none when they were given)."""
    pids = []
    for pid_file in run_dir.rglob("*.pid"):
        with contextlib.suppress(OSError, ValueError):
            pids.append((pid_file.stem, int(pid_file.read_text().strip())))
    return pids


def report(result: dict) -> None:
    print(
        f"\n{result['sent']} alerts at {result['rate']:g}/s over {result['produce_seconds']:.1f} s to "
        f"{result['clients']} SSE clients ({result['client_processes']} processes)"
    )
    print(f"{'latency (ms)':<22}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}{'samples':>10}")
    for label, name in (
        ("end to end", "end_to_end_ms"),
        ("  send → Redis XADD", "send_to_redis_ms"),
        ("  Redis → client", "redis_to_client_ms"),
    ):
        s = result[name]
        print(f"{label:<22}{s['p50']:>8.1f}{s['p90']:>8.1f}{s['p99']:>8.1f}{s['max']:>8.1f}{s['n']:>10,}")
    print(f"delivered {result['delivered']:,} of {result['expected']:,}", end="")
    if result["short_clients"]:
        short = result["short_clients"]
        print(f"; {len(short)} clients short: {dict(list(short.items())[:10])}", end="")
    print(f"; {result['duplicates']} duplicates")
    seconds = result["measured_seconds"]
    shares = ", ".join(f"{name} {100 * used / seconds:.0f} %" for name, used in result["cpu_seconds"].items())
    print(f"CPU over the {seconds:.0f} s measured: machine {100 * result['machine_busy']:.0f} % busy "
          f"({result['cpus']} CPUs); by process (% of one CPU): {shares}")  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client-process":
        parser = argparse.ArgumentParser()
        parser.add_argument("--client-process", nargs=3, metavar=("URL", "COUNT", "OUT"))
        parser.add_argument("--drain", type=float, default=20)
        args = parser.parse_args()
        url, count, out = args.client_process
        asyncio.run(run_clients(url, int(count), args.drain, Path(out)))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kafka", help="existing bootstrap servers (default: start a local broker)")
    parser.add_argument("--redis", help="existing Redis URL (default: start a local one)")
    parser.add_argument("--clients", type=int, default=200, help="concurrent SSE clients")
    parser.add_argument(
        "--client-processes", type=int, default=2, help="processes the clients are spread over"
    )
    parser.add_argument("--rate", type=float, default=20, help="alerts per second")
    parser.add_argument("--seconds", type=float, default=30, help="how long alerts are produced")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of every topic")
    parser.add_argument("--drain", type=float, default=20, help="how long to wait for the last deliveries")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    result = run(args)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
