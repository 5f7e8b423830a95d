"""Crowd's detector metrics: the zone's occupancy share (people as % of its safe capacity) and how fast
it rose (a surge); a counter that falls silent is the core's ``silent_intervals``.

State (``state["feed"]``): ``recent``, ``[[epoch, share], …]`` of the readings within the surge window.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from ioc.detectors.feed import FeedDetector, Metrics
from ioc.feeds.crowd.index import band_of, occupancy_share, safe_capacity
from ioc.feeds.crowd.model import CrowdFlowObserved
from ioc.models import Event

if TYPE_CHECKING:
    from ioc.detectors.sensor import SensorDetector

SURGE_MINUTES = 15.0  # a surge is a rise within this long, unless the rule says otherwise


class Detector(FeedDetector):
    def __init__(self, core: SensorDetector, feed: str) -> None:
        super().__init__(core, feed)
        surge = core.rule_by_metric.get("surge_share")
        minutes = float(surge.params.get("minutes", SURGE_MINUTES)) if surge is not None else SURGE_MINUTES
        self._surge_seconds = 60 * minutes

    def measure(
        self,
        state: dict[str, Any],
        event: Event,
        at: datetime,
        epoch: float,
        values: dict[str, float],
        metrics: Metrics,
    ) -> None:
        """The share now, and its rise over the lowest share of the surge window before it."""
        assert isinstance(event, CrowdFlowObserved)
        capacity = safe_capacity(self.core.city.sensor(event.sensor_id))
        if capacity is None or event.people_count is None:
            return
        share = occupancy_share(event.people_count, capacity)
        breached, cleared = self.core.judge("occupancy_share", share)
        metrics["occupancy_share"] = (at, epoch, share, breached, cleared, capacity, band_of(share), None)
        recent: list[list[float]] = state["feed"].setdefault("recent", [])
        recent[:] = [kept for kept in recent if epoch - self._surge_seconds <= kept[0] < epoch]
        if recent:
            lowest = min(kept[1] for kept in recent)
            rise = share - lowest
            breached, cleared = self.core.judge("surge_share", rise)
            metrics["surge_share"] = (at, epoch, rise, breached, cleared, lowest, None, None)
        recent.append([epoch, share])

    def index(self, state: dict[str, Any], event: Event, metrics: Metrics) -> dict[str, Any] | None:
        if (found := metrics.get("occupancy_share")) is not None and found[2] is not None:
            return {"value": round(found[2], 1), "band": found[6]}
        return None
