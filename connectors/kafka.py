"""The one producer path into Kafka, topic creation, reading topics whole, and the one place Kafka
clients get their address, TLS and SASL from.

The producer is used by the simulator, replay and ingestion; ``read_to_end`` by ``ioc record`` and
``ioc picture rebuild``. Every Kafka client ioc makes takes its connection options from
``kafka_python_options`` (kafka-python), ``aiokafka_options`` (aiokafka) or ``faust_broker_options``
(Faust's app), all three read from the same settings (``kafka_security_protocol`` …)."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin import NewTopic as NewAdminTopic
from aiokafka.errors import KafkaConnectionError
from aiokafka.helpers import create_ssl_context
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import TopicAlreadyExistsError

from ioc.feeds import FEEDS, REGISTRY
from ioc.settings import Settings

log = logging.getLogger(__name__)

# A record to send with its Kafka headers: (topic, key, value, [(header name, header value), …]).
SendRecord = tuple[str, str, bytes, Sequence[tuple[str, bytes]]]
# The same with the record's Kafka timestamp in ms (None: the producer's clock, as usual).
TimedRecord = tuple[str, str, bytes, Sequence[tuple[str, bytes]], int | None]


def kafka_python_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments that connect a kafka-python client (KafkaConsumer, KafkaProducer,
    KafkaAdminClient) as the settings say: bootstrap servers, security protocol, SASL and the CA."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_tls:
        ca_file = settings.ca_file("kafka")
        options |= {"ssl_check_hostname": True, "ssl_cafile": str(ca_file) if ca_file else None}
    return options | _sasl(settings)


def aiokafka_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments that connect an aiokafka client (AIOKafkaProducer, AIOKafkaConsumer,
    AIOKafkaAdminClient, AIOKafkaClient) as the settings say; TLS through an ``ssl.SSLContext``, as
    aiokafka wants it."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_tls:
        options["ssl_context"] = kafka_ssl_context(settings)
    return options | _sasl(settings)


def faust_broker_options(settings: Settings) -> dict[str, Any]:
    """``broker`` and ``broker_credentials`` of a faust.App connecting as the settings say. Faust hands its
    credentials to aiokafka (``credentials_to_aiokafka_auth``): the same options as ``aiokafka_options``."""
    import faust  # here: the API and the tools need not load Faust
    from faust.types.auth import CredentialsT

    credentials: CredentialsT | None = None
    context = kafka_ssl_context(settings) if settings.kafka_tls else None
    if settings.kafka_security_protocol.startswith("SASL_"):
        assert settings.kafka_password is not None  # the settings refuse SASL without one
        credentials = faust.SASLCredentials(
            username=settings.kafka_username,
            password=settings.kafka_password.get_secret_value(),
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,  # with one: SASL_SSL
        )
    elif context is not None:
        credentials = faust.SSLCredentials(context)
    # Faust's URL scheme is its transport (aiokafka); the security protocol travels in the credentials.
    return {
        "broker": [f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(",")],
        "broker_credentials": credentials,
    }


def faust_app_kafka_auth(app: Any) -> dict[str, Any]:
    """The aiokafka security options of a faust.App's own clients (its ``broker_credentials``), for an
    aiokafka client made beside them (the gap filler's consumer)."""
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    return dict(credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context))


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext:
    """A TLS client context checking the broker's certificate and host name against the settings' CA."""
    ca_file = settings.ca_file("kafka")
    return create_ssl_context(cafile=str(ca_file) if ca_file else None)


def _sasl(settings: Settings) -> dict[str, Any]:
    if not settings.kafka_security_protocol.startswith("SASL_"):
        return {}
    assert settings.kafka_password is not None  # the settings refuse SASL without one
    return {
        "sasl_mechanism": settings.kafka_sasl_mechanism,
        "sasl_plain_username": settings.kafka_username,
        "sasl_plain_password": settings.kafka_password.get_secret_value(),
    }


