"""The local infrastructure manager against real processes: a KRaft broker, a redis-server, a mosquitto.

Each test uses its own run_dir and free ports, so it never touches a demo started on the defaults.
Jars come from the real cache dir (``settings.cache_dir``) so they are fetched at most once.
"""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from ioc import infra
from ioc.history.store import migrations
from ioc.infra import InfraError, ServiceStatus
from ioc.infra.mosquitto import new_client, parse_mqtt_url
from ioc.settings import Settings

pytestmark = pytest.mark.integration

TOPIC = "ioc.infra-test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_settings(run_dir: Path, **overrides: object) -> Settings:
    # Explicit None beats any IOC_KAFKA_BOOTSTRAP / IOC_REDIS_URL in the environment or .env.
    fields: dict[str, object] = {
        "run_dir": run_dir,
        "kafka_port": free_port(),
        "kafka_controller_port": free_port(),
        "redis_port": free_port(),
        "mqtt_port": free_port(),
        "postgres_port": free_port(),
        "alertmanager_port": free_port(),
        "kafka_bootstrap": None,
        "redis_url": None,
        "mqtt_url": None,
        "database_url": None,
        "alertmanager_urls": None,
    }
    return Settings(**(fields | overrides))


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return not Path(f"/proc/{pid}").exists()
    return False


def by_name(statuses: list[ServiceStatus]) -> dict[str, ServiceStatus]:
    return {s.name: s for s in statuses}


