"""Two workers started at the same moment on a namespace nobody used: the compose file's
``--scale worker=2`` on empty volumes. Each creates the tables' changelog topics while the other does."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from connectors.kafka import EventProducer, kafka_python_options
from ioc.feeds.air.model import AirQualityObserved
from streams.app import changelog_topics, create_app
from tests.processes import IocProcess, read_topic, wait_for

pytestmark = pytest.mark.e2e

T0 = datetime.fromisoformat("2026-01-15T08:00:00+07:00")
SENSORS = [
    "air-kim-lien",
    "air-hoan-kiem",
    "air-nguyen-van-cu",
    "air-my-dinh",
    "air-minh-khai",
    "air-hang-dau",
]


def test_two_workers_started_together_on_new_topics_both_run_and_share_the_work(settings, tmp_path):
    settings = settings.model_copy(update={"partitions": 8})
    # No topic exists yet: each worker creates the pipeline's topics and its tables' changelogs itself.
    workers = [IocProcess(["worker"], settings, tmp_path / f"worker-{n}.log") for n in range(2)]
    try:
        readings = [
            AirQualityObserved(sensor_id=sensor, date_observed=T0 + timedelta(seconds=s), pm25=20.0)
            for s in range(0, 180, 30)
            for sensor in SENSORS
        ]

        async def produce() -> None:
            async with EventProducer(settings) as producer:
                await producer.send_many(
                    (settings.raw_topic("air"), r.sensor_id, r.to_json()) for r in readings
                )

        wait_for(lambda: all((tmp_path / f"worker-{n}.log").stat().st_size for n in range(2)), timeout=60)
        asyncio.run(produce())
        # Every sensor's first minute closed (the stream's clock passed it) and came out as an aggregate;
        # neither worker stopped on the way (``processes``).
        closed = wait_for(
            lambda: (
                {r["key"] for r in read_topic(settings, settings.agg_topic("air"), expect=1, timeout=2)}
                >= set(SENSORS)
                or None
            ),
            timeout=120,
            processes=workers,
        )
        assert closed
        for worker in workers:
            worker.check_alive()
            assert "PartitionsMismatch" not in worker.log_file.read_text()
        # The tables' changelogs were made before Faust started, as Faust would: compacted, every partition.
        admin = KafkaAdminClient(**kafka_python_options(settings))
        try:
            changelogs = changelog_topics(create_app(settings))
            described = admin.describe_topics(changelogs)
            configs = admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, t) for t in changelogs]
            )
        finally:
            admin.close()
        assert {t["name"]: len(t["partitions"]) for t in described} == dict.fromkeys(changelogs, 8)
        policies = {name: config["cleanup.policy"]["value"] for name, config in configs["topic"].items()}
        assert policies == dict.fromkeys(changelogs, "compact")
    finally:
        for worker in workers:
            worker.stop()
