"""Run ``ioc`` subcommands as real processes in tests, read Kafka topics back, empty a test's Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from kafka import KafkaConsumer, TopicPartition

from connectors.kafka import kafka_python_options
from connectors.redis_client import connect_sync
from ioc.settings import Settings
from tests.conftest import settings_env


class IocProcess:
    def __init__(self, args: list[str], settings: Settings, log_file: Path, **env: object) -> None:
        self.log_file = log_file
        self._log = log_file.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ioc", *args],
            env=settings_env(settings, **env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(
                f"process exited {self.process.returncode}:\n{self.log_file.read_text()[-3000:]}"
            )


def wait_for(probe: Callable[[], Any], *, timeout: float, every: float = 0.5, processes=()) -> Any:
    """Call ``probe`` until it returns something truthy; fail with the last result after ``timeout``."""
    deadline = time.monotonic() + timeout
    result = None
    while time.monotonic() < deadline:
        for process in processes:
            process.check_alive()
        try:
            result = probe()
        except (httpx.HTTPError, ValueError, KeyError) as error:
            result = error
        if result and not isinstance(result, Exception):
            return result
        time.sleep(every)
    raise AssertionError(f"gave up after {timeout} s; last result: {result!r}")


def read_topic(settings: Settings, topic: str, *, expect: int, timeout: float = 30) -> list[dict]:
    """Every record of ``topic`` as {key, value}, reading until ``expect`` arrived or the time is up."""
    consumer = KafkaConsumer(
        topic,
        **kafka_python_options(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=2000,
    )
    records: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expect and time.monotonic() < deadline:
            for message in consumer:
                records.append(
                    {"key": message.key.decode() if message.key else None, "value": json.loads(message.value)}
                )
    finally:
        consumer.close()
    return records


def topic_ends(settings: Settings, topics: list[str]) -> dict[str, int]:
    """Each partition's end offset, as ``topic:partition``."""
    consumer = KafkaConsumer(**kafka_python_options(settings))
    try:
        partitions = [
            TopicPartition(topic, p) for topic in topics for p in consumer.partitions_for_topic(topic) or ()
        ]
        return {f"{tp.topic}:{tp.partition}": end for tp, end in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def committed_offsets(
    settings: Settings, group: str, topics: Sequence[str]
) -> dict[str, tuple[int | None, int]]:
    """Per "topic[partition]": the consumer group's committed offset (None before any commit) and the end
    offset. A consumer with the group's id that never subscribes only reads them: it does not join."""
    consumer = KafkaConsumer(**kafka_python_options(settings), group_id=group, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        ends = consumer.end_offsets(partitions)
        return {f"{tp.topic}[{tp.partition}]": (consumer.committed(tp), end) for tp, end in ends.items()}
    finally:
        consumer.close()


def empty_redis(settings: Settings) -> None:
    """Delete every Redis key of the test's namespace, as a Redis restarted without persistence would."""
    store = connect_sync(settings, decode_responses=True)
    try:
        keys = list(store.scan_iter(match=f"{settings.redis_prefix}:*", count=1000))
        assert keys and store.delete(*keys) == len(keys)
    finally:
        store.close()


def sse_events(response: httpx.Response) -> Iterator[dict]:
    """The events of an SSE response as {id, event, data}; comments and ``retry:`` lines are skipped."""
    event: dict = {}
    for line in response.iter_lines():
        if not line:
            if "data" in event:
                event["data"] = json.loads(event["data"])
                yield event
            event = {}
        elif line.startswith(":") or line.startswith("retry:"):
            continue
        else:
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")