def pipeline_topics(settings: Settings) -> list[str]:
    """Every topic the pipeline reads or writes (Faust creates its own changelog topics)."""
    per_feed = [
        topic
        for feed in FEEDS
        for topic in (
            settings.raw_topic(feed),
            *(settings.agg_topic(feed, spec.label) for spec in settings.windows_of(feed)),
        )
    ]
    neighbours = [settings.neighbours_topic(feed) for feed in FEEDS if REGISTRY[feed].neighbourhood]
    return [
        *per_feed,
        *neighbours,
        settings.dlq_topic,
        settings.anomalies_topic,
        settings.alerts_topic,
        settings.alert_commands_topic,
        settings.silences_topic,
        settings.alerts_by_district_topic,
        settings.incidents_topic,
    ]


def read_to_end(
    settings: Settings,
    topics: Iterable[str],
    client_id: str,
    on_read: Callable[[int, int], None] | None = None,
) -> Iterator[ConsumerRecord]:
    """Every record of ``topics`` from the beginning to each partition's end when the read started, in
    offset order per partition (no consumer group: nothing is committed). ``on_read(read, total)``
    reports progress after each fetch; a topic that does not exist has no records."""
    consumer = KafkaConsumer(
        **kafka_python_options(settings),
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
        client_id=client_id,
    )
    try:
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        begins = consumer.beginning_offsets(partitions)
        total = sum(ends[tp] - begins[tp] for tp in partitions)
        remaining = {tp for tp in partitions if ends[tp] > begins[tp]}
        consumer.seek_to_beginning(*partitions)
        read = 0
        while remaining:
            for tp, records in consumer.poll(timeout_ms=1000, max_records=10_000).items():
                for record in records:
                    if record.offset >= ends[tp]:
                        break
                    read += 1
                    yield record
                if consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
            if on_read:
                on_read(read, total)
    finally:
        consumer.close()


TOPICS_READY_SECONDS = 60.0  # for Kafka's metadata to show a leader for every partition of new topics


def create_topics(
    settings: Settings, topics: Iterable[str] | None = None, config: dict[str, str] | None = None
) -> list[str]:
    """Create the pipeline's topics (or ``topics``, with ``config``) with the configured partitions, and
    return once Kafka's metadata shows every one with a leader for each partition; existing ones are left
    alone. Waiting matters when several processes start together: a consumer that subscribes while another
    process is still creating a topic reads it as having no partitions."""
    wanted = list(topics or pipeline_topics(settings))
    admin = KafkaAdminClient(**kafka_python_options(settings), client_id="ioc-admin")
    try:
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        for topic in missing:
            new = NewTopic(
                topic, settings.partitions, settings.replication_factor, topic_configs=config or {}
            )
            # Another process may create it meanwhile; that is as good.
            with suppress(TopicAlreadyExistsError):
                admin.create_topics([new])
        if missing:
            log.info("created topics %s", ", ".join(missing))
        deadline = time.monotonic() + TOPICS_READY_SECONDS
        while unready := _unready(admin.describe_topics(wanted)):
            if time.monotonic() > deadline:
                unready_list = ", ".join(sorted(unready))
                raise RuntimeError(
                    f"after {TOPICS_READY_SECONDS:.0f} s, a partition has no leader: {unready_list}"
                )
            time.sleep(0.2)
        return missing
    finally:
        admin.close()


def _unready(described: list[dict]) -> set[str]:
    """The topics of a metadata answer that are unknown yet, or have a partition without a leader."""
    return {
        topic["name"]
        for topic in described
        if topic["error_code"]
        or not topic["partitions"]
        or any(p["leader_id"] < 0 for p in topic["partitions"])
    }


async def ensure_topics(settings: Settings, topics: Iterable[str]) -> list[str]:
    """``create_topics`` for asyncio callers (the API): the same topics, cancellable, no thread."""
    wanted = list(topics)
    admin = AIOKafkaAdminClient(**aiokafka_options(settings), client_id="ioc-admin")
    await admin.start()
    try:
        missing = [t for t in wanted if t not in set(await admin.list_topics())]
        if missing:
            response = await admin.create_topics(
                [NewAdminTopic(t, settings.partitions, settings.replication_factor) for t in missing]
            )
            for topic, code, *_ in response.topic_errors:
                # 36 = TOPIC_ALREADY_EXISTS: another process created it meanwhile; that is as good.
                if code not in (0, 36):
                    raise RuntimeError(f"cannot create topic {topic}: Kafka error code {code}")
            log.info("created topics %s", ", ".join(missing))
        return missing
    finally:
        await admin.close()


