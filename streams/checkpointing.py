"""Faust, held in one place: every agent's batches, their commit sequence and the offset guard.

Every agent of the worker runs ``Checkpointer.run``: batches of its source topics (``noack_take``), every
offset of a partition counted in order, and for each batch the one sequence that loses nothing and
repeats nothing a restart cannot recognise:

1. the agent handles the batch's events (``handle``), collecting its outputs in a ``Batch``;
2. the outputs are sent and awaited until Kafka has them (``acks=all``), then any side effects (Redis);
3. the table writes, each made as an event of its key's own partition (so it lands in that changelog
   partition), with the partition's last offset counted;
4. only then are the events acknowledged: Faust commits an offset once it and every offset before it
   are acknowledged, after flushing its producer (changelogs included), so the event of a committed
   offset is in the saved state.

A batch that fails stops the worker, its events unacknowledged: a restarted worker counts them again
from the last commit, and the agent's own state (the last offset per partition, a sensor's position)
recognises what it had counted. No other module imports a private name of Faust or aiokafka.

Every ``STALL_CHECK_SECONDS`` an agent warns of a source partition whose records wait in Kafka beyond the
last offset it counted while that offset stands still (``stalled``), naming what its consumer holds.

**The offset guard.** Faust (0.15) can drop a message of a source topic without a trace: one fetched
under the previous consumer generation, or while flow control is paused at a rebalance (``Stream``
"Skipping message"), or one below a read offset that a stale fetch moved on (``Consumer`` "DROPPED
MESSAGE ROFF"). It then either commits later offsets past the dropped ones (``Consumer._new_offset`` lets
a gap of one offset through, and any gap before a partition's first commit) or never commits the
partition again. Our source topics have contiguous offsets (no transactions, no compaction), so an agent
that has counted offset N of a partition must next see N + 1. When an event comes after a gap, the
guard reads the missing records straight from Kafka (a consumer of its own, no group) and hands them to
the agent first. Seeking Faust's own consumer back does not work: a fetch already under way overtakes
the seek and its read offset then drops the records again.

**The seek at recovery.** Faust seeks the source partitions to their committed offsets while its fetcher
runs; a batch fetched before the seek, handed on after it, leaves a gap and drops the records the seek
fetches again, and the committed offset then creeps one offset per commit (or never moves).
``SeekSafeConsumer`` (installed by ``install_seek_safe_consumer`` when the app is built) holds the batch
while a seek runs and skips what was fetched before it: after every seek the partitions start cleanly
from their committed offsets, and those their group never committed from their beginning (aiokafka
leaves them where the dropped fetches had moved them).
"""

from __future__ import annotations

import asyncio
import logging
import random
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from faust.streams import _current_event
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, ConsumerMessage, EventT, Message
from kafka.partitioner.default import murmur2

from connectors.kafka import faust_app_kafka_auth
from ioc.models.dead_letter import unreadable

log = logging.getLogger(__name__)

FILL_TIMEOUT = 60.0  # seconds to read a gap back before the batch fails (and the worker restarts)
# Seconds between looks for a source partition whose records wait in Kafka while its last counted
# offset stands still: the offset guard sees a gap only when a later record comes, so a lost tail (or
# a consumer that stopped handing records on) would otherwise go unnoticed.
STALL_CHECK_SECONDS = 30.0
PARTITIONS_KEPT = 100_000  # keys whose partition is remembered


class Admission(Enum):
    NEXT = "next"  # the offset after the last counted (or the first seen of a partition with no state)
    REPEAT = "repeat"  # at or before the last counted: read again after a restart or a rebalance
    AHEAD = "ahead"  # beyond the next: offsets in between were dropped


def admission(last: int | None, offset: int) -> Admission:
    """Where ``offset`` stands against the last offset counted of its partition."""
    if last is None or offset == last + 1:
        return Admission.NEXT
    return Admission.REPEAT if offset <= last else Admission.AHEAD


