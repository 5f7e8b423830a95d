"""The neighbourhood agent of a feed, keyed by sensor id: each sensor judged beside its registry
neighbours (``ioc.detectors.neighbourhood``), its anomalies to the alert manager.

Wiring only. Its input, ``<prefix>.<feed>.neighbours``, holds the deviations the feed's reading path
publishes, each keyed by a sensor that counts its sender as a neighbour (and by the sender itself), so
a sensor's whole neighbourhood meets on one partition, with one state. The stage judges in event time
and ignores what it has seen (a batch a crashed pipeline published twice), so its anomalies are the same
whatever the order the pipelines' partitions came in (within two days of event time of each other),
and the same offline (``ioc.step.OfflineRun``).
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types import EventT

from ioc.alerts.rules import load_rules
from ioc.city import load_city
from ioc.detectors.neighbourhood import Deviation, Neighbourhood, new_state
from ioc.settings import Settings
from streams.checkpointing import Admission, Batch, Checkpointer, refuse
from streams.pipeline import BATCH_WITHIN

BATCH_MAX = 2000


def register_neighbourhood(app: faust.App, settings: Settings, feed: str) -> None:
    stage = Neighbourhood(feed, load_rules(settings.rules), load_city(settings.city))
    inputs = app.topic(settings.neighbours_topic(feed), partitions=settings.partitions)
    outputs = [
        app.topic(t, partitions=settings.partitions) for t in (settings.anomalies_topic, settings.dlq_topic)
    ]
    sensors = app.Table(f"{feed}-neighbourhoods", default=new_state, partitions=settings.partitions)
    checkpoints = Checkpointer(app, f"{feed}-neighbourhood", settings.bootstrap_servers, settings.partitions)

    @app.agent(inputs, name=f"{feed}-neighbourhood", concurrency=1)
    async def judge(stream: faust.StreamT) -> None:
        await checkpoints.run(stream, handle, batch_max=BATCH_MAX, within=BATCH_WITHIN, outputs=outputs)

    async def handle(events: list[tuple[EventT, Admission]], batch: Batch) -> None:
        states: dict[str, tuple[dict[str, Any], int]] = {}
        for event, _ in events:
            sensor_id = event.key.decode() if event.key else ""
            try:
                record = Deviation.from_json(event.value)
            except ValueError as error:
                refuse(batch, settings.dlq_topic, event, "neighbours", error)
                continue
            if sensor_id not in states:
                states[sensor_id] = (sensors[sensor_id], event.message.partition)
            for anomaly in stage.receive(states[sensor_id][0], sensor_id, record):
                batch.send(settings.anomalies_topic, anomaly.entity.encode(), anomaly.to_json())
        for sensor_id, (state, partition) in states.items():
            batch.write(sensors, sensor_id, state, partition)
