"""The alert manager agent, keyed by entity: anomalies, operators' commands and silences in, alert events
out; and the incidents agent, keyed by district, grouping those alert events.

Wiring only; the lifecycle, inhibition, silences and grouping are ``ioc.alerts``. The manager's input
topics are co-partitioned: anomalies and commands are keyed by entity, so one entity's meet on one
partition, with one state; every silence is written to every partition (``EventProducer.broadcast``), so
each partition keeps a book of them (``ioc.alerts.silence``). Alert events go out twice: keyed by alert id
(``ioc.alerts``, the contract) and keyed by district, for the incidents agent.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import faust

from ioc.alerts import incidents, manager, silence
from ioc.alerts.rules import load_rules
from ioc.city import load_city
from ioc.models.alert import AlertCommand, AlertEvent
from ioc.models.anomaly import Anomaly
from ioc.settings import Settings
from streams.offsets import Admission, GapFiller, position_key

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
    alerts = app.topic(settings.alerts_topic, partitions=settings.partitions)
    by_district = app.topic(settings.alerts_by_district_topic, partitions=settings.partitions)
    entities = app.Table("alert-entities", default=manager.new_state, partitions=settings.partitions)
    books = app.Table("alert-silences", default=silence.new_book, partitions=settings.partitions)
    # Per partition: the last offset handled, so no offset goes by unhandled (streams/offsets.py).
    offsets = app.Table("alert-offsets", partitions=settings.partitions)
    gaps = GapFiller(app, settings.bootstrap_servers, "alert manager")

    async def publish(changes: list[AlertEvent]) -> None:
        for change in changes:
            value = change.to_json()
            await alerts.send(key=change.key.encode(), value=value)
            await by_district.send(key=change.alert.district.encode(), value=value)

    def rejudge(book: dict[str, Any], at: datetime) -> list[AlertEvent]:
        """Every unresolved alert of the partition against the silences active at ``at``."""
        active = silence.silences_in(book)
        changes: list[AlertEvent] = []
        for entity in list(book["unresolved"]):
            state = entities[entity]
            changes += manager.apply_silences(state, active, at)
            entities[entity] = state
        return changes

    @app.agent(inputs, name="alert-manager", concurrency=1)
    async def manage(stream: faust.StreamT) -> None:
        # Acknowledged here, each event once handled: those read back to fill a gap too.
        async for arrived in stream.noack().events():
            position = position_key(arrived.message.tp)
            verdict, events = await gaps.in_order(arrived, offsets.get(position))
            for event in events:
                await handle(event)
                if verdict is not Admission.REPEAT:
                    offsets[position] = event.message.offset
                await stream.ack(event)

    async def handle(event: faust.types.EventT) -> None:
        topic = event.message.topic
        partition = f"p{event.message.partition}"  # the book of this partition (its changelog partition)
        book = books[partition]
        if topic == settings.silences_topic:
            silence.keep(book, silence.Silence.model_validate_json(event.value))
            clock = silence.clock_of(book)
            changes = rejudge(book, clock) if clock is not None else []
            books[partition] = book
            await publish(changes)
            return

        key = event.key.decode() if event.key else ""
        state = entities[key]
        active = silence.silences_in(book)
        if topic == settings.alert_commands_topic:
            command = AlertCommand.model_validate_json(event.value)
            result = manager.apply_command(state, command, active)
            if not result.ok:
                log.warning("alert command refused: %s", result.error)
            changes = result.events
        else:
            anomaly = Anomaly.model_validate_json(event.value)
            changes = manager.apply_anomaly(state, anomaly, rules, city, active)
            # Only detectors' event time moves the book's clock: an operator's wall-clock time
            # would jump a replay of last July to today.
            if silence.advance(book, anomaly.observed_at):  # a silence started or ended meanwhile
                changes += rejudge(book, anomaly.observed_at)
        entities[key] = state
        silence.mark(book, key, manager.has_unresolved(state))
        books[partition] = book
        await publish(changes)


def register_incidents(app: faust.App, settings: Settings) -> None:
    rules = load_rules(settings.rules)
    city = load_city(settings.city)
    alert_events = app.topic(settings.alerts_by_district_topic, partitions=settings.partitions)
    incident_events = app.topic(settings.incidents_topic, partitions=settings.partitions)
    districts = app.Table("incident-districts", default=incidents.new_state, partitions=settings.partitions)

    @app.agent(alert_events, name="incidents", concurrency=1)
    async def group(stream: faust.StreamT) -> None:
        async for event in stream.events():
            district = event.key.decode() if event.key else ""
            state = districts[district]
            alert_event = AlertEvent.model_validate_json(event.value)
            changes = incidents.apply_alert_event(state, alert_event, rules, city)
            districts[district] = state
            for change in changes:
                await incident_events.send(key=change.key.encode(), value=change.to_json())