def position_key(tp: TP) -> str:
    """The table key of a partition's last offset (written from that partition, so it moves with it)."""
    return f"{tp.topic}[{tp.partition}]"


class Batch:
    """What one batch of an agent must get done: its outputs, its side effects and its table writes."""

    def __init__(self, outputs: Outputs) -> None:
        self._outputs = outputs
        self._records: dict[str, list[tuple[bytes | None, bytes]]] = {}
        self._effects: list[Callable[[], Awaitable[Any]]] = []
        self._writes: dict[tuple[int, str], tuple[faust.Table, Any, int]] = {}

    def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Produce a record (partitioned by its key) when the batch finishes, before any table write."""
        self._records.setdefault(topic, []).append((key, value))

    def after_outputs(self, effect: Callable[[], Awaitable[Any]]) -> None:
        """Run ``effect`` once the outputs are in Kafka and before the table writes (a Redis write)."""
        self._effects.append(effect)

    def write(self, table: faust.Table, key: str, value: Any, partition: int) -> None:
        """``table[key] = value`` once the outputs are in Kafka; ``partition`` is the key's partition."""
        self._writes[(id(table), key)] = (table, value, partition)

    async def finish(self, by_partition: dict[int, EventT]) -> None:
        # Outputs first: state saying "counted" without them loses them.
        await asyncio.gather(*await self._outputs.send_all(self._records))
        for effect in self._effects:
            await effect()
        for (_, key), (table, value, partition) in self._writes.items():
            _write(table, key, value, by_partition[partition])


class Outputs:
    """A batch's records into Kafka through the app's producer, each topic partition's as one record batch.

    Faust's ``Topic.send`` adds a FutureMessage, a callback chain and an attachment check per record, and
    aiokafka's ``send`` a partitioner call (murmur2 in Python), an accumulator lookup and a future; at
    1.5 aggregates per event those were 7 % of a worker's samples. Here a record is an append to its
    partition's batch (``create_batch``/``send_batch``, aiokafka's public API), with the partition of
    each key worked out once, as aiokafka's default partitioner gives it.
    """

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self._partitions: dict[str, list[int]] = {}  # topic → its partitions, from the producer's metadata
        self._partition_of: dict[tuple[int, bytes], int] = {}  # (partitions, key) → the key's index

    async def send_all(self, records: Mapping[str, list[tuple[bytes | None, bytes]]]) -> list[Awaitable[Any]]:
        """Send ``records`` (by topic, in order); the futures Kafka's acknowledgements resolve."""
        if not records:
            return []
        producer = self.app.producer._ensure_producer()  # aiokafka's, which Faust's producer started
        sent = []
        for topic, pairs in records.items():
            batches: dict[int, Any] = {}
            for key, value in pairs:
                partition = await self._partition(producer, topic, key)
                batch = batches.get(partition)
                if batch is None:
                    batch = batches[partition] = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start anew
                    batch.close()
                    sent.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = batches[partition] = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)  # a first record always fits
            for partition, batch in batches.items():
                batch.close()
                sent.append(await producer.send_batch(batch, topic, partition=partition))
        return sent

    async def _partition(self, producer: Any, topic: str, key: bytes | None) -> int:
        partitions = self._partitions.get(topic)
        if partitions is None:
            await producer.client._wait_on_metadata(topic)
            partitions = self._partitions[topic] = sorted(producer.client.cluster.partitions_for_topic(topic))
        if key is None:
            return random.choice(partitions)  # as aiokafka's default partitioner does
        index = self._partition_of.get((len(partitions), key))
        if index is None:
            if len(self._partition_of) >= PARTITIONS_KEPT:
                self._partition_of.clear()
            index = self._partition_of[(len(partitions), key)] = (murmur2(key) & 0x7FFFFFFF) % len(partitions)
        return partitions[index]


Handler = Callable[[list[tuple[EventT, Admission]], Batch], Awaitable[None]]


