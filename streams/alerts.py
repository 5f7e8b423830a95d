"""The alert manager agent, keyed by entity: anomalies, operators' commands and silences in, alert events
out; and the incidents agent, keyed by district, grouping those alert events.

Wiring only; the lifecycle, inhibition, silences and grouping are ``ioc.alerts``. The manager's input
topics are co-partitioned: anomalies and commands are keyed by entity, so one entity's meet on one
partition, with one state; every silence is written to every partition (``EventProducer.broadcast``), so
each partition keeps a book of them (``ioc.alerts.silence``). Alert events go out twice: keyed by alert id
(``ioc.alerts``, the contract) and keyed by district, for the incidents agent. A record either agent
cannot read is a dead letter (reason ``invalid``, its topic's kind for the feed), not a failed batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import faust
from faust.types import EventT

from ioc.alerts import incidents, manager, silence
from ioc.alerts.rules import load_rules
from ioc.city import load_city
from ioc.models.alert import AlertCommand, AlertEvent
from ioc.models.anomaly import Anomaly
from ioc.settings import Settings
from streams.checkpointing import Admission, Batch, Checkpointer, refuse
from streams.pipeline import BATCH_WITHIN

BATCH_MAX = 500

log = logging.getLogger(__name__)


def register_alert_manager(app: faust.App, settings: Settings) -> None:
    rules = load_rules(settings.rules)
    city = load_city(settings.city)
    inputs = app.topic(
        settings.anomalies_topic,
        settings.alert_commands_topic,
        settings.silences_topic,
        partitions=settings.partitions,
    )
    outputs = [
        app.topic(t, partitions=settings.partitions)
        for t in (settings.alerts_topic, settings.alerts_by_district_topic, settings.dlq_topic)
    ]
    kinds = {  # what each input topic holds
        settings.anomalies_topic: "anomalies",
        settings.alert_commands_topic: "alert-commands",
        settings.silences_topic: "silences",
    }
    entities = app.Table("alert-entities", default=manager.new_state, partitions=settings.partitions)
    books = app.Table("alert-silences", default=silence.new_book, partitions=settings.partitions)
    checkpoints = Checkpointer(app, "alert-manager", settings.bootstrap_servers, settings.partitions)

    @app.agent(inputs, name="alert-manager", concurrency=1)
    async def manage(stream: faust.StreamT) -> None:
        await checkpoints.run(stream, handle, batch_max=BATCH_MAX, within=BATCH_WITHIN, outputs=outputs)

    async def handle(events: list[tuple[EventT, Admission]], batch: Batch) -> None:
        states: dict[str, dict[str, Any]] = {}  # entity → its state, read once per batch
        partition_of: dict[str, int] = {}
        book_of: dict[int, dict[str, Any]] = {}

        def state_of(entity: str, partition: int) -> dict[str, Any]:
            if entity not in states:
                states[entity] = entities[entity]
                partition_of[entity] = partition
            return states[entity]

        def rejudge(book: dict[str, Any], at: datetime, partition: int) -> list[AlertEvent]:
            """Every unresolved alert of the partition against the silences active at ``at``."""
            active = silence.silences_in(book)
            changes: list[AlertEvent] = []
            for entity in list(book["unresolved"]):
                changes += manager.apply_silences(state_of(entity, partition), active, at)
            return changes

        for event, _ in events:
            partition = event.message.partition
            if partition not in book_of:
                book_of[partition] = books[f"p{partition}"]  # the book of this partition
            book = book_of[partition]
            topic = event.message.topic
            try:
                record = READERS[kinds[topic]](event.value)
            except ValueError as error:
                refuse(batch, settings.dlq_topic, event, kinds[topic], error)
                continue
            if isinstance(record, silence.Silence):
                silence.keep(book, record)
                moment = silence.clock_of(book)
                changes = rejudge(book, moment, partition) if moment is not None else []
            else:
                key = event.key.decode() if event.key else ""
                state = state_of(key, partition)
                active = silence.silences_in(book)
                if isinstance(record, AlertCommand):
                    result = manager.apply_command(state, record, active)
                    if not result.ok:
                        log.warning("alert command refused: %s", result.error)
                    changes = result.events
                else:
                    changes = manager.apply_anomaly(state, record, rules, city, active)
                    # Only detectors' event time moves the book's clock: an operator's wall-clock time
                    # would jump a replay of last July to today.
                    if silence.advance(book, record.observed_at):  # a silence started or ended meanwhile
                        changes += rejudge(book, record.observed_at, partition)
                silence.mark(book, key, manager.has_unresolved(state))
            for change in changes:
                value = change.to_json()
                batch.send(settings.alerts_topic, change.key.encode(), value)
                batch.send(settings.alerts_by_district_topic, change.alert.district.encode(), value)
        for entity, state in states.items():
            batch.write(entities, entity, state, partition_of[entity])
        for partition, book in book_of.items():
            batch.write(books, f"p{partition}", book, partition)


def register_incidents(app: faust.App, settings: Settings) -> None:
    rules = load_rules(settings.rules)
    city = load_city(settings.city)
    alert_events = app.topic(settings.alerts_by_district_topic, partitions=settings.partitions)
    incident_events = app.topic(settings.incidents_topic, partitions=settings.partitions)
    dead_letters = app.topic(settings.dlq_topic, partitions=settings.partitions)
    districts = app.Table("incident-districts", default=incidents.new_state, partitions=settings.partitions)
    checkpoints = Checkpointer(app, "incidents", settings.bootstrap_servers, settings.partitions)

    @app.agent(alert_events, name="incidents", concurrency=1)
    async def group(stream: faust.StreamT) -> None:
        await checkpoints.run(
            stream,
            handle,
            batch_max=BATCH_MAX,
            within=BATCH_WITHIN,
            outputs=[incident_events, dead_letters],
        )

    async def handle(events: list[tuple[EventT, Admission]], batch: Batch) -> None:
        states: dict[str, tuple[dict[str, Any], int]] = {}
        for event, _ in events:
            district = event.key.decode() if event.key else ""
            if district not in states:
                states[district] = (districts[district], event.message.partition)
            state = states[district][0]
            try:
                alert_event = AlertEvent.model_validate_json(event.value)
            except ValueError as error:
                refuse(batch, settings.dlq_topic, event, "alerts", error)
                continue
            for change in incidents.apply_alert_event(state, alert_event, rules, city):
                batch.send(settings.incidents_topic, change.key.encode(), change.to_json())
        for district, (state, partition) in states.items():
            batch.write(districts, district, state, partition)


# What each input topic of the manager holds, by kind.
READERS: dict[str, Callable[[bytes], Anomaly | AlertCommand | silence.Silence]] = {
    "anomalies": Anomaly.model_validate_json,
    "alert-commands": AlertCommand.model_validate_json,
    "silences": silence.Silence.model_validate_json,
}
