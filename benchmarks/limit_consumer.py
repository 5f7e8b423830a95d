"""The limit in ``benchmarks/bench.py``: the least a Python consumer of the raw topic can do per event.

    python benchmarks/limit_consumer.py --broker 127.0.0.1:9092 --topic ioc.air.raw --group limit

One aiokafka consumer in a consumer group, from the earliest offset: ``getmany``, ``json.loads`` of every
value, a count, and a commit of the positions every ``--commit-interval`` seconds, so that the benchmark
measures it as it measures the others, by the group's committed offsets. It runs until terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time

from aiokafka import AIOKafkaConsumer


async def consume(broker: str, topic: str, group: str, commit_interval: float) -> int:
    """Count the topic's records until SIGTERM or SIGINT; returns the count."""
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,  # committed on our own clock, below
    )
    await consumer.start()
    count, pending, last_commit, ready = 0, False, time.monotonic(), False
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=10_000)
            for records in batches.values():
                for record in records:
                    json.loads(record.value)
                count += len(records)
            pending = pending or bool(batches)
            if not ready and consumer.assignment():
                print("Ready: partitions assigned", flush=True)  # the benchmark's start-up marker
                ready = True
            if pending and time.monotonic() - last_commit >= commit_interval:
                await consumer.commit()
                pending, last_commit = False, time.monotonic()
    finally:
        await consumer.stop()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--broker", required=True, help="bootstrap servers")
    parser.add_argument("--topic", required=True, help="the topic to consume")
    parser.add_argument("--group", required=True, help="consumer group (fresh: reads from the start)")
    parser.add_argument("--commit-interval", type=float, default=1.0, help="seconds between commits")
    args = parser.parse_args()
    count = asyncio.run(consume(args.broker, args.topic, args.group, args.commit_interval))
    print(f"{count:,} records", flush=True)


if __name__ == "__main__":
    main()
