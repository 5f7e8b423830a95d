"""One agent per feed, keyed by sensor id: the feed's reading path (``ioc.step.FeedStep``) over batches.

Wiring only. Per batch (``streams.checkpointing``): the step counts the events in offset order against
the sensors' and partitions' state from the tables; its dead letters, window aggregates (each window
once, at its latest) and anomalies go to Kafka; once Kafka has them, the aggregates go to the Redis live
picture (``ioc picture rebuild`` writes the same from the topics); then the state the batch changed is
written back and the events acknowledged.

Restarts: the sensor's state records the last (partition, offset) counted, so an event read again after
a crash whose offset commit had not happened is a no-op: a crash may repeat a batch's outputs but loses
none, and counts no event twice in a window (a sensor's windows and position are one table value).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import faust
import redis.exceptions

from connectors.sinks.redis_metrics import RedisMetrics
from connectors.sinks.redis_picture import RedisPicture, connect
from ioc.alerts.rules import load_rules
from ioc.city import load_city
from ioc.detectors import clock
from ioc.feeds import REGISTRY
from ioc.settings import Settings
from ioc.step import FeedStep, SourceRecord, WindowKey, clock_key, new_sensor, upgrade_sensor
from ioc.windows import PublishedWindow
from streams.checkpointing import Admission, Batch, Checkpointer

log = logging.getLogger(__name__)

# Events per batch at most. At catch-up a batch holds minutes of each sensor: the more it holds, the
# fewer times each sensor's state, its longer windows and its picture entry are written for it
# (4,000 against 1,000: a quarter of the state and picture writes). Live, batches are far smaller.
BATCH_MAX = 4000
# Seconds a batch waits to fill, the latency it adds to a live stream (Faust's take waits this long
# even when events are there). At catch-up batches fill to BATCH_MAX long before; live, a short wait
# costs little: a sensor seldom reports twice in it, so longer waits would not save table writes.
BATCH_WITHIN = 0.1
# The same for the picture agent, the last on an alert's way to an operator's screen: each wait adds to
# an alert's latency in full, and its writes are compare-and-set, so the more batches the better. Not
# for the alert manager and incidents: a crash between a batch's outputs acknowledged and its table writes
# in their changelog publishes those outputs again after the restart, and five times the batches made that
# five times as likely (the fault suite's worker kill found an alert event published twice at 0.02 s).
PICTURE_WITHIN = 0.02


def register_pipeline_agent(app: faust.App, settings: Settings, feed: str) -> None:
    raw = app.topic(settings.raw_topic(feed), partitions=settings.partitions)
    source = raw.get_topic_name()
    specs = settings.windows_of(feed)
    step = FeedStep.of(
        feed,
        specs,
        load_rules(settings.rules),
        load_city(settings.city),
        source,
        settings.future_tolerance_seconds,
    )
    outputs = {spec.label: settings.agg_topic(feed, spec.label) for spec in specs}
    declared = [app.topic(name, partitions=settings.partitions) for name in outputs.values()]
    declared += [
        app.topic(t, partitions=settings.partitions) for t in (settings.anomalies_topic, settings.dlq_topic)
    ]
    neighbours = settings.neighbours_topic(feed)
    if REGISTRY[feed].neighbourhood:
        declared.append(app.topic(neighbours, partitions=settings.partitions))
    sensors = app.Table(f"{feed}-sensors", default=new_sensor, partitions=settings.partitions)
    # Per partition: the newest event time seen there, and its sensors, to find the silent ones.
    clocks = app.Table(f"{feed}-clocks", default=clock.new_clock, partitions=settings.partitions)
    checkpoints = Checkpointer(app, f"{feed}-pipeline", settings.bootstrap_servers, settings.partitions)
    picture: list[tuple[RedisPicture, RedisMetrics]] = []  # connected in the agent's own event loop

    @app.agent(raw, name=f"{feed}-pipeline", concurrency=1)
    async def process(stream: faust.StreamT) -> None:
        redis = connect(settings)
        picture.append((RedisPicture(settings, redis), RedisMetrics(settings, redis)))
        await checkpoints.run(stream, handle, batch_max=BATCH_MAX, within=BATCH_WITHIN, outputs=declared)

    async def handle(events: list[tuple[Any, Admission]], batch: Batch) -> None:
        seen: dict[str, dict[str, Any]] = {}
        seen_clocks: dict[int, dict[str, Any]] = {}

        def sensor(sensor_id: str) -> dict[str, Any]:
            if sensor_id not in seen:
                seen[sensor_id] = upgrade_sensor(sensors[sensor_id])
            return seen[sensor_id]

        def partition_clock(partition: int) -> dict[str, Any]:
            if partition not in seen_clocks:
                seen_clocks[partition] = clocks[clock_key(partition)]
            return seen_clocks[partition]

        records = [
            SourceRecord(
                e.key, e.value, e.message.partition, e.message.offset, round(e.message.timestamp * 1000)
            )
            for e, _ in events
        ]
        result = step.run(records, sensor, partition_clock)
        if result.repeats:
            log.info("%s pipeline: %d repeated readings not counted again", feed, result.repeats)

        for letter in result.dead_letters:
            batch.send(settings.dlq_topic, letter.key.encode() if letter.key else None, letter.to_json())
        for (label, sensor_id, _), window in result.aggregates.items():
            batch.send(outputs[label], sensor_id.encode(), window.json)
        for anomaly in result.anomalies:
            batch.send(settings.anomalies_topic, anomaly.entity.encode(), anomaly.to_json())
        for receiver, deviation in result.neighbours:
            batch.send(neighbours, receiver.encode(), deviation.to_json())
        if result.aggregates:
            batch.after_outputs(lambda: to_picture(newest_windows(result.aggregates)))
        for sensor_id, partition in result.sensors.items():
            batch.write(sensors, sensor_id, seen[sensor_id], partition)
        for partition in result.clocks:
            batch.write(clocks, clock_key(partition), seen_clocks[partition], partition)

    async def to_picture(windows: list[PublishedWindow]) -> None:
        """The batch's windows into the live picture. Best effort: they are safe in Kafka, and a Redis
        outage must not stop the detectors; ``ioc picture rebuild`` puts back what it missed."""
        writer, metrics = picture[0]
        try:
            stored = await writer.write_aggregates(windows)
            # Event time → visible in the picture, for each window this batch stored.
            fresh = [window for window, kept in zip(windows, stored, strict=True) if kept]
            await metrics.observe_latency(fresh, datetime.now(UTC))
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
            log.warning(
                "%s pipeline: %d windows not in the live picture (Redis: %s)", feed, len(windows), error
            )


def newest_windows(aggregates: dict[WindowKey, PublishedWindow]) -> list[PublishedWindow]:
    """Of each sensor's windows of one length, the newest: all the live picture keeps (at catch-up a
    batch holds several minutes of a sensor; its older windows are in Kafka, for history)."""
    newest: dict[tuple[str, str], tuple[int, PublishedWindow]] = {}
    for (label, sensor_id, start), window in aggregates.items():
        kept = newest.get((label, sensor_id))
        if kept is None or start > kept[0]:
            newest[(label, sensor_id)] = (start, window)
    return [window for _, window in newest.values()]
