"""Per-sensor event-time windows: raw events in, window aggregates out, late and invalid ones to the DLQ."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import faust
from pydantic import ValidationError

from ioc.city import load_city
from ioc.models import MODELS
from ioc.models.dead_letter import dead_letter, describe_validation_error
from ioc.settings import Settings
from ioc.windows import Late, add_event, new_state

log = logging.getLogger(__name__)


def register_window_agent(app: faust.App, settings: Settings, feed: str) -> None:
    model = MODELS[feed]
    units = {m.field: m.unit for m in model.measures}
    spec = settings.window
    city = load_city(settings.city)
    raw = app.topic(settings.raw_topic(feed), partitions=settings.partitions)
    aggregates = app.topic(settings.agg_topic(feed), partitions=settings.partitions)
    dlq = app.topic(settings.dlq_topic, partitions=settings.partitions)
    # Per sensor: open windows, watermark, and the last source offset counted (for restarts).
    windows = app.Table(
        f"{feed}-windows-{spec.label}",
        default=new_state,
        partitions=settings.partitions,
    )

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

    @app.agent(raw, name=f"{feed}-windows", concurrency=1)
    async def aggregate(stream: faust.StreamT) -> None:
        async for event in stream.events():
            key, value, message = event.key, event.value, event.message
            try:
                reading = model.model_validate_json(value, context={"city": city})
            except ValidationError as error:
                await reject("invalid", describe_validation_error(error), key, value)
                continue
            sensor_id = reading.sensor_id
            if key is None or key.decode(errors="replace") != sensor_id:
                await reject("invalid", f"message key {key!r} is not the sensorId {sensor_id!r}", key, value)
                continue

            state = windows[sensor_id]
            position = [message.partition, message.offset]
            if _counted_before(state.get("position"), position):
                continue  # counted before a restart; its offset commit had not happened yet
            outcome = add_event(
                state,
                feed=feed,
                sensor_id=sensor_id,
                event_time=reading.event_time,
                values=reading.measured_values(),
                units=units,
                spec=spec,
            )
            state["position"] = position
            windows[sensor_id] = state
            if isinstance(outcome, Late):
                await reject("late", outcome.describe(reading.event_time, spec), key, value)
                continue
            await aggregates.send(key=key, value=outcome.aggregate.to_json())


def _counted_before(last: list[int] | None, position: list[int]) -> bool:
    """A sensor's events all come from one partition, so offsets order them."""
    return last is not None and last[0] == position[0] and last[1] >= position[1]