class Checkpointer:
    """One agent's batches, in the commit sequence, with the offset guard (see the module's text)."""

    def __init__(self, app: faust.App, name: str, bootstrap_servers: str, partitions: int) -> None:
        self.app = app
        self.name = name
        # Per source partition: the last offset counted, saved with the batch's state.
        self.offsets = app.Table(f"{name}-offsets", partitions=partitions)
        self.gaps = GapFiller(app, bootstrap_servers, name)
        self.outputs = Outputs(app)

    async def run(
        self,
        stream: faust.StreamT,
        handle: Handler,
        *,
        batch_max: int,
        within: float,
        outputs: Iterable[faust.TopicT] = (),
    ) -> None:
        """Handle the stream in batches until the worker stops; a failed batch stops the worker."""
        assert_installed(self.app)
        for topic in outputs:  # records go out through the producer itself, so declare them here
            await topic.maybe_declare()
        watch = asyncio.ensure_future(self._watch_stalls(set(getattr(stream.channel, "topics", ()))))
        try:
            await self._run(stream, handle, batch_max, within)
        finally:
            watch.cancel()

    async def _run(self, stream: faust.StreamT, handle: Handler, batch_max: int, within: float) -> None:
        # noack_take: the events are acknowledged here, once the batch's state is saved, and not when
        # the generator is closed (as take_events does), so a shutdown mid-batch commits none.
        async for arrived in stream.noack_take(batch_max, within=within):
            try:
                events = await self._batch(arrived, handle)
            except Exception as error:
                # Faust would restart this agent on the same stream, which a take buffer does not
                # survive (later events went by unprocessed). Stop the worker instead, the batch
                # unacknowledged: a restarted worker counts it again from the last commit.
                log.exception("%s: a batch failed; stopping the worker", self.name)
                await self.app.crash(error)
                return
            for event in events:  # the batch's, and those read back from Kafka to fill a gap
                await stream.ack(event)

    async def _watch_stalls(self, topics: set[str]) -> None:
        """Warn, every ``STALL_CHECK_SECONDS``, of each source partition of this agent that has records
        beyond the last offset counted and has not moved since the look before (see the constant)."""
        before: dict[TP, int | None] = {}
        while True:
            await asyncio.sleep(STALL_CHECK_SECONDS)
            consumer = self.app.consumer
            try:
                now = {
                    tp: self.offsets.get(position_key(tp))
                    for tp in consumer.assignment()
                    if tp.topic in topics
                }
                ends = {tp: consumer.highwater(tp) for tp in now}
            except Exception as error:  # a rebalance under way: look again next time
                log.debug("%s: no look at the partitions' progress (%s)", self.name, error)
                before = {}
                continue
            for tp in stalled(ends, now, before):
                log.warning(
                    "%s: %s[%d] holds records up to offset %d, the last counted is %s and has not moved in "
                    "%.0f s (consumer: read offset %s, paused %s, flow active %s)",
                    *(self.name, tp.topic, tp.partition, ends[tp] - 1, now[tp], STALL_CHECK_SECONDS),
                    *(consumer._read_offset.get(tp), tp in consumer._paused_partitions, consumer.flow_active),
                )
            before = now

    async def _batch(self, arrived: list[EventT], handle: Handler) -> list[EventT]:
        counted: list[tuple[EventT, Admission]] = []
        last_offsets: dict[str, int] = {}
        by_partition: dict[int, EventT] = {}
        for event in arrived:
            position = position_key(event.message.tp)
            last = last_offsets[position] if position in last_offsets else self.offsets.get(position)
            verdict, events = await self.gaps.in_order(event, last)  # with those a gap before it held
            for each in events:
                if verdict is not Admission.REPEAT:
                    last_offsets[position] = each.message.offset
                counted.append((each, verdict))
            by_partition[event.message.partition] = event
        batch = Batch(self.outputs)
        await handle(counted, batch)
        for position, offset in last_offsets.items():
            batch.write(self.offsets, position, offset, _partition_of(position))
        await batch.finish(by_partition)
        return [event for event, _ in counted]


