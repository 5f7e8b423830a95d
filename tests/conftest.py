"""Session-wide Kafka, Redis and MQTT broker for the tests, and an isolated namespace per test.

Where the servers come from, in order:
1. ``IOC_TEST_KAFKA`` / ``IOC_TEST_REDIS`` (bootstrap servers, Redis URL) when set;
2. testcontainers (Kafka in KRaft mode, Redis) when a Docker engine answers a ping;
3. the local infrastructure manager (``ioc infra``), on free ports and a run directory of its own,
   so a running ``ioc demo`` never interferes. With ``IOC_TEST_SECURE=1`` it is always this one, started
   as ``ioc infra up --secure`` does (Kafka SASL_SSL with SCRAM, Redis and Mosquitto over TLS with a
   user and password), and every test's settings carry the credentials.
The MQTT broker comes from ``IOC_TEST_MQTT`` when set, else it is a local Mosquitto, and PostgreSQL
from ``IOC_TEST_DATABASE`` (a URL of a role that may create databases) when set, else a local one
(``ioc infra``; no Docker needed). Every test then gets its own topic prefix, Redis prefix, consumer
group, MQTT topic root and MQTT client id; a test that uses the history store asks for ``database``, a
database of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from ioc import infra
from ioc.infra import secure
from ioc.settings import Settings

TEST_KEYS = {"operator": "op-test-key", "integrator": "int-test-key", "admin": "adm-test-key"}
# The card HMAC key has no default (the processes that see card ids refuse to start without one): the
# tests, the fault harness and the benchmarks use this one, a valid key of 32 bytes in hex. Settings built
# in-process (``Settings()`` in unit tests, benchmarks) read it from the environment; ``settings_env``
# hands the settings' own value to every child process.
# Chosen so the fixed test cards' hashes hold no run of 12+ digits: the DLQ redacts every 12–19-digit run
# of a rejected tap's payload, a cardIdHash included (a known defect, reported; test_dlq_tools shows it).
TEST_CARD_KEY = "7e57c0de" * 8
os.environ.setdefault("IOC_CARD_HMAC_KEY", TEST_CARD_KEY)


@dataclass(frozen=True)
class Servers:
    kafka: str
    redis: str
    origin: str
    mqtt: str
    database: str
    # Settings fields every test's settings get: the credentials and CA of secured servers.
    security: dict[str, str] = field(default_factory=dict)


# IOC_TEST_SECURE=1: the session's servers are secured (see the module's text).
SECURE = os.environ.get("IOC_TEST_SECURE", "") not in ("", "0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _docker_answers() -> bool:
    try:
        import docker

        return bool(docker.from_env(timeout=3).ping())
    except Exception:  # no engine, no socket, no permission: all mean "use something else"
        return False


def _mqtt(stack: ExitStack, run_dir: os.PathLike[str]) -> str:
    """``IOC_TEST_MQTT``, else a local Mosquitto on a free port."""
    if url := os.environ.get("IOC_TEST_MQTT"):
        return url
    settings = Settings(mqtt_url=None, run_dir=run_dir, mqtt_port=free_port())
    mosquitto = infra.LocalMosquitto(settings)
    stack.callback(mosquitto.stop)
    mosquitto.start()
    return settings.mqtt_address


def _postgres(stack: ExitStack, run_dir: os.PathLike[str]) -> str:
    """``IOC_TEST_DATABASE``, else a local PostgreSQL on a free port."""
    if url := os.environ.get("IOC_TEST_DATABASE"):
        return url
    settings = Settings(database_url=None, run_dir=run_dir, postgres_port=free_port())
    postgres = infra.LocalPostgres(settings)
    stack.callback(postgres.stop)
    postgres.start()
    return settings.database_address


def _from_containers(stack: ExitStack, run_dir: os.PathLike[str]) -> Servers:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.redis import RedisContainer

    kafka = stack.enter_context(KafkaContainer().with_kraft())
    redis = stack.enter_context(RedisContainer())
    redis_url = f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0"
    return Servers(
        kafka.get_bootstrap_server(),
        redis_url,
        "testcontainers",
        _mqtt(stack, run_dir),
        _postgres(stack, run_dir),
    )


def local_infra_settings(run_dir: os.PathLike[str], **overrides: object) -> Settings:
    """Settings for servers of one's own (``ioc infra``) on free ports, in their own run directory."""
    return Settings(
        kafka_bootstrap=None,
        redis_url=None,
        run_dir=run_dir,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        redis_port=free_port(),
        postgres_port=free_port(),
        alertmanager_port=free_port(),
        **({"card_hmac_key": TEST_CARD_KEY, "database_url": None, "alertmanager_urls": None} | overrides),
    )


