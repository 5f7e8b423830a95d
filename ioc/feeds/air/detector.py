"""Air's detector metrics: the hourly VN_AQI (NowCast), QCVN 05 means over N hours, and a field's
hourly means scored by the general detector (``ioc.detectors.general``, its hourly configuration).

Every reading of an air station passes a dozen rules, so the work per reading is kept flat and small:
what the completed hours give (their means, the NowCast's view of them, how high this hour's mean may go
before a QCVN 05 mean could pass its limit) is worked out once per hour and kept in memory beside the
state, and a condition at rest far from its trigger is told so without working out its exact mean. The
exact values — the floats an alert reports — are computed as the first implementation did, to the bit.

State (``state["feed"]``): ``held`` (readings awaiting a spike verdict), ``hours`` (per pollutant
``[newest hour, its sum, its count, [sums before], [counts]]``, ``ioc.detectors.hourly``), ``series``
(rule id → ``[last hour judged, general.new_series()]``; ``baselines`` until sensor state version 2,
``ioc.detectors.sensor.upgrade_sensor_state``).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from ioc.alerts.rules import Rule
from ioc.detectors import general, health, hourly
from ioc.detectors.condition import Condition
from ioc.detectors.feed import FeedDetector, Metric, Metrics, series_params, series_rules
from ioc.feeds.air.model import AirQualityObserved
from ioc.indices.air import PARTICULATES, NowcastHistory, nowcast_with, vn_aqi_hourly_index
from ioc.models import Event

if TYPE_CHECKING:
    from ioc.detectors.sensor import SensorDetector

AQI_POLLUTANTS = ("pm25", "pm10", "no2", "so2", "co", "o3")
AQI_HOURS = 12  # the NowCast looks back 12 hourly means
HOUR = hourly.HOUR
REMEMBERED_SENSORS = 100_000  # sensors whose completed hours' summaries are kept (one per pollutant)


class Detector(FeedDetector):
    def __init__(self, core: SensorDetector, feed: str) -> None:
        super().__init__(core, feed)
        self.zone = core.zone
        air = core.rules_by_feed[feed]
        # Limits on a pollutant's mean over some hours (QCVN 05): a new limit is a YAML edit, not code.
        self._mean_rules = [
            (
                core.conditions[rule.id],
                str(rule.params["pollutant"]),
                int(rule.params["mean_hours"]),
                rule.metric,
                tuple(core.rule_ids_by_metric[rule.metric]),  # every rule judging the metric
            )
            for rule in air
            if "mean_hours" in rule.params
        ]
        # A field's hourly means, scored by the general detector.
        self._series_rules = series_rules(air)
        self._series_params = {rule.id: series_params(rule, HOUR) for rule in self._series_rules}
        self._keep = _hours_kept(self._mean_rules, self._series_rules)
        self._completed: dict[str, dict[str, hourly.Completed]] = {}  # sensor → field → its hours before

    def measure(
        self,
        state: dict[str, Any],
        event: Event,
        at: datetime,
        epoch: float,
        values: dict[str, float],
        metrics: Metrics,
    ) -> None:
        """Hourly means per pollutant over the last day, of the readings device faults spared. The current
        hour's mean so far is the NowCast's c1, so the hourly index moves every minute (what an operator
        watching a pollution episode needs); the QCVN 05 means slide with each reading too."""
        assert isinstance(event, AirQualityObserved)
        feed = state["feed"]
        ring: hourly.Ring = feed.setdefault("hours", {})
        for admitted_epoch, admitted_values in _admitted(state, epoch, values, metrics):
            hourly.add(ring, admitted_epoch, admitted_values, self._keep)
        hours, concentrations = self._hours(event.sensor_id, ring, hourly.hour_of(epoch))
        if (index := vn_aqi_hourly_index(concentrations)) is not None:
            value = float(index[0])
            breached, cleared = self.core.judge("vn_aqi", value)
            metrics["vn_aqi"] = (at, epoch, value, breached, cleared, None, index[1].key, None)
        if feed["held"]:
            return  # a suspect reading: the rules below wait for the verdict (and an hour is judged once
            # none of its readings awaits one)
        # A reading stands for the time since the one before it (an hourly station's for its whole hour).
        share = hourly.into_hour(epoch, health.interval(state["health"]) or float(event.averaging_period))
        self._means(state["conditions"], hours, at, epoch, share, metrics)
        for rule in self._series_rules:
            if (metric := self._unusual(state, rule, at, epoch, ring)) is not None:
                metrics[rule.metric] = metric

    def _means(
        self,
        conditions: dict[str, Any],
        hours: dict[str, tuple[float | None, hourly.Completed]],
        at: datetime,
        epoch: float,
        share: float,
        metrics: Metrics,
    ) -> None:
        """Each limit's N-hour mean of its pollutant. A condition at rest needs only to know the mean is
        not past its trigger: far under it, this hour's mean tells (``hourly.quiet_up_to``, once an hour),
        nearer, bounds on the mean; only near the trigger, or in an episode, is the mean worked out
        exactly (the value an alert reports)."""
        quiet = (at, epoch, None, False, True, None, None, None)
        for number, (condition, pollutant, mean_hours, metric, rule_ids) in enumerate(self._mean_rules):
            if (view := hours.get(pollutant)) is None:
                continue
            current, completed = view
            window, quiet_up_to = completed.derived.get(number) or _mean_plan(
                completed, number, condition, mean_hours
            )
            for rule_id in rule_ids:  # every rule judging this metric
                if type(conditions.get(rule_id)) is list:
                    break  # in an episode
            else:
                if current is not None and share > 0 and current <= quiet_up_to:
                    metrics[metric] = quiet
                    continue
                bounds = hourly.sliding_mean_bounds(current, window, share, mean_hours)
                if bounds is None:
                    continue
                if condition.never_breached(*bounds):
                    metrics[metric] = quiet
                    continue
            mean = hourly.sliding_mean(current, window.between, window.last, share, mean_hours)
            if mean is not None:
                # With too little data the mean's least possible value may prove an exceedance, but cannot
                # end one.
                breached, cleared = condition.judge(mean.value)
                metrics[metric] = (
                    at,
                    epoch,
                    mean.value,
                    breached,
                    cleared and mean.complete,
                    None,
                    None,
                    None,
                )

    def _hours(
        self, sensor_id: str, ring: hourly.Ring, hour: int
    ) -> tuple[dict[str, tuple[float | None, hourly.Completed]], dict[str, float | None]]:
        """Per field of the ring: the mean so far of the reading's hour, and the completed hours before
        it (``hourly.Completed``, kept per sensor and field while the ring's lists are the same: every
        reading of an hour reads the same completed hours); and its hourly concentration for the VN_AQI
        (the NowCast for particulates, this hour's mean for gases)."""
        views = {}
        concentrations = {}
        known = self._completed.get(sensor_id)
        if known is None:
            if len(self._completed) >= REMEMBERED_SENSORS:
                self._completed.clear()
            known = self._completed[sensor_id] = {}
        for field, (newest, total, count, sums, counts) in ring.items():
            if newest == hour:
                current = total / count if count else None
                completed = known.get(field)
                if completed is None or completed.sums is not sums or completed.counts is not counts:
                    completed = known[field] = hourly.Completed.of_ring(sums, counts)
            else:  # none of this hour's readings counted yet (held, stuck), or a late reading
                means = hourly.means(ring, field, hour, self._keep.get(field, hourly.FIRST_FORMAT_HOURS))
                current, completed = means[0], hourly.Completed.of_means(means[1:])
            views[field] = (current, completed)
            concentrations[field] = (
                nowcast_with(current, _nowcast_history(completed)) if field in PARTICULATES else current
            )
        return views, concentrations

    def _unusual(
        self, state: dict[str, Any], rule: Rule, at: datetime, epoch: float, ring: hourly.Ring
    ) -> Metric | None:
        """The rule's field: the general detector's score of its last completed hourly mean (its hourly
        configuration, ``series_params``), which then learns it, so a score never looks ahead. Each
        hour is judged once, at the first reading after it with no suspect held, and only when its
        readings cover 75 % of it (a silent or stuck sensor's hour is not its normal). The score before
        the detector's hold-off after a report: the condition's hysteresis and hold already make one
        alert of an episode, the hold-off would end it early."""
        this_hour = hourly.hour_of(epoch)
        kept = state["feed"].setdefault("series", {})
        series = kept.get(rule.id)
        if series is None:
            series = kept[rule.id] = [None, general.new_series()]
        judged = series[0]
        if judged is not None and this_hour <= judged + HOUR:
            return None  # no hour has ended since the last one judged
        # The rule's knobs, not kept in the state: a rules change applies to a running system.
        params = self._series_params[rule.id]
        log_scale = rule.params.get("scale") == "log"
        done = hourly.completed_hours(ring, str(rule.params["field"]), before=this_hour, after=judged)
        usual = health.interval(state["health"])
        scored = normal = None
        for hour, total, count in done:
            if usual is not None and count * usual >= hourly.COMPLETE * HOUR:
                mean = total / count
                middle = datetime.fromtimestamp(hour + HOUR / 2, self.zone)  # local: its hour of the day
                normal = general.expected(series[1], params, middle)
                value = math.log1p(mean) if log_scale else mean
                scored = general.score_with(series[1], params, value, middle, damped=False)
        if done:
            series[0] = done[-1][0]
        if scored is None:
            return None
        if normal is not None and log_scale:
            normal = math.expm1(normal)
        breached, cleared = self.core.conditions[rule.id].judge(scored)
        return (at, epoch, scored, breached, cleared, normal, None, None)

    def index(self, state: dict[str, Any], event: Event, metrics: Metrics) -> dict[str, Any] | None:
        if (found := metrics.get("vn_aqi")) is not None and found[2] is not None:
            return {"value": found[2], "band": found[6]}
        return None


def _mean_plan(
    completed: hourly.Completed, number: int, condition: Condition, hours: int
) -> tuple[hourly.Window, float]:
    """What the ``number``-th mean rule reads of the completed hours, and up to which mean of this hour it
    is surely quiet (``hourly.quiet_up_to`` for a limit above; none: any mean; a limit below: none),
    worked out once per hour."""
    window = completed.window(hours)
    if condition.above is None:
        quiet_up_to = math.inf
    elif condition.above:
        quiet_up_to = hourly.quiet_up_to(window, hours, cast(float, condition.limit))
    else:
        quiet_up_to = -math.inf
    plan = completed.derived[number] = (window, quiet_up_to)
    return plan


def _nowcast_history(completed: hourly.Completed) -> NowcastHistory:
    """The NowCast's view of the completed hours, worked out once per hour."""
    history = completed.derived.get("nowcast")
    if history is None:
        history = completed.derived["nowcast"] = NowcastHistory.of(completed.means)
    return cast(NowcastHistory, history)


def _admitted(
    state: dict[str, Any], epoch: float, values: dict[str, float], metrics: Metrics
) -> list[list[Any]]:
    """The readings the hourly means may take now. A suspect reading (far from the sensor's normal)
    waits for the verdict: a spike is dropped, a real change goes in with the reading that proved it;
    the repeats of a stuck sensor are not measurements. So device faults poison neither the VN_AQI,
    the QCVN means nor a statistical rule's series."""
    feed = state["feed"]
    held: list[list[Any]] = feed.setdefault("held", [])
    if state["health"]["pending"]:
        held.append([epoch, values])
        return []
    spike = metrics.get("spike_ratio")
    admitted = [] if spike is not None and spike[2] else held  # a value: the held ones were a spike
    feed["held"] = []
    stuck = metrics["identical_minutes"][2]
    return admitted if stuck else [*admitted, [epoch, values]]


def _hours_kept(mean_rules: list[tuple[Any, ...]], series_rules: list[Rule]) -> dict[str, int]:
    """Hours of hourly sums each pollutant keeps: this one for its VN_AQI, 12 for a particulate's
    NowCast, N + 1 for an N-hour mean (a window that slides within the hour still covers part of the
    hour N back), and a statistical rule's field as many as any, so an hour that ends in a silence is
    still there to judge when the sensor comes back."""
    keep = {pollutant: AQI_HOURS if pollutant in PARTICULATES else 1 for pollutant in AQI_POLLUTANTS}
    for _, pollutant, hours, *_ in mean_rules:
        if pollutant in keep:
            keep[pollutant] = max(keep[pollutant], hours + 1)
    longest = max(keep.values())
    for rule in series_rules:
        if (field := str(rule.params["field"])) in keep:
            keep[field] = longest
    return keep
