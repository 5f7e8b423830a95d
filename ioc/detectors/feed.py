"""A feed's own detector metrics: the detector stage's plug-in point (``ioc.feeds.Feed.detector``).

``SensorDetector`` (``ioc.detectors.sensor``) keeps what every feed shares — the rules' conditions, the
health measures, silence, evaluation, the state — and asks the sensor's feed, through its
``FeedDetector``, for the metrics that feed alone has and for its index. The base class is a feed whose
sensors report on a rhythm and that has no metric of its own: only the health measures, and silence.
"""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ioc.alerts.rules import Rule
from ioc.detectors import general
from ioc.detectors.condition import Condition
from ioc.models import Event
from ioc.models.anomaly import RuleKind

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


# What a statistical rule's ``params`` say of its series rather than of the detector (transit's
# ``min_normal_taps``: the riders added to a bin and its normal), and of where the rule applies
# (``SensorDetector.rule_applies``).
SERIES_KEYS = ("field", "kind", "scale", "water_classes", "min_normal_taps")


def series_rules(rules: list[Rule]) -> list[Rule]:
    """A feed's statistical rules that score a field of its readings with the general detector."""
    return [rule for rule in rules if rule.kind == RuleKind.statistical and "field" in rule.params]


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


RESUME_AFTER = 3  # reporting intervals without a reading scored: a gap, after which a series resumes


def scorable(state: dict[str, Any], metrics: Metrics) -> bool:
    """Whether a reading may teach a statistical rule's series: not a suspect (a spike must not), nor a
    stuck sensor's repeat (not a measurement)."""
    return not state["health"]["pending"] and not metrics["identical_minutes"][2]


def score_reading(
    kept: dict[str, Any],
    key: str,
    params: general.GeneralParams,
    condition: Condition,
    at: datetime,
    value: float,
    interval_seconds: float,
    zone: Any,
) -> Metric | None:
    """One reading of a statistical rule's field (log scale), scored by the general detector from its
    series' past only, then learned; its series is ``kept[key]``: [epoch of the last reading scored,
    ``general.new_series()``]. None for a late reading: a series is judged in time order. After a gap
    of ``RESUME_AFTER`` intervals the last-points view restarts at this reading. A rule of one
    direction reports nothing while the value is on the other side of its normal: the variance view
    watches both ways, and would report a sudden rise (a probe cleaned of its fouling) as a drop. The
    score before the detector's hold-off after a report: the condition's hysteresis and hold make one
    alert of an episode, and must see it go on. The baseline is the normal for the reading's hour."""
    epoch = at.timestamp()
    if (entry := kept.get(key)) is None:
        entry = kept[key] = [epoch, general.new_series()]
    elif epoch <= entry[0]:
        return None
    last, series = entry
    entry[0] = epoch
    logged = math.log1p(value)
    if epoch - last > RESUME_AFTER * interval_seconds:
        general.resume(series, logged)
    moment = at.astimezone(zone)
    normal = general.expected(series, params, moment)
    scored = general.score_with(series, params, logged, moment, damped=False)
    if params.direction and normal is not None and (logged - normal) * params.direction <= 0:
        scored = 0.0
    breached, cleared = condition.judge(scored)
    usual = math.expm1(normal) if normal is not None else None
    return (at, epoch, scored, breached, cleared, usual, None, None)
