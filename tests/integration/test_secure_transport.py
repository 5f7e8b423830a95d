"""The pipeline against servers started by ``ioc infra up --secure``: Kafka over SASL_SSL with SCRAM-SHA-512,
Redis over TLS with an ACL user, Mosquitto over TLS with a password file; and each server refusing a client
without the credentials.

The servers are this module's own (free ports, a run directory of its own), so the rest of the suite keeps
its plain ones; ``IOC_TEST_SECURE=1`` runs the whole suite against secured servers (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from kafka import KafkaAdminClient
from kafka.errors import KafkaError
from pydantic import SecretStr

from connectors.kafka import create_topics, kafka_python_options
from connectors.redis_client import connect_sync
from ioc.infra import secure
from ioc.infra.mosquitto import MqttAddress, mqtt_address_of, mqtt_answers, new_client
from ioc.settings import Settings
from tests.conftest import TEST_CARD_KEY, TEST_KEYS, Servers, free_port, isolated_settings
from tests.processes import IocProcess, read_topic, wait_for

pytestmark = pytest.mark.integration

PASSWORDS = ("IOC_KAFKA_PASSWORD", "IOC_REDIS_PASSWORD", "IOC_MQTT_PASSWORD")


@dataclass(frozen=True)
class Secured:
    servers: Servers
    env: dict[str, str]  # what `ioc infra up --secure` was run with (its run dir and ports)
    output: str  # what it printed
    client_env: dict[str, str]  # <run dir>/secure/client.env
    run_dir: Path


def _ioc(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ioc", *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def secured() -> Iterator[Secured]:
    """Kafka, Redis, Mosquitto (and PostgreSQL, Alertmanager) from ``ioc infra up --secure`` as a process,
    on free ports; ``ioc infra down`` after the module."""
    run_dir = Path(tempfile.mkdtemp(prefix="ioc-test-secure-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    env |= {
        "IOC_RUN_DIR": str(run_dir),
        "IOC_CARD_HMAC_KEY": TEST_CARD_KEY,
        **{
            f"IOC_{name}_PORT": str(free_port())
            for name in ("KAFKA", "KAFKA_CONTROLLER", "REDIS", "MQTT", "POSTGRES", "ALERTMANAGER")
        },
    }
    try:
        up = _ioc(["infra", "up", "--secure"], env)
        assert up.returncode == 0, up.stdout + up.stderr
        client_env = secure.client_env(Settings(run_dir=run_dir))
        local = Settings(
            run_dir=run_dir,
            kafka_port=int(env["IOC_KAFKA_PORT"]),
            redis_port=int(env["IOC_REDIS_PORT"]),
            mqtt_port=int(env["IOC_MQTT_PORT"]),
            postgres_port=int(env["IOC_POSTGRES_PORT"]),
            **secure.client_settings(Settings(run_dir=run_dir)),
        )
        servers = Servers(
            local.bootstrap_servers,
            local.redis_address,
            "ioc infra up --secure",
            local.mqtt_address,
            local.database_address,
            secure.client_settings(local),
        )
        yield Secured(servers, env, up.stdout + up.stderr, client_env, run_dir)
    finally:
        down = _ioc(["infra", "down"], env)
        shutil.rmtree(run_dir, ignore_errors=True)
        assert down.returncode == 0, down.stdout + down.stderr


@pytest.fixture
def settings(secured: Secured) -> Settings:
    """This test's names on the secured servers, with their credentials."""
    return isolated_settings(secured.servers)