def stalled(
    ends: Mapping[TP, int | None], counted: Mapping[TP, int | None], before: Mapping[TP, int | None]
) -> list[TP]:
    """The partitions with records after the last counted offset (``ends``: the next offset Kafka will
    write, None when not known yet) whose last counted offset is what it was at the look ``before``."""
    return [
        tp
        for tp, last in counted.items()
        if (end := ends.get(tp)) is not None
        and end - 1 > (last if last is not None else -1)
        and tp in before
        and before[tp] == last
    ]


def received_at(event: EventT) -> datetime:
    """When the event's record entered Kafka (its timestamp): a dead letter's time, so a re-run writes the
    same one."""
    return datetime.fromtimestamp(event.message.timestamp, UTC)


def refuse(batch: Batch, dlq_topic: str, event: EventT, kind: str, error: ValueError) -> None:
    """A record that does not parse goes to the dead-letter topic and the agent goes on: failing the
    batch would fail it again after every restart."""
    letter = unreadable(
        kind=kind,
        source=event.message.topic,
        payload=event.value,
        key=event.key,
        at=received_at(event),
        error=error,
    )
    log.warning("%s: the record at %s does not parse; dead-lettered", kind, position_key(event.message.tp))
    batch.send(dlq_topic, event.key, letter.to_json())


def _partition_of(position: str) -> int:
    return int(position.rsplit("[", 1)[1].rstrip("]"))


def _write(table: faust.Table, key: str, value: Any, event: EventT) -> None:
    """``table[key] = value``, written as ``event`` (an event of the key's partition).

    Faust finds the changelog partition of a table write (and a rocksdb store its database) through
    ``current_event()``, a contextvar set by the task that iterates the stream. Under ``noack_take`` that
    is the stream's background drainer task, not the agent's, so in the agent ``current_event()`` is
    None and ``table[key] = value`` raises TypeError ("Cannot modify table key from outside of stream
    iteration"). Even where it is set it names one event of the batch, whose partition need not be the
    key's. So each write is made with the contextvar set to the key's own event.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        table[key] = value
    finally:
        _current_event.reset(token)


class GapFiller:
    """Reads the records Faust dropped straight from Kafka, as events of ``app``."""

    def __init__(self, app: faust.App, bootstrap_servers: str, name: str) -> None:
        self.app = app
        self.bootstrap_servers = bootstrap_servers
        self.name = name

    async def in_order(self, arrived: EventT, last: int | None) -> tuple[Admission, list[EventT]]:
        """Where ``arrived`` stands against ``last``, and the events to count: ``arrived``, after the
        gap's when it came after one."""
        verdict = admission(last, arrived.message.offset)
        if verdict is Admission.AHEAD:
            assert last is not None
            return verdict, [*await self.missing(arrived.message, last), arrived]
        return verdict, [arrived]

    async def missing(self, message: Message, last: int) -> list[EventT]:
        """The events of ``message``'s partition after offset ``last`` and before ``message``."""
        return await asyncio.wait_for(self._read(message.tp, last + 1, message.offset), FILL_TIMEOUT)

    async def _read(self, tp: TP, start: int, end: int) -> list[EventT]:
        partition = TopicPartition(tp.topic, tp.partition)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            **faust_app_kafka_auth(self.app),
        )
        await consumer.start()
        try:
            consumer.assign([partition])
            earliest = (await consumer.beginning_offsets([partition]))[partition]
            if start < earliest:
                log.error(
                    "%s: %s[%d] %s deleted by retention before counted",
                    *(self.name, tp.topic, tp.partition, _offsets(start, earliest)),
                )
                start = earliest
            log.warning(
                "%s: %s[%d] %s dropped by the consumer; reading from Kafka",
                *(self.name, tp.topic, tp.partition, _offsets(start, end)),
            )
            consumer.seek(partition, start)
            events: list[EventT] = []
            while start < end:
                for record in (await consumer.getmany(partition, timeout_ms=1000)).get(partition, []):
                    if record.offset >= end:
                        start = end
                        break
                    events.append(self._event(tp, record))
                    start = record.offset + 1
        finally:
            await consumer.stop()
        return events

    def _event(self, tp: TP, record: ConsumerRecord) -> EventT:
        message = ConsumerMessage(
            record.topic,
            record.partition,
            record.offset,
            record.timestamp / 1000.0,
            record.timestamp_type,
            record.headers,
            record.key,
            record.value,
            record.checksum,
            tp=tp,
            generation_id=self.app.consumer_generation_id,
        )
        # Keys and values are raw bytes in this app (``key_serializer``/``value_serializer`` "raw").
        return faust.Event(self.app, record.key, record.value, record.headers, message)


