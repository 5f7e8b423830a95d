"""Kafka and Redis for a benchmark: the ones given on the command line, or local ones (``ioc infra``'s
Kafka from Maven Central's jars and Debian's Redis) started on free ports and stopped afterwards."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from ioc.infra import LocalKafka, LocalRedis
from ioc.settings import Settings
from tests.conftest import TEST_CARD_KEY, local_infra_settings


@dataclass(frozen=True)
class Servers:
    kafka: str  # bootstrap servers
    redis: str  # URL
    run_dir: Path  # logs of the local servers, and a place for the benchmark's own

    def fresh_namespace(self, partitions: int, **overrides: object) -> Settings:
        """Settings on these servers with topics, consumer group, tables and Redis keys of their own."""
        namespace = f"bench{uuid.uuid4().hex[:8]}"
        return Settings(
            kafka_bootstrap=self.kafka,
            redis_url=self.redis,
            topic_prefix=namespace,
            redis_prefix=namespace,
            worker_id=namespace,
            partitions=partitions,
            **({"card_hmac_key": TEST_CARD_KEY} | overrides),
        )


@contextmanager
def bench_servers(kafka: str | None, redis: str | None) -> Iterator[Servers]:
    run_dir = Path(tempfile.mkdtemp(prefix="ioc-bench-"))
    local = local_infra_settings(run_dir)
    with ExitStack() as stack:
        if not kafka:
            broker = LocalKafka(local)
            stack.callback(broker.stop)
            broker.start(timeout=180)
        if not redis:
            store = LocalRedis(local)
            stack.callback(store.stop)
            store.start(timeout=30)
        yield Servers(kafka or local.bootstrap_servers, redis or local.redis_address, run_dir)
