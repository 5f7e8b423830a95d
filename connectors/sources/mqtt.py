"""The MQTT bridge: ``<root>/<feed>/<sensor id>`` on an MQTT broker into ``<prefix>.<feed>.raw``.

Each MQTT message is one JSON item, or a JSON array of items, of the topic's feed. Every item goes
through the ingest edge (``ioc.ingest.edge.prepare``: pseudonymise card ids, stamp the ingest time,
validate, bound the event time to the receiving clock), exactly as an HTTP batch does; the item's
``sensorId`` must also be the topic's sensor. Accepted items go to the raw topic, everything else to
``<prefix>.dlq`` with a reason: items that fail validation or are dated too far ahead, payloads that
are not JSON, topics that name no feed. Nothing is dropped.

Delivery: the bridge subscribes with QoS 1 under a persistent session (a fixed client id, clean start
off, a session expiry), and acknowledges a message (PUBACK) only once Kafka has acknowledged every
record made from it (idempotent producer, ``acks=all``). A message the bridge received but had not
acknowledged when it stopped or crashed is delivered again by the broker when the bridge reconnects, so
a message is never lost between the broker and Kafka. Duplicates are filtered as the HTTP API filters
them (``ioc.ingest.dedup``, the same Redis marks): an event whose ``dedup_key`` (``eventId``, else sensor
and event time) Kafka already has, from either edge, is acknowledged and not produced again: a retained
message delivered again at every reconnect, a redelivery after a crash past Kafka's answer. While Redis
is unreachable the bridge goes on without the marks (at least once) and says so.

``route`` is pure (topic and payload in, edge outcomes out); ``MqttBridge`` does the I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from aiokafka.errors import KafkaError as AIOKafkaError
from kafka.errors import KafkaError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from redis.exceptions import RedisError

from connectors.kafka import EventProducer, create_topics
from connectors.redis_client import connect_async
from ioc.city import City, load_city
from ioc.feeds import FEEDS, MODELS
from ioc.infra.mosquitto import mqtt_address_of, new_client
from ioc.ingest.dedup import NEW, SEEN, DedupMarks
from ioc.ingest.edge import (
    DEFAULT_FUTURE_TOLERANCE,
    INVALID,
    Accepted,
    Problem,
    Rejected,
    carries_cards,
    parse_json,
    prepare,
    prepare_json,
    redact,
    redact_card_numbers,
    redact_text,
    scrub_card_numbers,
)
from ioc.privacy import require_card_key
from ioc.settings import Settings

log = logging.getLogger(__name__)

QOS = 1
# How long the broker keeps the session (subscription and unacknowledged messages) while the bridge is
# away. Mosquitto caps the queued messages per session (max_queued_messages), not the time.
SESSION_EXPIRY_SECONDS = 7 * 24 * 3600
RECEIVE_MAXIMUM = 1000  # QoS 1 messages the broker may have in flight to the bridge, unacknowledged
BATCH = 500  # messages per Kafka round trip at most
KEEPALIVE_SECONDS = 30
RETRY_FIRST, RETRY_MAX = 1.0, 30.0  # back-off between Kafka attempts while Kafka fails
STOP_GRACE_SECONDS = 3.0  # how long a stop waits for a Kafka write in flight before giving up on it
SLOW_KAFKA_SECONDS = 5.0  # a Kafka write taking longer is reported, every this many seconds
DEDUP_TIMEOUT_SECONDS = 2.0  # a Redis round trip of the duplicate marks; slower: go on without them
FIRST = asyncio.FIRST_COMPLETED
SESSION_TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT reason: another client connected with this client id
# Mosquitto 2.0 closes a taken-over connection without saying why. Losing the connection this many times
# in a row, each within seconds of connecting, is read the same way: two bridges share a client id.
FLAPS, FLAP_SECONDS = 3, 5.0
_TOPIC_FIELD = "(topic)"
_MAX_SHOWN = 64


@dataclass(frozen=True)
class Edge:
    """What the edge needs besides the item: the city registry, the card key and how far ahead of the
    receiving clock an event time may be."""

    city: City
    card_key: bytes
    card_key_id: str
    future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE

    @classmethod
    def from_settings(cls, settings: Settings) -> Edge:
        return cls(
            load_city(settings.city),
            require_card_key(settings),
            settings.card_hmac_key_id,
            timedelta(seconds=settings.future_tolerance_seconds),
        )


MQTT_FEED = "mqtt"  # the DLQ feed of a message whose topic names no feed (its topic is the source)


def _feed_of(levels: list[str]) -> str:
    """The feed a topic's first level after the root names, else ``mqtt``: any other word would become a
    label of the dead-letter metric, one per topic a publisher makes up."""
    return levels[0] if levels and levels[0] in MODELS else MQTT_FEED


def route(
    topic: str, payload: bytes, *, root: str, edge: Edge, received_at: datetime
) -> list[Accepted | Rejected]:
    """The edge outcomes of one MQTT message: one per item, or one rejection for the whole message."""
    # A topic is an address, never a place for a card number: one that holds one is refused whole, and
    # the number goes nowhere (the source, the key, the log).
    scrubbed = scrub_card_numbers(topic)
    source = f"mqtt:{scrubbed}"
    levels, root_levels = scrubbed.split("/"), root.split("/")
    rest = levels[len(root_levels) :] if levels[: len(root_levels)] == root_levels else []
    if scrubbed != topic:
        problem = Problem(_TOPIC_FIELD, "holds a card number; send the card number only as cardId")
        return [_whole_message(_feed_of(rest), problem, payload, None, source, received_at)]
    if len(rest) != 2 or not all(rest):
        problem = Problem(_TOPIC_FIELD, f"must be {root}/<feed>/<sensor id>")
        return [_whole_message(_feed_of(rest), problem, payload, None, source, received_at)]
    feed, sensor = rest
    if feed not in MODELS:
        problem = Problem(_TOPIC_FIELD, f"names no feed: {_shown(feed)!r} is not one of {', '.join(FEEDS)}")
        return [_whole_message(MQTT_FEED, problem, payload, sensor, source, received_at)]

    def through_edge(item: object) -> Accepted | Rejected:
        outcome = prepare(
            feed,
            item,
            city=edge.city,
            card_key=edge.card_key,
            card_key_id=edge.card_key_id,
            source=source,
            received_at=received_at,
            future_tolerance=edge.future_tolerance,
        )
        return _check_sensor(outcome, item, sensor, source, received_at)

    parsed = parse_json(payload)
    if isinstance(parsed, Problem):
        # The edge's own "unparseable" rejection, with card ids redacted from the text.
        rejected = prepare_json(
            feed,
            payload,
            city=edge.city,
            card_key=edge.card_key,
            card_key_id=edge.card_key_id,
            source=source,
            received_at=received_at,
        )
        return [_with_key(rejected, sensor)]
    items = parsed.value if isinstance(parsed.value, list) else [parsed.value]
    if not items:
        problem = Problem("(body)", "is an empty array: send one item or an array of items")
        return [_whole_message(feed, problem, payload, sensor, source, received_at)]
    return [through_edge(item) for item in items]


def _check_sensor(
    outcome: Accepted | Rejected, item: object, sensor: str, source: str, at: datetime
) -> Accepted | Rejected:
    """The item's sensorId must be the topic's sensor; a mismatch joins (or becomes) the rejection."""
    if isinstance(outcome, Accepted):
        if outcome.key == sensor:
            return outcome
        # What the client sent, pseudonymised by the edge, without the ingest stamp: replayable as is.
        payload = {k: v for k, v in json.loads(outcome.value).items() if k != "ingestTime"}
        return Rejected(
            outcome.feed, INVALID, (_mismatch(outcome.key, sensor),), payload, outcome.key, source, at
        )
    named = item.get("sensorId") if isinstance(item, dict) else None
    if isinstance(named, str) and named != sensor and outcome.key is not None:
        outcome = dataclasses.replace(outcome, problems=(*outcome.problems, _mismatch(outcome.key, sensor)))
    return _with_key(outcome, sensor)


def _mismatch(named: str, sensor: str) -> Problem:
    return Problem("sensorId", f"is {_shown(named)!r} but the MQTT topic names sensor {_shown(sensor)!r}")


def _with_key(rejected: Rejected, sensor: str) -> Rejected:
    return rejected if rejected.key else dataclasses.replace(rejected, key=sensor[:128])


def _whole_message(
    feed: str, problem: Problem, payload: bytes, key: str | None, source: str, at: datetime
) -> Rejected:
    """A rejection of the whole message before any item is looked at; the payload is kept, redacted."""
    parsed = parse_json(payload)
    if isinstance(parsed, Problem):
        kept: Any = redact_text(payload.decode(errors="replace"))
    else:
        kept = redact(parsed.value)
    if feed not in MODELS or carries_cards(feed):  # it may be a tap: no run of a card number's digits kept
        kept = redact_card_numbers(kept)
    return Rejected(feed, INVALID, (problem,), kept, key[:128] if key else None, source, at)


def _shown(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


# --- the bridge process ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Message:
    mid: int
    qos: int
    topic: str
    payload: bytes
    received_at: datetime
    connection: int  # which MQTT connection delivered it: a PUBACK only makes sense on that one


@dataclass
class BridgeCounts:
    messages: int = 0  # MQTT messages written to Kafka and acknowledged
    accepted: Counter[str] = field(default_factory=Counter)  # items, by feed
    rejected: Counter[str] = field(default_factory=Counter)  # items or messages, by DLQ reason
    kafka_failures: int = 0  # Kafka writes that failed (their messages stayed unacknowledged)
    duplicates: int = 0  # items Kafka already had (same dedup key), acknowledged and not produced again

    def line(self) -> str:
        def spread(counter: Counter[str]) -> str:
            return ", ".join(f"{name} {count:,}" for name, count in sorted(counter.items())) or "0"

        return (
            f"{self.messages:,} MQTT messages acknowledged; accepted {spread(self.accepted)}; "
            f"to the DLQ {spread(self.rejected)}; {self.duplicates:,} duplicates; "
            f"{self.kafka_failures} failed Kafka writes"
        )


class BridgeError(RuntimeError):
    """The bridge cannot run: the MQTT broker refused it, or a subscription was not granted."""


class MqttBridge:
    """Subscribes to ``<root>/#`` and bridges each message into Kafka; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        edge: Edge | None = None,
        batch: int = BATCH,
        report_every: float = 30.0,
        on_report: Callable[[BridgeCounts], None] | None = None,
    ) -> None:
        self.settings = settings
        self.edge = edge or Edge.from_settings(settings)
        self.address = mqtt_address_of(settings)
        self.root = settings.mqtt_topic_root.strip("/")
        self.batch = batch
        self.report_every = report_every
        self.on_report = on_report
        self.counts = BridgeCounts()
        self._connection = 0  # bumped by every successful CONNACK
        self._connected_at = 0.0
        self._flaps = 0  # connections lost within FLAP_SECONDS of being made, in a row
        self._queue: asyncio.Queue[_Message] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._fatal: BridgeError | None = None
        self._marks: DedupMarks | None = None  # made in ``run``'s event loop

    @property
    def subscription(self) -> str:
        return f"{self.root}/#"

    async def run(self, stop: asyncio.Event) -> BridgeCounts:
        """Bridge until ``stop`` is set; raise BridgeError when the broker refuses the bridge."""
        self._loop, self._stop = asyncio.get_running_loop(), stop
        feeds_topics = [self.settings.raw_topic(feed) for feed in FEEDS]
        log.info("connecting to Kafka at %s…", self.settings.bootstrap_servers)
        await asyncio.to_thread(create_topics, self.settings, [*feeds_topics, self.settings.dlq_topic])
        producer = EventProducer(self.settings)
        await producer.__aenter__()
        redis = connect_async(self.settings, decode_responses=True)
        self._marks = DedupMarks(self.settings, redis)
        client: mqtt.Client | None = None
        try:
            client = await asyncio.to_thread(self._connect)
            await self._pump(client, producer, stop)
        finally:
            if client is not None:
                # Disconnect without unsubscribing: the session keeps the subscription, and whatever was
                # not acknowledged is delivered again to the next bridge with this client id.
                client.disconnect()
                client.loop_stop()
            try:
                await asyncio.wait_for(producer.__aexit__(None, None, None), STOP_GRACE_SECONDS)
            except TimeoutError:
                log.warning("the Kafka producer did not close within %.0f s", STOP_GRACE_SECONDS)
            await redis.aclose()
            log.info("MQTT bridge stopped: %s", self.counts.line())
        if self._fatal is not None:
            raise self._fatal
        return self.counts

    # --- MQTT side (paho's network thread) ----------------------------------------------------------

    def _connect(self) -> mqtt.Client:
        client = new_client(self.address, self.settings.mqtt_client_id, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.reconnect_delay_set(1, 30)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        log.info(
            "connecting to %s as %r, subscribing to %s (QoS %d)",
            self.address,
            self.settings.mqtt_client_id,
            self.subscription,
            QOS,
        )
        try:
            client.connect(
                self.address.host,
                self.address.port,
                keepalive=KEEPALIVE_SECONDS,
                clean_start=False,
                properties=properties,
            )
        except OSError as error:
            raise BridgeError(f"cannot reach the MQTT broker at {self.address}: {error}") from None
        client.loop_start()
        return client

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            self._fail(f"the MQTT broker at {self.address} refused the bridge: {reason}")
            return
        self._connection += 1
        self._connected_at = time.monotonic()
        log.info(
            "connected to %s (%s session)",
            self.address,
            "resumed" if flags.session_present else "new",
        )
        client.subscribe(self.subscription, qos=QOS)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        granted = reasons[0]
        if granted.is_failure:
            self._fail(f"the MQTT broker did not grant the subscription {self.subscription}: {granted}")
        elif granted.value < QOS:
            self._fail(
                f"the MQTT broker granted {self.subscription} only QoS {granted.value}; QoS 1 is needed"
            )
        else:
            log.info("subscribed to %s (QoS %d)", self.subscription, granted.value)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if not reason.is_failure:
            return
        soon = time.monotonic() - self._connected_at < FLAP_SECONDS
        self._flaps = self._flaps + 1 if soon else 0
        if reason.value == SESSION_TAKEN_OVER or self._flaps >= FLAPS:
            # Reconnecting would take the session back, and two bridges would pass it to and fro, each
            # losing the messages in flight on every switch (they come again: duplicates). Stop instead.
            client.disconnect()  # no reconnecting: paho's loop ends here
            if reason.value == SESSION_TAKEN_OVER:
                why = "took this bridge's session over"
            else:
                why = (
                    "seems to hold this bridge's session (the broker closed it "
                    f"{self._flaps} times in a row, each within seconds)"
                )
            self._fail(
                f"another MQTT client with the id {self.settings.mqtt_client_id!r} {why}; "
                "run one bridge per IOC_MQTT_CLIENT_ID"
            )
            return
        log.warning("lost the MQTT broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        received = _Message(
            message.mid, message.qos, message.topic, message.payload, datetime.now(UTC), self._connection
        )
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the event loop is closing: the broker will redeliver
            self._loop.call_soon_threadsafe(self._queue.put_nowait, received)

    def _fail(self, message: str) -> None:
        log.error(message)
        self._fatal = BridgeError(message)
        assert self._loop is not None and self._stop is not None
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._stop.set)

    # --- Kafka side (the event loop) ----------------------------------------------------------------

    async def _pump(self, client: mqtt.Client, producer: EventProducer, stop: asyncio.Event) -> None:
        last_report, reported = time.monotonic(), (0, 0)
        held = 0
        while not stop.is_set():
            batch = await self._next_batch()
            if batch and not await self._deliver(client, producer, batch, stop):
                held = len(batch)  # stopping before Kafka acknowledged them: they stay unacknowledged
                break
            now = time.monotonic()
            if now - last_report >= self.report_every:
                # Only when something happened: an idle bridge keeps its log quiet.
                current = (self.counts.messages, self.counts.kafka_failures)
                if current != reported:
                    rate = (current[0] - reported[0]) / (now - last_report)
                    log.info("MQTT bridge: %s (%.1f messages/s lately)", self.counts.line(), rate)
                    if self.on_report:
                        self.on_report(self.counts)
                last_report, reported = now, current
        held += self._queue.qsize()
        if held:
            log.warning(
                "stopping with %d received MQTT messages not acknowledged; the broker delivers them again",
                held,
            )

    async def _next_batch(self) -> list[_Message]:
        try:
            first = await asyncio.wait_for(self._queue.get(), timeout=0.5)
        except TimeoutError:
            return []
        batch = [first]
        while len(batch) < self.batch and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _deliver(
        self, client: mqtt.Client, producer: EventProducer, batch: list[_Message], stop: asyncio.Event
    ) -> bool:
        """Write the batch to Kafka (retrying while Kafka fails), then acknowledge it; False if stopped."""
        outcomes = [
            route(m.topic, m.payload, root=self.root, edge=self.edge, received_at=m.received_at)
            for m in batch
        ]
        flat = [outcome for per_message in outcomes for outcome in per_message]
        fresh, marked = await self._without_duplicates(flat)
        records = [self._record(outcome) for outcome in flat if id(outcome) in fresh]
        if not await self._write(producer, records, len(batch), stop):
            await self._dedup("unmark", marked)
            return False
        await self._dedup("confirm", [o.dedup_key for o in flat if isinstance(o, Accepted)])
        # Kafka has every record: now (and only now) acknowledge, in the order the broker sent them.
        for message in batch:
            if message.connection == self._connection:
                client.ack(message.mid, message.qos)
            # else: that connection is gone; the broker redelivers the message on the new one.
        self.counts.messages += len(batch)
        for outcome in flat:
            if id(outcome) not in fresh:
                self.counts.duplicates += 1
            elif isinstance(outcome, Accepted):
                self.counts.accepted[outcome.feed] += 1
            else:
                self.counts.rejected[outcome.kind] += 1
        return True

    async def _without_duplicates(self, outcomes: list[Accepted | Rejected]) -> tuple[set[int], list[str]]:
        """The outcomes to produce (by ``id``): all but accepted events seen before, in this batch or
        marked done in Redis; and the dedup keys this call newly marked pending (to unmark on failure)."""
        fresh: set[int] = set()
        first: dict[str, Accepted] = {}
        for outcome in outcomes:
            if not isinstance(outcome, Accepted):
                fresh.add(id(outcome))
            elif outcome.dedup_key not in first:
                first[outcome.dedup_key] = outcome
        keys = list(first)
        states = await self._dedup("mark", keys)
        if states is None:  # no marks: every event goes, at least once
            states = [NEW] * len(keys)
        fresh.update(id(first[key]) for key, state in zip(keys, states, strict=True) if state != SEEN)
        return fresh, [key for key, state in zip(keys, states, strict=True) if state == NEW]

    async def _dedup(self, call: str, keys: list[str]) -> Any:
        """``DedupMarks.<call>(keys)``, or None when Redis does not answer in time."""
        if self._marks is None:
            return None
        try:
            return await asyncio.wait_for(getattr(self._marks, call)(keys), DEDUP_TIMEOUT_SECONDS)
        except (RedisError, OSError, TimeoutError) as error:
            log.warning(
                "duplicate marks unavailable (Redis: %s); bridging without them", type(error).__name__
            )
            return None

    async def _write(
        self,
        producer: EventProducer,
        records: list[tuple[str, str, bytes]],
        messages: int,
        stop: asyncio.Event,
    ) -> bool:
        """Until Kafka acknowledged every record: True; or stopped first: False (nothing to acknowledge)."""
        delay = RETRY_FIRST
        while True:
            sending = asyncio.ensure_future(producer.send_many(records))
            stopping = asyncio.ensure_future(stop.wait())
            waited = 0.0
            while not sending.done() and not stop.is_set():
                await asyncio.wait({sending, stopping}, timeout=SLOW_KAFKA_SECONDS, return_when=FIRST)
                if not sending.done() and not stop.is_set():
                    waited += SLOW_KAFKA_SECONDS
                    log.warning(
                        "Kafka has not acknowledged for %.0f s; %d MQTT messages stay unacknowledged",
                        waited,
                        messages,
                    )
            stopping.cancel()
            if not sending.done():
                # Asked to stop while Kafka has not answered: give it a moment, not forever.
                await asyncio.wait({sending}, timeout=STOP_GRACE_SECONDS)
                if not sending.done():
                    sending.cancel()
                    return False
            error = sending.exception()
            if error is None:
                return True
            if not isinstance(error, AIOKafkaError | KafkaError | OSError | TimeoutError):
                raise error
            self.counts.kafka_failures += 1
            log.warning(
                "Kafka write failed (%s: %s); %d MQTT messages stay unacknowledged, retrying in %.0f s",
                type(error).__name__,
                error,
                messages,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            if stop.is_set():
                return False
            delay = min(delay * 2, RETRY_MAX)

    def _record(self, outcome: Accepted | Rejected) -> tuple[str, str, bytes]:
        if isinstance(outcome, Accepted):
            return self.settings.raw_topic(outcome.feed), outcome.key, outcome.value
        return self.settings.dlq_topic, outcome.key or "", outcome.dead_letter().to_json()


async def run_bridge(settings: Settings, **options: Any) -> BridgeCounts:
    """Run the bridge until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await MqttBridge(settings, **options).run(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