class EventProducer:
    """Idempotent, ``acks=all`` producer: ``send_many`` returns only once Kafka has every event."""

    def __init__(
        self,
        settings: Settings,
        *,
        linger_ms: int = 5,
        request_timeout_ms: int = 40_000,
        max_batch_size: int = 16_384,
        client_id: str = "ioc-producer",
    ) -> None:
        # request_timeout_ms also bounds how long a record waits for an unreachable broker before
        # its future fails (aiokafka expires batches after it).
        self._producer = AIOKafkaProducer(
            **aiokafka_options(settings),
            enable_idempotence=True,
            acks="all",
            linger_ms=linger_ms,
            request_timeout_ms=request_timeout_ms,
            max_batch_size=max_batch_size,
            compression_type=None,
            client_id=client_id,
        )

    async def __aenter__(self) -> EventProducer:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def abort(self) -> None:
        """Stop at once, failing every record Kafka has not acknowledged yet (``stop`` would wait for
        them, forever if the broker is gone): for a producer that lost its broker."""
        # aiokafka has no public abort: fail the pending batches, end the sender, then stop.
        accumulator = getattr(self._producer, "_message_accumulator", None)
        if accumulator is not None:
            accumulator.fail_all(KafkaConnectionError("the producer was aborted"))
        sender = getattr(self._producer, "_sender", None)
        task = getattr(sender, "sender_task", None)
        if task is not None and not task.done():
            task.cancel()
        await self._producer.stop()

    async def send_many(self, records: Iterable[tuple[str, str, bytes] | SendRecord | TimedRecord]) -> int:
        """Send a batch and wait until Kafka acknowledged every record of it.

        A record is ``(topic, key, value)``, or with a fourth item, its headers ``[(name, bytes), …]``,
        and a fifth, its Kafka timestamp in ms (None: now).
        """
        futures = [
            await self._producer.send(
                topic,
                value=value,
                key=key.encode(),
                headers=list(rest[0]) if rest and rest[0] else None,
                timestamp_ms=rest[1] if len(rest) > 1 else None,
            )
            for topic, key, value, *rest in records
        ]
        for future in futures:
            await future
        return len(futures)

    async def broadcast(self, topic: str, key: str, value: bytes) -> int:
        """Send one record to every partition of ``topic`` and wait for Kafka to acknowledge them all: for
        what every partition's agent must know (a silence applies to alerts of every partition)."""
        partitions = await self._producer.partitions_for(topic)
        futures = [
            await self._producer.send(topic, value=value, key=key.encode(), partition=partition)
            for partition in sorted(partitions)
        ]
        for future in futures:
            await future
        return len(futures)

    async def send_each(
        self, records: Iterable[tuple[str, str | None, bytes]], *, timeout: float | None = None
    ) -> list[BaseException | None]:
        """Send a batch and wait for every record's outcome: None when Kafka acknowledged it, else the error
        (``TimeoutError`` for one still unacknowledged after ``timeout`` seconds).

        Unlike ``send_many`` it does not stop at the first failure, so a caller knows exactly which
        records are in Kafka (the ingest API reports nothing as accepted that was not written).
        """
        outcomes: list[BaseException | None] = []
        futures: dict[asyncio.Future, int] = {}
        for index, (topic, key, value) in enumerate(records):
            try:
                future = await self._producer.send(topic, value=value, key=key.encode() if key else None)
            except Exception as error:  # metadata timeout, buffer full, producer closed …
                outcomes.append(error)
                continue
            outcomes.append(None)
            futures[future] = index
        if not futures:
            return outcomes
        _done, pending = await asyncio.wait(futures, timeout=timeout)
        for future, index in futures.items():
            if future in pending:
                outcomes[index] = TimeoutError(f"no acknowledgement within {timeout} s")
                future.add_done_callback(_retrieve)  # it may still fail later: nobody is waiting then
            elif future.cancelled():
                outcomes[index] = asyncio.CancelledError()
            elif future.exception() is not None:
                outcomes[index] = future.exception()
        return outcomes


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()