def roundtrip_kafka(bootstrap: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics({TOPIC: {"num_partitions": 2, "replication_factor": 1}}, wait_for_metadata=True)
        assert TOPIC in admin.list_topics()
    finally:
        admin.close()

    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(TOPIC, key=b"k", value=b"hello broker").get(timeout=30)
    producer.close()

    # A consumer group exercises __consumer_offsets, i.e. the single-replica internal topic settings.
    consumer = KafkaConsumer(
        TOPIC, bootstrap_servers=bootstrap, group_id="ioc-infra-test", auto_offset_reset="earliest"
    )
    try:
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        while not values and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                values += [r.value for r in records]
        assert values == [b"hello broker"]
        consumer.commit()
    finally:
        consumer.close()


def check_redis(url: str) -> None:
    client = redis.Redis.from_url(url, protocol=2)
    try:
        assert client.ping()
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
    finally:
        client.close()


def check_mqtt(url: str) -> None:
    """A QoS 1 message published by one client reaches another's subscription."""
    address = parse_mqtt_url(url)
    received: list[bytes] = []
    subscriber, publisher = new_client(address, "infra-sub"), new_client(address, "infra-pub")
    subscriber.on_message = lambda client, userdata, message: received.append(message.payload)
    for client in (subscriber, publisher):
        client.connect(address.host, address.port)
        client.loop_start()
    try:
        subscriber.subscribe("ioc-infra-test/#", qos=1)
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            publisher.publish("ioc-infra-test/hello", b"hello broker", qos=1).wait_for_publish(5)
            time.sleep(0.2)
        assert received and received[0] == b"hello broker"
    finally:
        for client in (subscriber, publisher):
            client.disconnect()
            client.loop_stop()


def test_up_status_down(tmp_path: Path) -> None:
    settings = local_settings(tmp_path / "run")
    pids: list[int] = []
    try:
        started = time.monotonic()
        up = by_name(infra.up(settings, timeout=120))
        print(f"up took {time.monotonic() - started:.1f} s")
        kafka, rds, mqtt, pg = up["kafka"], up["redis"], up["mosquitto"], up["postgres"]
        am = up["alertmanager"]
        pids = [s.pid for s in (kafka, rds, mqtt, pg, am) if s.pid]

        assert kafka.state == rds.state == mqtt.state == "running"
        assert kafka.address == f"127.0.0.1:{settings.kafka_port}"
        assert rds.address == f"redis://127.0.0.1:{settings.redis_port}/0"
        assert mqtt.address == f"mqtt://127.0.0.1:{settings.mqtt_port}"
        assert kafka.pid and rds.pid and mqtt.pid and len({kafka.pid, rds.pid, mqtt.pid}) == 3
        assert mqtt.version and re.fullmatch(r"\d+\.\d+\.\d+", mqtt.version)
        assert mqtt.log_file and mqtt.log_file.is_file() and mqtt.log_file.is_relative_to(tmp_path)
        assert kafka.version == settings.kafka_version
        assert rds.version and re.fullmatch(r"\d+\.\d+\.\d+", rds.version)
        assert kafka.log_file and kafka.log_file.is_file() and kafka.log_file.is_relative_to(tmp_path)
        assert rds.log_file and rds.log_file.is_file() and rds.log_file.is_relative_to(tmp_path)
        assert (settings.run_dir / "kafka" / "kafka.pid").read_text().strip() == str(kafka.pid)
        assert (settings.run_dir / "redis" / "redis.pid").read_text().strip() == str(rds.pid)
        assert (settings.run_dir / "mosquitto" / "mosquitto.pid").read_text().strip() == str(mqtt.pid)
        assert (
            pg.state == "running" and pg.address == f"postgresql://ioc@127.0.0.1:{settings.postgres_port}/ioc"
        )
        assert pg.version and re.fullmatch(r"\d+\.\d+", pg.version)
        assert (settings.run_dir / "postgres" / "postgres.pid").read_text().strip() == str(pg.pid)
        assert am.state == "running" and am.address == f"http://127.0.0.1:{settings.alertmanager_port}"
        assert am.version and re.fullmatch(r"\d+\.\d+\.\d+", am.version)
        assert (settings.run_dir / "alertmanager" / "alertmanager.pid").read_text().strip() == str(am.pid)
        # It routes with the shipped example and answers on the port it was given, not 9093 (Kafka's).
        config = httpx.get(f"{am.address}/api/v2/status", timeout=5).json()["config"]["original"]
        assert "truc-ban.{{ .GroupLabels.area }}" in config
        assert infra.status(settings) == [kafka, rds, mqtt, pg, am]
        with psycopg.connect(pg.address) as connection:  # up brought the history schema up to date
            newest = max(version for version, _, _ in migrations())
            assert connection.execute("SELECT max(version) FROM schema_migrations").fetchone() == (newest,)

        roundtrip_kafka(kafka.address)
        check_redis(rds.address)
        check_mqtt(mqtt.address)

        again = by_name(infra.up(settings, timeout=30))
        assert [again[s.name].pid for s in (kafka, rds, mqtt, pg, am)] == [
            kafka.pid,
            rds.pid,
            mqtt.pid,
            pg.pid,
            am.pid,
        ]
    finally:
        started = time.monotonic()
        down = by_name(infra.down(settings))
        print(f"down took {time.monotonic() - started:.1f} s")

    assert down["kafka"].state == down["redis"].state == down["mosquitto"].state == "stopped"
    assert down["kafka"].pid is None and down["redis"].pid is None and down["mosquitto"].pid is None
    assert down["postgres"].state == "stopped" and down["postgres"].pid is None
    assert down["alertmanager"].state == "stopped" and down["alertmanager"].pid is None
    assert len(pids) == 5 and all(gone(pid) for pid in pids), "a server outlived down()"
    assert not (settings.run_dir / "kafka" / "kafka.pid").exists()
    assert not (settings.run_dir / "redis" / "redis.pid").exists()
    assert not (settings.run_dir / "mosquitto" / "mosquitto.pid").exists()
    assert infra.down(settings) == infra.status(settings)  # down twice is harmless


def test_stale_pid_file_counts_as_stopped(tmp_path: Path) -> None:
    settings = local_settings(tmp_path / "run")
    # PID 1 exists but is not our broker or redis: PID reuse must not make it "running".
    for service in ("kafka", "redis", "mosquitto", "postgres", "alertmanager"):
        (settings.run_dir / service).mkdir(parents=True)
        (settings.run_dir / service / f"{service}.pid").write_text("1\n")
    assert [s.state for s in infra.status(settings)] == ["stopped"] * 5
    infra.down(settings)  # must not signal PID 1
    assert Path("/proc/1").exists()


def test_port_taken_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = local_settings(tmp_path / "run", kafka_port=port)
        with pytest.raises(InfraError, match=f"port {port} .*IOC_KAFKA_PORT"):
            infra.up(settings, timeout=30)
    # Ports are checked before anything starts: no Redis left behind by a failed up.
    assert [s.state for s in infra.status(settings)] == ["stopped"] * 5


def test_external_services_are_reported_not_managed(tmp_path: Path) -> None:
    settings = local_settings(
        tmp_path / "run",
        kafka_bootstrap="broker.example:9092",
        redis_url="redis://:s3cret@cache.example:6379/1",
        mqtt_url="mqtt://bridge:s3cret@mqtt.example:1883",
        database_url="postgresql://ioc:s3cret@db.example:5432/ioc",
        alertmanager_urls="http://am1.example:9093,https://ioc:s3cret@am2.example:9093",
    )
    expected = [
        ServiceStatus("kafka", "external", "broker.example:9092", None, None, None),
        ServiceStatus("redis", "external", "redis://:***@cache.example:6379/1", None, None, None),
        ServiceStatus("mosquitto", "external", "mqtt://bridge:***@mqtt.example:1883", None, None, None),
        ServiceStatus("postgres", "external", "postgresql://ioc:***@db.example:5432/ioc", None, None, None),
        ServiceStatus(
            "alertmanager",
            "external",
            "http://am1.example:9093,https://ioc:***@am2.example:9093",
            None,
            None,
            None,
        ),
    ]
    assert infra.status(settings) == expected
    assert infra.up(settings) == expected
    assert infra.down(settings) == expected
    assert not settings.run_dir.exists()


def test_broker_dying_during_startup_fails_fast_with_its_log(tmp_path: Path) -> None:
    # An impossible heap makes the JVM exit at once; up() must say so instead of waiting out the timeout.
    settings = local_settings(tmp_path / "run", kafka_heap="-Xms64m -Xmx16m")
    started = time.monotonic()
    try:
        with pytest.raises(InfraError, match="exited during startup") as failure:
            infra.up(settings, timeout=120)
    finally:
        infra.down(settings)
    assert time.monotonic() - started < 60
    assert "heap" in str(failure.value).lower()
    assert [s.state for s in infra.status(settings)] == ["stopped"] * 5
