"""The broker dies under load: the API answers 503 with Retry-After, and whatever it acknowledged is in Kafka.

A broker of its own (``ioc infra``'s LocalKafka on free ports), so no other test loses its broker; the
shared Redis. The API is a real ``ioc api`` process; a client thread keeps pushing batches while the
broker is killed (SIGKILL, not a clean stop), then the broker is started again on the same data.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from ioc.infra import LocalKafka
from ioc.settings import Settings
from tests.conftest import TEST_KEYS, free_port, transport_of
from tests.integration.test_ingest import INTEGRATOR, count
from tests.processes import IocProcess, read_topic, wait_for

pytestmark = pytest.mark.integration

BATCH = 50


def readings(batch: int) -> list[dict]:
    return [
        {
            "sensorId": "air-kim-lien",
            "eventId": f"b{batch}-{i}",
            "dateObserved": f"2026-01-15T{8 + batch // 60 % 12:02d}:{batch % 60:02d}:{i:02d}+07:00",
            "pm25": 40.0 + i,
        }
        for i in range(BATCH)
    ]


class Pusher(threading.Thread):
    """Pushes batches until stopped; remembers what the API acknowledged and every status it got."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.acknowledged: set[str] = set()
        self.statuses: list[int] = []
        self.unavailable: list[httpx.Response] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        batch = 0
        with httpx.Client(timeout=60) as client:
            while not self.stopping.is_set():
                items = readings(batch)
                response = client.post(f"{self.url}/v1/ingest/air", json=items, headers=INTEGRATOR)
                self.statuses.append(response.status_code)
                if response.status_code == 200:
                    result = response.json()
                    assert result["accepted"] + result["duplicates"] == BATCH, result
                    self.acknowledged.update(item["eventId"] for item in items)
                elif response.status_code == 503:
                    self.unavailable.append(response)
                    time.sleep(0.2)
                batch += 1


def test_broker_killed_mid_run(settings: Settings, tmp_path: Path) -> None:
    broker = LocalKafka(
        Settings(
            kafka_bootstrap=None,
            run_dir=tmp_path / "run",
            kafka_port=free_port(),
            kafka_controller_port=free_port(),
            partitions=2,
            **transport_of(settings),  # secured like the shared servers (IOC_TEST_SECURE=1)
        )
    )
    broker.start(timeout=180)
    own = settings.model_copy(update={"kafka_bootstrap": broker.address, "ingest_kafka_timeout_seconds": 3})
    port = free_port()
    api = IocProcess(["api", "--port", str(port)], own, tmp_path / "api.log")
    url = f"http://127.0.0.1:{port}"
    pusher = Pusher(url)
    try:
        wait_for(lambda: httpx.get(f"{url}/healthz").status_code == 200, timeout=60, processes=[api])
        pusher.start()
        wait_for(lambda: len(pusher.acknowledged) >= 10 * BATCH, timeout=60, processes=[api])

        pid = broker.pid()
        assert pid
        os.kill(pid, signal.SIGKILL)  # mid-run: the pusher is sending while the broker dies
        wait_for(lambda: len(pusher.unavailable) >= 3, timeout=60, processes=[api])
        pusher.stopping.set()
        pusher.join(60)
        acknowledged = set(pusher.acknowledged)

        for response in pusher.unavailable:
            assert response.status_code == 503
            assert int(response.headers["Retry-After"]) >= 1
            assert "nothing of this request was accepted" in response.json()["detail"]
        assert 200 in pusher.statuses and pusher.statuses[-1] == 503

        # The broker comes back on the same data: every acknowledged item is there.
        broker.start(timeout=180)
        records = read_topic(own, own.raw_topic("air"), expect=len(acknowledged), timeout=90)
        written = {r["value"]["eventId"] for r in records}
        assert acknowledged <= written, f"{len(acknowledged - written)} acknowledged items are not in Kafka"

        # And the API recovers by itself: the first 503'd batch, sent again, is accepted (or duplicate).
        retry = readings(pusher.statuses.index(503))

        def accepted_again() -> bool:
            response = httpx.post(f"{url}/v1/ingest/air", json=retry, headers=INTEGRATOR, timeout=30)
            return (
                response.status_code == 200
                and response.json()["accepted"] + response.json()["duplicates"] == BATCH
            )

        wait_for(accepted_again, timeout=90, every=2, processes=[api])
        assert count(own, own.raw_topic("air")) >= len(acknowledged) + 1
    finally:
        pusher.stopping.set()
        api.stop()
        broker.stop()
    log = (tmp_path / "api.log").read_text()
    assert TEST_KEYS["integrator"] not in log
    assert "Kafka" in log  # the outage is in the log, by what failed, not by payload
