"""One agent per feed, keyed by sensor id: validate → event-time windows → detectors → anomalies.

Wiring only; the arithmetic is ``ioc.windows`` and ``ioc.detectors.sensor``. Events come in batches
(``noack_take``: up to ``BATCH_MAX``, or what arrived within ``BATCH_WITHIN`` seconds), processed in
order. Per batch: each window of each sensor (label, sensor, window start) is published once, at its
latest; the batch's dead letters, aggregates and anomalies are awaited until Kafka has them; then each
table key the batch touched is written once (``_save``, to the changelog partition of the key's own
events); only then are the batch's events acknowledged. Faust commits an offset once it and every
offset before it are acknowledged, after flushing its producer (changelogs included): the event of a
committed offset is in the saved state. Every offset of a partition is counted, in order: when an event
comes after a gap (Faust dropped the ones before it), the gap's records are read from Kafka and counted
first (``streams.offsets``).

Restarts: the table records, per sensor, the last (partition, offset) counted; an event at or before
it was counted before a crash whose offset commit had not happened yet, and is skipped. So a crash
(SIGKILL, or a failed batch, which stops the worker) may repeat a batch's outputs but loses none, and
counts no event twice in a window (a sensor's windows and position are one table value). An error on a
single event is logged and that event skipped, as Faust would.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import faust
from faust.streams import _current_event
from faust.types import EventT
from pydantic import ValidationError

from ioc.alerts.rules import load_rules
from ioc.city import load_city
from ioc.detectors import clock
from ioc.detectors.sensor import SensorDetector, identify_rejected, new_sensor_state
from ioc.indices.current import IndexValue
from ioc.models import MODELS
from ioc.models.anomaly import Anomaly
from ioc.models.dead_letter import dead_letter, describe_validation_error
from ioc.settings import Settings
from ioc.windows import Accepted, Late, add_event, new_state
from streams.offsets import Admission, GapFiller, position_key

log = logging.getLogger(__name__)

BATCH_MAX = 1000  # events per batch at most
# Seconds a batch waits to fill, the latency it adds to a live stream (Faust's take waits this long
# even when events are there). At catch-up batches fill to BATCH_MAX long before; live, a short wait
# costs little: a sensor seldom reports twice in it, so longer waits would not save table writes.
BATCH_WITHIN = 0.1

# Table keys changed in a batch: their state, and an event of their partition to write it as.
Touched = dict[str, tuple[Any, EventT]]


def new_sensor() -> dict[str, Any]:
    return {"windows": {}, "detect": new_sensor_state(), "position": None}


def register_pipeline_agent(app: faust.App, settings: Settings, feed: str) -> None:
    model = MODELS[feed]
    units = {m.field: m.unit for m in model.measures}
    specs = settings.windows_of(feed)
    labelled = [(spec.label, spec) for spec in specs]
    city = load_city(settings.city)
    detector = SensorDetector(load_rules(settings.rules), city)
    raw = app.topic(settings.raw_topic(feed), partitions=settings.partitions)
    source = raw.get_topic_name()
    aggregates = {
        spec.label: app.topic(settings.agg_topic(feed, spec.label), partitions=settings.partitions)
        for spec in specs
    }
    anomalies = app.topic(settings.anomalies_topic, partitions=settings.partitions)
    dlq = app.topic(settings.dlq_topic, partitions=settings.partitions)
    sensors = app.Table(f"{feed}-sensors", default=new_sensor, partitions=settings.partitions)
    # Per partition: the newest event time seen there, and its sensors, to find the silent ones.
    clocks = app.Table(f"{feed}-clocks", default=clock.new_clock, partitions=settings.partitions)
    # Per partition: the last offset counted, so no offset goes by uncounted (streams/offsets.py).
    offsets = app.Table(f"{feed}-offsets", partitions=settings.partitions)
    gaps = GapFiller(app, settings.bootstrap_servers, f"{feed} pipeline")

    async def reject(reason: str, detail: str, key: bytes | None, value: bytes) -> Any:
        letter = dead_letter(
            reason=reason,
            detail=detail,
            feed=feed,
            source=source,
            payload=value,
            at=datetime.now(UTC),
            key=key,
        )
        return await dlq.send(key=key, value=letter.to_json())

    @app.agent(raw, name=f"{feed}-pipeline", concurrency=1)
    async def process(stream: faust.StreamT) -> None:
        # noack_take: the events of a batch are acknowledged here, once its state is saved, and not
        # when the generator is closed (as take_events does), so a shutdown mid-batch commits none.
        async for batch in stream.noack_take(BATCH_MAX, within=BATCH_WITHIN):
            try:
                counted = await process_batch(batch)
            except Exception as error:
                # Faust would restart this agent on the same stream, which a take buffer does not survive
                # (later events went by unprocessed). Stop the worker instead, the batch unacknowledged:
                # a restarted worker counts it again from the last commit.
                log.exception("%s pipeline: a batch failed; stopping the worker", feed)
                await app.crash(error)
                return
            for event in counted:  # the batch's, and those read back from Kafka to fill a gap
                await stream.ack(event)

    async def process_batch(batch: list[EventT]) -> list[EventT]:
        """Count the batch's events, and any a gap before them held, in offset order; return them all."""
        counted: list[EventT] = []
        last_offsets: Touched = {}  # position_key → (last offset counted, an event of the partition)
        touched: Touched = {}
        touched_clocks: Touched = {}
        # (window, sensor, window start) → the window: its aggregate is built once, after the batch.
        latest: dict[tuple[str, str, datetime], Accepted] = {}
        indices_at: dict[tuple[str, str, datetime], dict[str, Any]] = {}  # the sensor's indices then
        found: list[Anomaly] = []
        sent: list[Awaitable[Any]] = []  # the batch's outputs: delivered before its state is written

        def state_of(sensor_id: str, event: EventT, touched: Touched = touched) -> dict[str, Any]:
            state = touched[sensor_id][0] if sensor_id in touched else sensors[sensor_id]
            touched[sensor_id] = (state, event)
            return state

        async def count(event: EventT) -> None:
            key, value, message = event.key, event.value, event.message
            try:
                reading = model.model_validate_json(value, context={"city": city})
            except ValidationError as error:
                sent.append(await reject("invalid", describe_validation_error(error), key, value))
                known = identify_rejected(feed, value, city)
                # Only under its own key: a table key's state must come from the key's partition.
                if known is not None and key is not None and key.decode(errors="replace") == known[0]:
                    sensor_id, at = known
                    state = state_of(sensor_id, event)
                    position = [message.partition, message.offset]
                    if not _counted_before(state["position"], position):
                        state["position"] = position
                        found.extend(detector.rejected(state["detect"], feed, sensor_id, at))
                return
            sensor_id = reading.sensor_id
            if key is None or key.decode(errors="replace") != sensor_id:
                detail = f"message key {key!r} is not the sensorId {sensor_id!r}"
                sent.append(await reject("invalid", detail, key, value))
                return

            state = state_of(sensor_id, event)
            position = [message.partition, message.offset]
            if _counted_before(state["position"], position):
                return  # counted before a restart; its offset commit had not happened yet
            state["position"] = position
            event_time, values = reading.event_time, reading.measured_values()
            shortest_late = None
            updated = []
            for label, spec in labelled:
                outcome = add_event(
                    state["windows"].setdefault(label, new_state()),
                    feed=feed,
                    sensor_id=sensor_id,
                    event_time=event_time,
                    values=values,
                    units=units,
                    spec=spec,
                )
                if isinstance(outcome, Late):
                    if spec is specs[0]:
                        shortest_late = outcome
                else:
                    window = (label, sensor_id, outcome.window_start)
                    latest[window] = outcome
                    updated.append(window)
            if shortest_late is not None:
                # Too late for its shortest window: counted where a longer one still took it.
                detail = shortest_late.describe(event_time, specs[0])
                sent.append(await reject("late", detail, key, value))
                return
            found.extend(detector.observe(state["detect"], reading))
            for window in updated:
                indices_at[window] = state["detect"]["indices"]

            partition = f"p{message.partition}"
            if partition in touched_clocks:
                partition_clock = touched_clocks[partition][0]
            else:
                partition_clock = clocks[partition]
            touched_clocks[partition] = (partition_clock, event)
            tick = clock.note(partition_clock, sensor_id, event_time)
            if tick is not None:
                for other in partition_clock["sensors"]:
                    found.extend(detector.tick(state_of(other, event)["detect"], feed, other, tick))

        for arrived in batch:
            key = position_key(arrived.message.tp)
            last = last_offsets[key][0] if key in last_offsets else offsets.get(key)
            verdict, events = await gaps.in_order(arrived, last)  # with those a gap before it held
            for event in events:
                if verdict is not Admission.REPEAT:
                    last_offsets[key] = (event.message.offset, event)
                counted.append(event)
                try:
                    await count(event)
                except Exception:  # a bug: skip the event, as Faust skips one whose agent raised
                    where = event.message
                    log.exception(
                        "%s pipeline: skipped %s[%d]@%d", feed, where.topic, where.partition, where.offset
                    )

        for window, accepted in latest.items():
            aggregate = accepted.aggregate
            if window in indices_at:
                indices = {name: IndexValue(**index) for name, index in indices_at[window].items()}
                aggregate = aggregate.model_copy(update={"indices": indices})
            label, sensor_id, _ = window
            sent.append(await aggregates[label].send(key=sensor_id.encode(), value=aggregate.to_json()))
        for anomaly in found:
            sent.append(await anomalies.send(key=anomaly.entity.encode(), value=anomaly.to_json()))
        # Outputs first: state that says "counted" without them would lose them in a crash.
        await asyncio.gather(*sent)
        for table, changed in ((sensors, touched), (clocks, touched_clocks), (offsets, last_offsets)):
            for table_key, (state, event) in changed.items():
                _save(table, table_key, state, event)
        return counted


def _save(table: faust.Table, key: str, value: Any, event: EventT) -> None:
    """``table[key] = value``, written as ``event`` (an event of the key's partition).

    Faust finds the changelog partition of a table write (and a rocksdb store its database) through
    ``current_event()``, a contextvar set by the task that iterates the stream. Under ``noack_take`` or
    ``take_events`` that is the stream's background drainer task, not the agent's, so in the agent
    ``current_event()`` is None and ``table[key] = value`` raises TypeError ("Cannot modify table key
    from outside of stream iteration"). Even where it is set it names one event of the batch, whose
    partition need not be the key's. So each write is made with the contextvar set to the key's own
    event.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        table[key] = value
    finally:
        _current_event.reset(token)


def _counted_before(last: list[int] | None, position: list[int]) -> bool:
    """A sensor's events all come from one partition, so offsets order them."""
    return last is not None and last[0] == position[0] and last[1] >= position[1]
