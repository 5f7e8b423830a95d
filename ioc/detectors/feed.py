"""A feed's own detector metrics: the detector stage's plug-in point (``ioc.feeds.Feed.detector``).

``SensorDetector`` (``ioc.detectors.sensor``) keeps what every feed shares — the rules' conditions, the
health measures, silence, evaluation, the state — and asks the sensor's feed, through its
``FeedDetector``, for the metrics that feed alone has and for its index. The base class is a feed whose
sensors report on a rhythm and that has no metric of its own: only the health measures, and silence.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ioc.alerts.rules import Rule
from ioc.detectors import general
from ioc.models import Event

if TYPE_CHECKING:
    from ioc.detectors.sensor import SensorDetector

# A rule's metric at one event time, as the conditions take it: (reported time, or None for the epoch
# in UTC; epoch; value; breached; cleared; baseline; band; began, epoch or None). A tuple: every
# reading makes one per rule.
Metric = tuple[datetime | None, float, float | None, bool, bool, float | None, str | None, float | None]
Metrics = dict[str, Metric]


class FeedDetector:
    """One feed's metrics, for every sensor of the feed; its state is the sensor's ``state["feed"]``."""

    def __init__(self, core: SensorDetector, feed: str) -> None:
        self.core = core  # the rules' judges (``judge``, ``is_firing``), the registry, the time zone
        self.feed = feed

    def observe(self, state: dict[str, Any], event: Event, at: datetime, epoch: float) -> Metrics:
        """The metrics of a valid reading: the health measures, then the feed's own (``measure``)."""
        values = event.measured_values()
        metrics = self.core.health_metrics(state, self.feed, epoch, values)
        self.measure(state, event, at, epoch, values, metrics)
        return metrics

    def measure(
        self,
        state: dict[str, Any],
        event: Event,
        at: datetime,
        epoch: float,
        values: dict[str, float],
        metrics: Metrics,
    ) -> None:
        """Add the feed's own metrics of this reading to ``metrics`` (none here)."""

    def tick(self, state: dict[str, Any], sensor_id: str, now: datetime, epoch: float) -> Metrics:
        """The metrics when event time moved on without this sensor: how long it has been silent."""
        return self.core.silence_metrics(state, now, epoch)

    def index(self, state: dict[str, Any], event: Event, metrics: Metrics) -> dict[str, Any] | None:
        """The feed's index after this reading, ``{"value": …, "band": …}``; None: the one before stays."""
        return None


# What a statistical rule's ``params`` say of its series rather than of the detector.
SERIES_KEYS = ("field", "kind", "scale")


def series_params(rule: Rule, cadence_seconds: float) -> general.GeneralParams:
    """A statistical rule's detector: the general detector at the cadence of the series it scores
    (``general.params_for_metric``) with the direction of its kind of metric (``kind``, else its
    ``field``), and any of the detector's parameters the rule sets, in points of its series."""
    if rule.params.get("scale", "log") != "log":
        raise ValueError(f"rule {rule.id}: scale is log or not given (the field as it comes)")
    # A rules file's numbers may come as floats: a count stays a count.
    counts = {name for name, value in asdict(general.GeneralParams()).items() if type(value) is int}
    knobs = {
        name: int(value) if name in counts and float(value).is_integer() else value
        for name, value in rule.params.items()
        if name not in SERIES_KEYS
    }
    kind = str(rule.params["kind"] if "kind" in rule.params else rule.params["field"])
    params = general.params_for_metric(kind, cadence_seconds=cadence_seconds)
    try:
        return replace(params, **knobs)
    except TypeError:
        raise ValueError(f"rule {rule.id}: unknown detector parameters in {sorted(knobs)}") from None