def _from_local_infra(stack: ExitStack, run_dir: os.PathLike[str]) -> Servers:
    settings = local_infra_settings(
        run_dir,
        mqtt_url=os.environ.get("IOC_TEST_MQTT"),
        mqtt_port=free_port(),
        database_url=os.environ.get("IOC_TEST_DATABASE"),
    )
    security = secure.client_settings(settings) if SECURE else {}
    settings = settings.model_validate(settings.model_dump() | security)
    stack.callback(infra.down, settings)
    infra.up(settings)
    return Servers(
        settings.bootstrap_servers,
        settings.redis_address,
        "ioc infra --secure" if SECURE else "ioc infra",
        settings.mqtt_address,
        settings.database_address,
        security,
    )


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    kafka, redis = os.environ.get("IOC_TEST_KAFKA"), os.environ.get("IOC_TEST_REDIS")
    with ExitStack() as stack:
        # Not under pytest's base temporary directory: as root, PostgreSQL runs as the user postgres, who
        # must pass through the run directory's parents, and pytest makes its own private again (o-x)
        # whenever another session starts.
        run_dir = Path(tempfile.mkdtemp(prefix="ioc-test-infra-"))
        stack.callback(shutil.rmtree, run_dir, ignore_errors=True)
        if kafka and redis and not SECURE:
            yield Servers(
                kafka,
                redis,
                "IOC_TEST_KAFKA/IOC_TEST_REDIS",
                _mqtt(stack, run_dir),
                _postgres(stack, run_dir),
            )
        elif not SECURE and _docker_answers():
            yield _from_containers(stack, run_dir)
        else:
            yield _from_local_infra(stack, run_dir)


@pytest.fixture
def settings(servers: Servers) -> Settings:
    """Settings for one test: the shared servers, and names nobody else uses."""
    return isolated_settings(servers)


@pytest.fixture
def database(servers: Servers, settings: Settings) -> Iterator[Settings]:
    """``settings`` with a database of this test's own on the shared PostgreSQL, dropped after it."""
    name = settings.worker_id
    server = servers.database.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield settings.model_copy(update={"database_url": f"{server}/{name}"})
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# The settings that say how clients reach the servers (TLS, users, passwords, the CA).
TRANSPORT_FIELDS = (
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_username",
    "kafka_password",
    "kafka_ca_file",
    "redis_tls",
    "redis_username",
    "redis_password",
    "redis_ca_file",
    "mqtt_tls",
    "mqtt_username",
    "mqtt_password",
    "mqtt_ca_file",
    "tls_ca_file",
)


def transport_of(settings: Settings) -> dict[str, object]:
    """``settings``' transport security, for the settings of a server a test starts on its own: it is then
    secured like the shared ones (same CA and users) when they are."""
    return {name: getattr(settings, name) for name in TRANSPORT_FIELDS}


def isolated_settings(servers: Servers) -> Settings:
    """The shared servers, and names nobody else uses (for module-scoped fixtures too)."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    return Settings(
        kafka_bootstrap=servers.kafka,
        redis_url=servers.redis,
        mqtt_url=servers.mqtt,
        database_url=servers.database,
        mqtt_topic_root=namespace,
        mqtt_client_id=namespace,
        topic_prefix=namespace,
        redis_prefix=namespace,
        worker_id=namespace,
        partitions=2,
        api_keys=",".join(f"{role}:{key}" for role, key in TEST_KEYS.items()),
        card_hmac_key=TEST_CARD_KEY,
        **servers.security,
    )


def settings_env(settings: Settings, **overrides: object) -> dict[str, str]:
    """The environment that makes an ``ioc`` subprocess see these settings (an override of None leaves
    that variable out; secrets are passed as their value, not SecretStr's mask)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    values = settings.model_dump(exclude_none=True) | overrides
    env.update(
        {f"IOC_{name.upper()}": _env_value(value) for name, value in values.items() if value is not None}
    )
    return env


def _env_value(value: object) -> str:
    """As pydantic-settings reads it back: JSON for dicts and lists, the secret itself for a secret."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)
