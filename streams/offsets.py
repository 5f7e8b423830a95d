"""Every offset of a partition counted, in order: the guard against messages Faust drops.

Faust (0.15) can drop a message of a source topic without a trace: one fetched under the previous
consumer generation, or while flow control is paused at a rebalance (``Stream`` "Skipping message"), or
one below a read offset that a stale fetch moved on (``Consumer`` "DROPPED MESSAGE ROFF"). It then
either commits later offsets past the dropped ones (``Consumer._new_offset`` lets a gap of one offset
through, and any gap before a partition's first commit) or never commits the partition again. The fault
suite saw windows come out short after rebalances and restarts (docs/operations.md).

Our source topics have contiguous offsets (no transactions, no compaction), so an agent whose state has
counted offset N of a partition must next see N + 1. The agent keeps, per partition, the last offset
its state counted, in a table saved with that state. When an event comes after a gap, the guard reads
the missing records straight from Kafka (a consumer of its own, no group) and hands them to the agent
as events, to count before the one that revealed the gap; acknowledging them lets Faust commit past
the gap. Seeking Faust's own consumer back does not work: a fetch already under way overtakes the seek
and its read offset then drops the records again. An event at or before the last counted is a repeat
(after a restart or a rebalance), which the agent's own state recognises.
"""

from __future__ import annotations

import asyncio
import logging
from enum import Enum

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from faust.types import TP, ConsumerMessage, EventT, Message

log = logging.getLogger(__name__)

FILL_TIMEOUT = 60.0  # seconds to read a gap back before the batch fails (and the worker restarts)


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
            bootstrap_servers=self.bootstrap_servers, group_id=None, enable_auto_commit=False
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
