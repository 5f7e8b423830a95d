"""Traffic's detector metrics: a detector's speed scored by the general detector, and its level of service.

State (``state["feed"]``): ``series`` (rule id, or rule id and lane, → ``[epoch of the last reading
scored, general.new_series()]``): what the general detector has learned of the detector's speed — its
slow and fast levels, its usual one-step change and its own history of each hour of the week.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ioc.detectors import general
from ioc.detectors.feed import FeedDetector, Metrics, scorable, score_reading, series_params, series_rules
from ioc.feeds.traffic.model import TrafficFlowObserved
from ioc.indices.traffic import level_of_service
from ioc.models import Event

# A speed over this many times the road's free-flow speed is a device's artefact, not a traffic state:
# not learned, or the way back from it would look like a sudden slow-down (the health rule's spike
# judge misses it on a road at its rush hour, whose recent speeds are far under its long-run level).
IMPLAUSIBLE = 2.0

if TYPE_CHECKING:
    from ioc.detectors.sensor import SensorDetector


class Detector(FeedDetector):
    def __init__(self, core: SensorDetector, feed: str) -> None:
        super().__init__(core, feed)
        self.zone = core.zone
        # A field of every reading, scored by the general detector (traffic.incident: the speed).
        self._series_rules = series_rules(core.rules_by_feed[feed])
        self._params: dict[tuple[str, int], general.GeneralParams] = {}  # (rule id, cadence) → params
        # The rules whose deviations the neighbourhood stage reads (traffic.area_slowdown's: the speed's).
        self._shared = core.neighbourhoods[feed].shared_rules

    def measure(
        self,
        state: dict[str, Any],
        event: Event,
        at: datetime,
        epoch: float,
        values: dict[str, float],
        metrics: Metrics,
    ) -> None:
        """Each statistical rule's field, scored by the general detector at the detector's counting
        interval, from its past only, then learned: a drop no rush hour of its own has shown (the hour-of-
        day view: the detector's own history of that hour), a break far beyond its usual one-step change
        (the jump view, which scores from its first hour), a level or a variance it has not taken lately.
        The score before the detector's hold-off after a report: the condition's hysteresis and hold make
        one alert of an episode, and must see it go on."""
        assert isinstance(event, TrafficFlowObserved)
        if not scorable(state, metrics):
            return
        kept = state["feed"].setdefault("series", {})
        sensor = self.core.city.sensor(event.sensor_id)
        free_flow = sensor.free_flow_speed if sensor else None
        for rule in self._series_rules:
            field = str(rule.params["field"])
            value = values.get(field)
            if value is None:
                continue
            if field == "average_vehicle_speed" and free_flow and value > IMPLAUSIBLE * free_flow:
                continue
            key = rule.id if event.lane_id is None else f"{rule.id}/{event.lane_id}"
            params = self._params_of(rule.id, event.interval_seconds)
            condition = self.core.conditions[rule.id]
            # The deviation its neighbours read is from the hour of the week's normal only: against the
            # slow level of a first week, every rush hour would be an area-wide slow-down.
            hour = None
            if rule.id in self._shared and event.lane_id is None and (entry := kept.get(key)) is not None:
                hour = general.hour_normal(entry[1], params, at.astimezone(self.zone))
            found = score_reading(kept, key, params, condition, at, value, event.interval_seconds, self.zone)
            if found is not None:
                metrics[rule.metric] = found
                if hour is not None:
                    self.core.share(state, event.sensor_id, epoch, math.log1p(value) - hour)

    def _params_of(self, rule_id: str, cadence_seconds: int) -> general.GeneralParams:
        """The rule's detector at this counting interval (durations kept in time, ``general.for_cadence``),
        worked out once per interval: detectors count over 1, 5 or 15 minutes."""
        found = self._params.get((rule_id, cadence_seconds))
        if found is None:
            found = series_params(self.core.rules.get(rule_id), cadence_seconds)
            self._params[(rule_id, cadence_seconds)] = found
        return found

    def index(self, state: dict[str, Any], event: Event, metrics: Metrics) -> dict[str, Any] | None:
        """Speed as % of the detector's free-flow speed, with its level of service A–F."""
        assert isinstance(event, TrafficFlowObserved)
        speed = event.average_vehicle_speed
        if speed is None:
            return None
        sensor = self.core.city.sensor(event.sensor_id)
        free_flow = sensor.free_flow_speed if sensor else None
        if not free_flow:
            return None
        return {"value": round(100 * speed / free_flow, 1), "band": level_of_service(speed, free_flow)}
