"""One agent per feed, keyed by sensor id: validate → event-time windows → detectors → anomalies.

Wiring only; the arithmetic is ``ioc.windows`` and ``ioc.detectors.sensor``. One event at a time: its
sensor's state (and, on a clock tick, the states of its partition's silent sensors) is written back to
the table before the event is acknowledged. (Batching with ``take_events`` stalled after the first
batch here; it is the obvious next step for throughput, see docs/benchmarks.md.)

Restarts: the table records, per sensor, the last (partition, offset) counted; an event at or before
it was counted before a crash whose offset commit had not happened yet, and is skipped.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import EventT
from pydantic import ValidationError

from ioc.alerts.rules import load_rules
from ioc.city import load_city
from ioc.detectors import clock
from ioc.detectors.sensor import SensorDetector, identify_rejected, new_sensor_state
from ioc.models import MODELS
from ioc.models.dead_letter import dead_letter, describe_validation_error
from ioc.settings import Settings
from ioc.windows import Late, add_event, new_state

log = logging.getLogger(__name__)

# Table keys changed in a batch: their state, and an event of their partition to write it as.
Touched = dict[str, tuple[dict[str, Any], EventT]]


def new_sensor() -> dict[str, Any]:
    return {"windows": {}, "detect": new_sensor_state(), "position": None}


def register_pipeline_agent(app: faust.App, settings: Settings, feed: str) -> None:
    model = MODELS[feed]
    units = {m.field: m.unit for m in model.measures}
    specs = settings.windows_of(feed)
    city = load_city(settings.city)
    detector = SensorDetector(load_rules(settings.rules), city)
    raw = app.topic(settings.raw_topic(feed), partitions=settings.partitions)
    aggregates = {
        spec.label: app.topic(settings.agg_topic(feed, spec.label), partitions=settings.partitions)
        for spec in specs
    }
    anomalies = app.topic(settings.anomalies_topic, partitions=settings.partitions)
    dlq = app.topic(settings.dlq_topic, partitions=settings.partitions)
    sensors = app.Table(f"{feed}-sensors", default=new_sensor, partitions=settings.partitions)
    # Per partition: the newest event time seen there, and its sensors, to find the silent ones.
    clocks = app.Table(f"{feed}-clocks", default=clock.new_clock, partitions=settings.partitions)

    async def reject(reason: str, detail: str, key: bytes | None, value: bytes) -> None:
        letter = dead_letter(
            reason=reason,
            detail=detail,
            feed=feed,
            source=raw.get_topic_name(),
            payload=value,
            at=datetime.now(UTC),
            key=key,
        )
        await dlq.send(key=key, value=letter.to_json())

    @app.agent(raw, name=f"{feed}-pipeline", concurrency=1)
    async def process(stream: faust.StreamT) -> None:
        async for single in stream.events():
            batch = [single]
            touched: Touched = {}
            touched_clocks: Touched = {}
            latest: dict[tuple[str, str], bytes] = {}  # (window, sensor) → aggregate JSON
            found = []

            def state_of(sensor_id: str, event: EventT, touched: Touched = touched) -> dict[str, Any]:
                state = touched[sensor_id][0] if sensor_id in touched else sensors[sensor_id]
                touched[sensor_id] = (state, event)
                return state

            for event in batch:
                key, value, message = event.key, event.value, event.message
                try:
                    reading = model.model_validate_json(value, context={"city": city})
                except ValidationError as error:
                    await reject("invalid", describe_validation_error(error), key, value)
                    if (known := identify_rejected(feed, value, city)) is not None:
                        sensor_id, at = known
                        found += detector.rejected(state_of(sensor_id, event)["detect"], feed, sensor_id, at)
                    continue
                sensor_id = reading.sensor_id
                if key is None or key.decode(errors="replace") != sensor_id:
                    detail = f"message key {key!r} is not the sensorId {sensor_id!r}"
                    await reject("invalid", detail, key, value)
                    continue

                state = state_of(sensor_id, event)
                position = [message.partition, message.offset]
                if _counted_before(state["position"], position):
                    continue  # counted before a restart; its offset commit had not happened yet
                state["position"] = position
                late = None
                for spec in specs:
                    windows = state["windows"].setdefault(spec.label, new_state())
                    outcome = add_event(
                        windows,
                        feed=feed,
                        sensor_id=sensor_id,
                        event_time=reading.event_time,
                        values=reading.measured_values(),
                        units=units,
                        spec=spec,
                    )
                    if isinstance(outcome, Late):
                        late = late or outcome
                    else:
                        latest[(spec.label, sensor_id)] = outcome.aggregate.to_json()
                if late is not None and (specs[0].label, sensor_id) not in latest:
                    # Too late for its shortest window: counted where a longer one still took it.
                    await reject("late", late.describe(reading.event_time, specs[0]), key, value)
                    continue
                found += detector.observe(state["detect"], reading)

                partition = f"p{message.partition}"
                if partition in touched_clocks:
                    partition_clock = touched_clocks[partition][0]
                else:
                    partition_clock = clocks[partition]
                touched_clocks[partition] = (partition_clock, event)
                tick = clock.note(partition_clock, sensor_id, reading.event_time)
                if tick is not None:
                    for other in partition_clock["sensors"]:
                        found += detector.tick(state_of(other, event)["detect"], feed, other, tick)

            for (label, sensor_id), aggregate in latest.items():
                await aggregates[label].send(key=sensor_id.encode(), value=aggregate)
            for anomaly in found:
                await anomalies.send(key=anomaly.entity.encode(), value=anomaly.to_json())
            # The changelog partition is the current event's: every key touched here is of its partition.
            for table, changed in ((sensors, touched), (clocks, touched_clocks)):
                for table_key, (state, _) in changed.items():
                    table[table_key] = state


def _counted_before(last: list[int] | None, position: list[int]) -> bool:
    """A sensor's events all come from one partition, so offsets order them."""
    return last is not None and last[0] == position[0] and last[1] >= position[1]
