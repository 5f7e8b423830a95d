"""The local infrastructure manager: a single-node Kafka, a Redis, a Mosquitto, a PostgreSQL and a
Prometheus Alertmanager for development and tests.

Everything (data, logs, PID files) lives under ``settings.run_dir``, jars under ``settings.cache_dir``;
two different run_dirs (with different ports) are fully independent. A service whose address is set
(``IOC_KAFKA_BOOTSTRAP`` / ``IOC_REDIS_URL`` / ``IOC_MQTT_URL`` / ``IOC_DATABASE_URL`` /
``IOC_ALERTMANAGER_URLS``) is "external":
reported, never started or stopped. ``up`` also brings the local history store's schema up to date.
Progress is reported on the ``ioc.infra`` logger.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from ioc.history.store import upgrade
from ioc.infra.alertmanager import LocalAlertmanager
from ioc.infra.kafka import LocalKafka, wait_for_kafka
from ioc.infra.mosquitto import LocalMosquitto, wait_for_mqtt
from ioc.infra.postgres import LocalPostgres, wait_for_postgres
from ioc.infra.process import InfraError, LocalService, ServiceStatus
from ioc.infra.redis import LocalRedis, wait_for_redis
from ioc.settings import Settings

__all__ = [
    "InfraError",
    "LocalAlertmanager",
    "LocalKafka",
    "LocalMosquitto",
    "LocalPostgres",
    "LocalRedis",
    "ServiceStatus",
    "down",
    "fetch",
    "status",
    "up",
    "wait_for_kafka",
    "wait_for_mqtt",
    "wait_for_postgres",
    "wait_for_redis",
]


def up(settings: Settings, timeout: float = 180) -> list[ServiceStatus]:
    """Start whatever is neither running nor external; already running services are left alone."""
    kafka, redis, mosquitto = LocalKafka(settings), LocalRedis(settings), LocalMosquitto(settings)
    postgres, alertmanager = LocalPostgres(settings), LocalAlertmanager(settings)
    # Check every port before starting anything, so a conflict does not leave half a setup running.
    for service in (kafka, redis, mosquitto, postgres, alertmanager):
        service.check_ports()
    # Redis, Mosquitto and PostgreSQL first: a few seconds at most; Kafka takes the rest of the budget.
    redis_status = redis.start(timeout=min(timeout, 30))
    mosquitto_status = mosquitto.start(timeout=min(timeout, 30))
    postgres_status = postgres.start(timeout=min(timeout, 60))
    alertmanager_status = alertmanager.start(timeout=min(timeout, 30))
    try:
        if not postgres.external:  # an external database is the operator's: `ioc db upgrade`, `ioc history`
            upgrade(settings.database_address)
    except psycopg.Error as error:
        raise InfraError(f"the history store's schema could not be brought up to date: {error}") from None
    kafka_status = kafka.start(timeout=timeout)
    return [kafka_status, redis_status, mosquitto_status, postgres_status, alertmanager_status]


def down(
    settings: Settings, only: Iterable[str] = ("kafka", "redis", "mosquitto", "postgres", "alertmanager")
) -> list[ServiceStatus]:
    """Stop the services this run_dir's PID files name; external services are never touched."""
    services = _services(settings)
    for service in services:
        if service.name in only:
            service.stop()
    return [service.status() for service in services]


def fetch(settings: Settings) -> list[ServiceStatus]:
    """Get what ``up`` needs without starting anything: Kafka's jars, and Redis and Mosquitto when missing."""
    LocalKafka(settings).ensure_jars()
    if not settings.redis_url:
        LocalRedis(settings).ensure_installed()
    if not settings.mqtt_url:
        LocalMosquitto(settings).ensure_installed()
    if not settings.database_url:
        LocalPostgres(settings).ensure_installed()
    if not settings.alertmanager_urls:
        LocalAlertmanager(settings).ensure_installed()
    return status(settings)


def status(settings: Settings) -> list[ServiceStatus]:
    return [service.status() for service in _services(settings)]


def _services(settings: Settings) -> list[LocalService]:
    return [
        LocalKafka(settings),
        LocalRedis(settings),
        LocalMosquitto(settings),
        LocalPostgres(settings),
        LocalAlertmanager(settings),
    ]
