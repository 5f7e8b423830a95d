"""The detection pipeline in one process: validate, detect per sensor, tick silent sensors, manage alerts.

The same pure steps as the stream agents, in the order the events are given (a recording's order).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ioc.alerts.rules import RuleSet
from ioc.city import City
from ioc.detectors import clock
from ioc.detectors.sensor import SensorDetector, identify_rejected, new_sensor_state
from ioc.models import MODELS
from ioc.models.anomaly import Anomaly


@dataclass
class Outcome:
    events: int = 0
    rejected: int = 0
    anomalies: list[Anomaly] = field(default_factory=list)


def detect(events: Iterable[tuple[str, bytes]], rules: RuleSet, city: City) -> Outcome:
    """Run the detectors over ``(feed, event JSON)`` pairs; return every anomaly they report."""
    detector = SensorDetector(rules, city)
    states: dict[tuple[str, str], dict[str, Any]] = {}
    clocks = {feed: clock.new_clock() for feed in MODELS}
    outcome = Outcome()
    for feed, value in events:
        outcome.events += 1
        try:
            event = MODELS[feed].model_validate_json(value, context={"city": city})
        except ValidationError:
            outcome.rejected += 1
            if (found := identify_rejected(feed, value, city)) is not None:
                sensor_id, at = found
                state = states.setdefault((feed, sensor_id), new_sensor_state())
                outcome.anomalies += detector.rejected(state, feed, sensor_id, at)
            continue
        sensor_id = event.sensor_id
        state = states.setdefault((feed, sensor_id), new_sensor_state())
        outcome.anomalies += detector.observe(state, event)
        tick = clock.note(clocks[feed], sensor_id, event.event_time)
        if tick is not None:
            for other in clocks[feed]["sensors"]:
                outcome.anomalies += detector.tick(states[(feed, other)], feed, other, tick)
    return outcome