def _offsets(start: int, end: int) -> str:
    """The offsets [start, end) in words."""
    return f"offset {start} was" if end - start == 1 else f"offsets {start}–{end - 1} were"


class SeekSafeConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, except that no record fetched before a seek of its partition is handed on.

    At recovery Faust resumes the source partitions and then seeks them to their committed offsets
    (``Recovery.on_recovery_completed``: ``resume_partitions`` then ``await perform_seek()``), while the
    fetcher runs. The drain loop (``Consumer._drain_messages``) goes on handing on a batch fetched before
    the seek after ``perform_seek`` has moved the read offsets back to the committed ones: the next stale
    record looks like a jump, a gap from the committed offset to it is recorded (``_add_gap``), and the
    records the seek fetches again fall below the read offset the stale batch leaves and are dropped
    ("DROPPED MESSAGE ROFF"). At each commit ``_new_offset`` merges the gap into the acknowledged offsets
    without removing duplicates, and ``consecutive_numbers`` cuts a run at the first duplicate: the
    committed offset creeps one offset per commit interval over every offset both in the gap and
    acknowledged (the repeats the agent acknowledges, the records the guard reads back).

    Here the batch is held while a seek runs, its records of the partitions the seek moved are skipped
    after it (the seek fetches them again), and the partitions are sought once more, with nothing in
    flight, if the drain loop held a record while the seek ran (it sets a record's read offset after
    handing it on, which can land over the seek's) or if the batch arrived while the seek ran (it may hold
    records from either side of it). After every seek the source partitions start again from their
    committed offsets: no gap, no drop, acknowledgements contiguous, each commit takes all of them.
    The seek's part uses public methods of Faust's consumer only (``seek_to_committed``, ``getmany``,
    ``perform_seek``); it relies on ``perform_seek`` setting the read offsets right after
    ``seek_to_committed`` returns and on ``getmany`` yielding a fetch's first record with no await after
    the fetch (faust-streaming 0.15.3). The fetch loop (``_drain_messages``) is a copy of Faust's own.
    """

    ioc_seeks: int = 0  # seeks to the committed offsets begun or ended: odd while one runs
    ioc_sought: frozenset[TP] = frozenset()  # the partitions the last seek moved
    ioc_seek_done: asyncio.Event | None = None

    async def seek_to_committed(self) -> Mapping[TP, int]:
        if self.ioc_seek_done is None:
            self.ioc_seek_done = asyncio.Event()
        self.ioc_seek_done.clear()
        self.ioc_seeks += 1
        try:
            committed = await super().seek_to_committed()
            # aiokafka seeks a partition only to a committed offset above 0 (``seek_to_committed``): a
            # source partition its group never committed stays where its fetches left it, and what was
            # fetched before the seek and dropped (Faust's ``getmany`` drops what it fetched while the
            # flow was stopped, then seeks; the skip here) would never come again: seen as a restarted
            # worker that counted nothing (``Checkpointer``'s stall warning). Those partitions start
            # over from the beginning, where the group's consumer started (``auto_offset_reset``
            # "earliest"); the offset guard recognises what an earlier worker had counted of them.
            fresh = [
                TopicPartition(tp.topic, tp.partition)
                for tp, offset in committed.items()
                if not offset and not self._is_changelog_tp(tp)
            ]
            if fresh:
                await self._seek_to_beginning(fresh)
            self.ioc_sought = frozenset(tp for tp, offset in committed.items() if offset) | frozenset(fresh)
            return committed
        finally:
            self.ioc_seeks += 1
            self.ioc_seek_done.set()

    async def _seek_to_beginning(self, partitions: list[TopicPartition]) -> None:
        """Seek ``partitions`` to their first offset, in the consumer's own thread."""
        consumer = self._thread._ensure_consumer()
        try:
            await self._thread.call_thread(consumer.seek_to_beginning, *partitions)
        except Exception as error:  # no longer assigned: a rebalance under way seeks again
            log.warning("could not seek %s to their beginning: %s", partitions, error)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        fetched_at: int | None = None  # the seek count when the batch's fetch returned
        seek_again, skipped = False, 0
        batch = super().getmany(timeout)
        try:
            async for tp, message in batch:
                if fetched_at is None:
                    fetched_at = self.ioc_seeks  # no await between the fetch and its first record
                if self.ioc_seeks % 2 and self.ioc_seek_done is not None:
                    await self.ioc_seek_done.wait()  # hold the batch while a seek runs
                if self.ioc_seeks != fetched_at and tp in self.ioc_sought:
                    skipped += 1  # fetched before the seek ended: the seek fetches it again
                    seek_again = seek_again or bool(fetched_at % 2)  # or fetched while it ran
                    continue
                before = self.ioc_seeks
                yield tp, message
                if self.ioc_seeks != before:  # the drain loop held this record while a seek ran
                    seek_again = True
        finally:
            await batch.aclose()
        if seek_again and not self.should_stop:
            log.info(
                "%d records fetched before a seek skipped; seeking to the committed offsets again", skipped
            )
            await self.perform_seek()

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's fetch loop (faust-streaming 0.15.3's ``Consumer._drain_messages``), except that a message
        is handed to the conductor by a plain await while the flow runs. Faust wraps each hand-over in
        ``wait_first(callback, suspend_flow.wait())`` so a rebalance can cut short one that blocks (flow
        control paused, a full buffer): four tasks and a turn of the event loop per message, the largest
        cost Faust adds to a record. A hand-over blocks only while the flow is paused, so that path is
        kept for when it is (or a suspension is under way); a full buffer found later is emptied by the
        agent or cleared by the rebalance, and what it then holds is of an older generation and skipped.
        """
        callback = self.callback
        consumer_stopped, fetcher_stopped = self._stopped.is_set, fetcher._stopped.is_set
        flow_active, suspended = self.app.flow_control.is_active, self.suspend_flow.is_set
        read_offsets = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        commit_every = self._commit_every
        since_yield = 0
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                fetched = self.getmany(timeout=1.0)
                await self.sleep(0)  # getmany can return at once, again and again
                if not self.should_stop:
                    async for tp, message in fetched:
                        since_yield += 1
                        if since_yield > 100:
                            await asyncio.sleep(0)
                            since_yield = 0
                        offset, read = message.offset, read_offsets[tp]
                        if read is not None and offset < read:
                            continue  # Faust's "DROPPED MESSAGE ROFF" (see the class's text)
                        if read and offset - read > 1 and acks_enabled_for(message.topic):
                            await self._add_gap(tp, read + 1, offset)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        if flow_active() and not suspended():
                            await callback(message)
                        else:
                            await self.wait_first(callback(message), self.suspend_flow.wait())
                        read_offsets[tp] = offset
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if not self.transport.app.should_stop:
                raise
        except asyncio.CancelledError:
            if not self.transport.app.should_stop:
                raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)


def install_seek_safe_consumer(app: faust.App) -> None:
    """Make ``app`` consume through ``SeekSafeConsumer``; call before anything uses ``app.consumer``."""
    app.transport.Consumer = SeekSafeConsumer


def assert_installed(app: faust.App) -> None:
    """For ``Checkpointer.run``: the worker's consumer is ours (installed early enough)."""
    if not isinstance(app.consumer, SeekSafeConsumer):
        raise RuntimeError("install_seek_safe_consumer(app) must run before the app's consumer is created")
