"""Traffic's detector metrics: a detector's speed against its normal, and its level of service."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from ioc.detectors import health
from ioc.detectors.feed import FeedDetector, Metrics
from ioc.feeds.traffic.model import TrafficFlowObserved
from ioc.indices.traffic import level_of_service
from ioc.models import Event

if TYPE_CHECKING:
    pass

NORMAL_HISTORY = 12  # a detector's normal speed: the median of its last readings outside incidents


class Detector(FeedDetector):
    def measure(
        self,
        state: dict[str, Any],
        event: Event,
        at: datetime,
        epoch: float,
        values: dict[str, float],
        metrics: Metrics,
    ) -> None:
        """Speed against the detector's normal: the median of its recent readings, frozen while an
        incident is open so the incident does not become the normal."""
        speed = event.average_vehicle_speed
        if speed is None:
            return
        normal: list[float] = state["feed"].setdefault("normal_speed", [])
        incident = self.core.is_firing(state, "speed_ratio")
        breached = False
        if len(normal) >= health.MIN_HISTORY:
            usual = health.median(normal)
            if usual > 0:
                ratio = speed / usual
                breached, cleared = self.core.judge("speed_ratio", ratio)
                metrics["speed_ratio"] = (
                    event.event_time,
                    epoch,
                    ratio,
                    breached,
                    cleared,
                    usual,
                    None,
                    None,
                )
        if not incident and not breached:
            normal.append(speed)
            del normal[:-NORMAL_HISTORY]

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
