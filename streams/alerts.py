"""The alert manager agent, keyed by entity: anomalies and operators' commands in, alert events out.

Wiring only; the lifecycle, inhibition and texts are ``ioc.alerts.manager``. Both input topics are
keyed by entity, so one entity's anomalies and commands meet on one partition, with one state.
"""

from __future__ import annotations

import logging

import faust

from ioc.alerts import manager
from ioc.alerts.rules import load_rules
from ioc.city import load_city
from ioc.models.alert import AlertCommand, AlertEvent
from ioc.models.anomaly import Anomaly
from ioc.settings import Settings

log = logging.getLogger(__name__)


def register_alert_manager(app: faust.App, settings: Settings) -> None:
    rules = load_rules(settings.rules)
    city = load_city(settings.city)
    inputs = app.topic(
        settings.anomalies_topic, settings.alert_commands_topic, partitions=settings.partitions
    )
    alerts = app.topic(settings.alerts_topic, partitions=settings.partitions)
    entities = app.Table("alert-entities", default=manager.new_state, partitions=settings.partitions)

    @app.agent(inputs, name="alert-manager", concurrency=1)
    async def manage(stream: faust.StreamT) -> None:
        async for event in stream.events():
            key = event.key.decode() if event.key else ""
            state = entities[key]
            if event.message.topic == settings.alert_commands_topic:
                result = manager.apply_command(state, AlertCommand.model_validate_json(event.value))
                if not result.ok:
                    log.warning("alert command refused: %s", result.error)
                changes: list[AlertEvent] = result.events
            else:
                changes = manager.apply_anomaly(state, Anomaly.model_validate_json(event.value), rules, city)
            entities[key] = state
            for change in changes:
                await alerts.send(key=change.key.encode(), value=change.to_json())