def test_infra_up_secure_prints_the_environment_with_passwords_masked(secured: Secured) -> None:
    env_file = secured.run_dir / "secure" / "client.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert secured.client_env["IOC_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert secured.client_env["IOC_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert secured.client_env["IOC_REDIS_TLS"] == secured.client_env["IOC_MQTT_TLS"] == "true"
    for name in PASSWORDS:
        password = secured.client_env[name]
        assert len(password) >= 32
        assert f"{name}=***" in secured.output
        assert password not in secured.output
    # Nothing the servers write down shows a password either.
    logs = [
        secured.run_dir / "kafka" / "logs" / "server.log",
        secured.run_dir / "redis" / "redis.log",
        secured.run_dir / "mosquitto" / "mosquitto.log",
    ]
    for log in logs:
        text = log.read_text()
        assert all(secured.client_env[name] not in text for name in PASSWORDS), log
    # The files that hold secrets are the owner's alone.
    for path in (
        secured.run_dir / "kafka" / "server.properties",
        secured.run_dir / "redis" / "redis-secure.conf",
        secured.run_dir / "mosquitto" / "passwd",
        secured.run_dir / "secure" / "server.key",
        secured.run_dir / "secure" / "ca.key",
    ):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # Mosquitto's password file holds a hash, not the password.
    assert (
        secured.client_env["IOC_MQTT_PASSWORD"] not in (secured.run_dir / "mosquitto" / "passwd").read_text()
    )


def test_a_reading_crosses_every_secured_server(settings: Settings, tmp_path: Path) -> None:
    """HTTP ingest → Kafka (SASL_SSL) → worker → Redis (TLS, ACL user) → the API; and MQTT (TLS, a
    password) → the bridge → Kafka → the same picture."""
    create_topics(settings)
    port = free_port()
    worker = IocProcess(["worker"], settings, tmp_path / "worker.log")
    api = IocProcess(["api", "--port", str(port)], settings, tmp_path / "api.log")
    bridge = IocProcess(["bridge", "mqtt", "--report-every", "1"], settings, tmp_path / "bridge.log")
    processes = [worker, api, bridge]
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 200, timeout=60, processes=processes
        )
        item = {"sensorId": "air-kim-lien", "dateObserved": "2026-01-15T08:00:10+07:00", "pm25": 21.0}
        response = httpx.post(
            f"{base}/v1/ingest/air", json=[item], headers={"X-API-Key": TEST_KEYS["integrator"]}, timeout=30
        )
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == 1

        wait_for(
            lambda: "subscribed to" in (tmp_path / "bridge.log").read_text(), timeout=60, processes=processes
        )
        address = mqtt_address_of(settings)
        assert address.tls and address.username and address.password
        publisher = new_client(address, f"pub-{uuid.uuid4().hex[:8]}")
        publisher.connect(address.host, address.port)
        publisher.loop_start()
        try:
            reading = {"sensorId": "air-hoan-kiem", "dateObserved": "2026-01-15T08:00:20+07:00", "pm25": 42.0}
            topic = f"{settings.mqtt_topic_root}/air/air-hoan-kiem"
            publisher.publish(topic, json.dumps(reading).encode(), qos=1).wait_for_publish(timeout=10)
        finally:
            publisher.disconnect()
            publisher.loop_stop()

        # Both in the raw topic, read back over SASL_SSL.
        raw = read_topic(settings, settings.raw_topic("air"), expect=2)
        assert sorted(r["key"] for r in raw) == ["air-hoan-kiem", "air-kim-lien"]

        def both_in_the_picture() -> dict | None:
            headers = {"X-API-Key": TEST_KEYS["operator"]}
            body = httpx.get(f"{base}/v1/picture", headers=headers, timeout=5).json()
            sensors = {s["sensorId"]: s for s in body["feeds"]["air"]["sensors"]}
            return sensors if {"air-kim-lien", "air-hoan-kiem"} <= set(sensors) else None

        sensors = wait_for(both_in_the_picture, timeout=120, processes=processes)
        assert sensors["air-kim-lien"]["values"]["pm25"]["mean"] == 21.0
        assert sensors["air-hoan-kiem"]["values"]["pm25"]["mean"] == 42.0
        # The worker wrote it there over TLS as the ACL user: the key is in Redis, read the same way.
        store = connect_sync(settings, decode_responses=True)
        try:
            assert store.acl_whoami() == settings.redis_username
            assert list(store.scan_iter(match=f"{settings.redis_prefix}:*", count=1000))
        finally:
            store.close()
    finally:
        for process in processes:
            process.stop()
    for name in PASSWORDS:  # no process logged a password
        password = settings.model_dump()[name.removeprefix("IOC_").lower()].get_secret_value()
        for log in ("worker.log", "api.log", "bridge.log"):
            assert password not in (tmp_path / log).read_text(), (name, log)


def test_kafka_refuses_plaintext_and_a_wrong_password(settings: Settings) -> None:
    good = KafkaAdminClient(**kafka_python_options(settings), client_id="ioc-test", request_timeout_ms=10_000)
    try:
        assert good.describe_cluster()["brokers"]  # the credentials work: the refusals below are theirs
    finally:
        good.close()
    plaintext = {"bootstrap_servers": settings.bootstrap_servers, "security_protocol": "PLAINTEXT"}
    wrong = settings.model_copy(update={"kafka_password": SecretStr("wrong")})
    tls_without_sasl = kafka_python_options(settings.model_copy(update={"kafka_security_protocol": "SSL"}))
    for options in (plaintext, kafka_python_options(wrong), tls_without_sasl):
        with pytest.raises(KafkaError):
            client = KafkaAdminClient(
                **options, client_id="ioc-test", request_timeout_ms=5000, bootstrap_timeout_ms=5000
            )
            try:
                client.describe_cluster()
            finally:
                client.close()


def test_redis_refuses_plaintext_the_default_user_and_a_wrong_password(settings: Settings) -> None:
    good = connect_sync(settings, socket_timeout=5)
    try:
        assert good.ping()
    finally:
        good.close()
    port = int(settings.redis_address.rsplit(":", 1)[1].split("/")[0])
    ca = str(settings.ca_file("redis"))
    attempts = {
        "plaintext": redis.Redis(port=port, socket_timeout=5),
        "TLS, the default user": redis.Redis(port=port, ssl=True, ssl_ca_certs=ca, socket_timeout=5),
        "TLS, a wrong password": redis.Redis(
            port=port, ssl=True, ssl_ca_certs=ca, username="ioc", password="wrong", socket_timeout=5
        ),
    }
    for what, client in attempts.items():
        try:
            client.ping()
        except (redis.ConnectionError, redis.ResponseError):  # AuthenticationError is a ConnectionError
            continue
        finally:
            client.close()
        pytest.fail(f"Redis answered a client with {what}")


def test_mosquitto_refuses_anonymous_plaintext_and_a_wrong_password(settings: Settings) -> None:
    address = mqtt_address_of(settings)
    assert mqtt_answers(address)  # the credentials work: the refusals below are theirs
    ca = str(settings.ca_file("mqtt"))
    for refused in (
        MqttAddress("127.0.0.1", address.port, tls=True, ca_file=ca),  # anonymous
        MqttAddress("127.0.0.1", address.port, True, address.username, "wrong", ca),
        MqttAddress("127.0.0.1", address.port, False, address.username, address.password),  # no TLS
    ):
        assert not mqtt_answers(refused), refused
