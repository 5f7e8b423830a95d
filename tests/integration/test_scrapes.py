"""``GET /metrics`` and ``GET /readyz`` stay cheap under repeated scrapes (issue 16): a real ``ioc api``
process, Kafka and Redis.

The API reaches Kafka and Redis through TCP forwarders of this test's own, which count the connections
made through them: Redis' every connection, and Kafka's bootstrap connections (a Kafka client connects to
the bootstrap address once, then to the brokers the metadata names), so one per Kafka client created.
After a warm-up, a hundred scrapes and probes with the caches off open no connection at all: the clients
are reused. With the caches on, repeated scrapes get one computed answer.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from connectors.kafka import create_topics
from tests.integration.test_api_hardening import api_process
from tests.processes import wait_for

pytestmark = pytest.mark.integration


class CountingForwarder:
    """Forwards every connection made to ``port`` on 127.0.0.1 to ``target``, counting them."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                self.connections += 1
            upstream = socket.create_connection(self.target)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    def count(self) -> int:
        with self._lock:
            return self.connections

    def close(self) -> None:
        self.listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


def up(text: str) -> tuple[float, float]:
    """``ioc_scrape_kafka_up`` and ``ioc_scrape_redis_up`` of a scrape."""
    samples = {
        s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels
    }
    return samples["ioc_scrape_kafka_up"], samples["ioc_scrape_redis_up"]


def through(url: str, port: int) -> str:
    """``url`` with its host and port replaced by 127.0.0.1:``port`` (credentials and path kept)."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def forwarded(settings):
    """The API's way to Kafka and Redis, through counting forwarders."""
    create_topics(settings)
    kafka_host, _, kafka_port = settings.bootstrap_servers.split(",")[0].rpartition(":")
    redis = urlsplit(settings.redis_address)
    kafka_forwarder = CountingForwarder((kafka_host, int(kafka_port)))
    redis_forwarder = CountingForwarder((redis.hostname, redis.port or 6379))
    env = {
        "kafka_bootstrap": f"127.0.0.1:{kafka_forwarder.port}",
        "redis_url": through(settings.redis_address, redis_forwarder.port),
    }
    yield kafka_forwarder, redis_forwarder, env
    kafka_forwarder.close()
    redis_forwarder.close()


def test_repeated_scrapes_and_probes_open_no_new_connection(settings, tmp_path, forwarded):
    kafka, redis, env = forwarded
    api, port = api_process(settings, tmp_path, metrics_max_age_seconds=0, readyz_max_age_seconds=0, **env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:

            def scrape_and_probe() -> None:
                assert up(http.get("/metrics").text) == (1, 1)
                ready = http.get("/readyz")
                assert ready.status_code == 200 and ready.json()["checks"] == {"redis": "ok", "kafka": "ok"}

            # The first scrapes make the clients (and may find a new group's coordinator not ready yet).
            wait_for(lambda: up(http.get("/metrics").text) == (1, 1), timeout=60, processes=[api])
            scrape_and_probe()
            before = kafka.count(), redis.count()
            assert before[0] >= 1 and before[1] >= 1  # the API's connections do go through the forwarders
            for _ in range(50):
                scrape_and_probe()
            assert (kafka.count(), redis.count()) == before, (
                f"new connections: {before} → {kafka.count(), redis.count()}"
            )
    finally:
        assert api.stop() in (0, -15)


def test_scrapes_within_the_cache_age_get_one_computed_answer(settings, tmp_path, forwarded):
    _, _, env = forwarded
    api, port = api_process(
        settings, tmp_path, metrics_max_age_seconds=600, readyz_max_age_seconds=600, **env
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            # The first scrape that read Kafka is the one cached (a failed one would be, for 600 s, too).
            wait_for(lambda: up(http.get("/metrics").text) == (1, 1), timeout=60, processes=[api])
            scrapes = [http.get("/metrics").text for _ in range(20)]
            probes = [http.get("/readyz").json() for _ in range(20)]
        # Every scrape carries the one computation's own duration: the same answer, read once.
        assert len(set(scrapes)) == 1 and up(scrapes[0]) == (1, 1)
        assert probes == [{"status": "ok", "checks": {"redis": "ok", "kafka": "ok"}}] * 20
    finally:
        assert api.stop() in (0, -15)
