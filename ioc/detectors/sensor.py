"""Every rule for one sensor, reading by reading: the detector stage of the pipeline.

``SensorDetector`` turns a sensor's readings into rule metrics — the health measures every feed shares,
and the metrics of the sensor's feed, which its package computes (``ioc.detectors.feed.FeedDetector``,
named by the feed's registry entry: the hourly VN_AQI and QCVN 05 means of air, VN_WQI of water, speed
against a detector's normal, taps against a station's normal …) — feeds them to each rule's condition
(``ioc.detectors.condition``) and returns the anomalies to report. Three entry points, all pure over
one JSON-able state per sensor:

- ``observe`` — a valid reading;
- ``rejected`` — a reading the edge or the agent refused as invalid (out of physical range);
- ``tick`` — event time moved on (other sensors reported) without this one: silence, gates offline.

Online, a Faust agent keyed by sensor id calls them; offline, ``ioc backtest`` and the tests do.

The state (``new_sensor_state``, version ``STATE_VERSION``) is kept in a table changelog as JSON and
goes through every reading, so it is small and bounded::

    {"v": 3,
     "health": ioc.detectors.health.new_health(),
     "conditions": {rule id: last judged | [last judged, since, clear since, peak, reported, severity]},
     "feed": {…: what the feed's detector keeps (its module's docstring says)},
     "indices": {name: {"value": …, "band": …}},
     "shared": epoch of the last deviation published to its neighbours (``share``), if any}

A state written by an earlier version is upgraded when the detector first meets it
(``upgrade_sensor_state``), so a worker upgraded in place carries on from its table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ioc.alerts.rules import Rule, RuleSet
from ioc.city import City
from ioc.detectors import baseline, general, health, hourly
from ioc.detectors.condition import Condition, Subject, firing, upgrade_conditions
from ioc.detectors.feed import FeedDetector, Metrics
from ioc.detectors.neighbourhood import SILENT_AFTER, Deviation, Neighbourhood
from ioc.feeds import REGISTRY
from ioc.models import Event
from ioc.models.anomaly import Anomaly
from ioc.models.time_range import out_of_range

# 2: air's statistical rules keep general-detector series, not baselines; 3: so does traffic's, not the
# median of its last speeds
STATE_VERSION = 3
HEALTH_METRICS = frozenset({"silent_intervals", "rejected_readings", "identical_minutes", "spike_ratio"})
# The first state format kept a transit station's normal by slot names, one per quarter of a day.
FIRST_FORMAT_QUARTERS = 24 * 4


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def new_sensor_state() -> dict[str, Any]:
    return {"v": STATE_VERSION, "health": health.new_health(), "conditions": {}, "feed": {}}


@dataclass(frozen=True)
class _Sensor:
    """What the detector needs of a sensor, looked up once: the registry and the rules are fixed."""

    subject: Subject
    # metric → (number in the rules file, rule id, condition) of the rules that judge it and apply here
    conditions: dict[str, tuple[tuple[int, str, Condition], ...]]


class SensorDetector:
    def __init__(self, rules: RuleSet, city: City) -> None:
        self.rules = rules
        self.city = city
        self.zone = ZoneInfo(city.timezone)
        self.rules_by_feed = {feed: rules.for_feed(feed) for feed in REGISTRY}
        self.conditions = {rule.id: Condition(rule, rules) for rule in rules.rules}
        self.rule_by_metric: dict[str, Rule] = {}
        for rule in rules.rules:  # the first rule of a metric, as the rules file lists them
            self.rule_by_metric.setdefault(rule.metric, rule)
        # A metric is judged breached or cleared by the first rule of it (as ``_reading`` always did).
        self._judge_by_metric = {
            metric: self.conditions[rule.id] for metric, rule in self.rule_by_metric.items()
        }
        self.metrics_by_feed = {
            feed: {rule.metric for rule in rules} for feed, rules in self.rules_by_feed.items()
        }
        self.rule_ids_by_metric: dict[str, list[str]] = {}
        for rule in rules.rules:
            self.rule_ids_by_metric.setdefault(rule.metric, []).append(rule.id)
        spike_rule = self.rule_by_metric.get("spike_ratio")
        self._spike = (
            (spike_rule.trigger.limit, float(spike_rule.params.get("back", 2)))
            if spike_rule is not None and spike_rule.trigger is not None
            else None
        )
        # Only the feeds the spike rule judges hold a sudden jump back for its verdict: to the others (a
        # crowd's surge) a jump is news, not a suspect reading.
        self._spike_feeds = frozenset(
            feed for feed in REGISTRY if spike_rule is not None and _for_feed(spike_rule, feed)
        )
        # The health readings of every reading: constant values, judged once.
        self._quiet = {metric: self.judge(metric, 0.0) for metric in HEALTH_METRICS}
        # feed → sensor → _Sensor
        self._sensors: dict[str, dict[str, _Sensor]] = {feed: {} for feed in REGISTRY}
        # The rules that judge a sensor beside its registry neighbours (``ioc.detectors.neighbourhood``):
        # the deviations they read are published by the reading path, taken from ``outbox``.
        self.neighbourhoods = {feed: Neighbourhood(feed, rules, city) for feed in REGISTRY}
        self.outbox: list[Deviation] = []
        # Each feed's own metrics, by its package's detector.
        self._feeds: dict[str, FeedDetector] = {name: feed.detect(self) for name, feed in REGISTRY.items()}
        self._index_names = {name: feed.index.name for name, feed in REGISTRY.items()}

    # --- entry points ------------------------------------------------------------------------------

    def observe(self, state: dict[str, Any], event: Event) -> list[Anomaly]:
        if state.get("v") != STATE_VERSION:
            upgrade_sensor_state(state)
        feed = event.feed
        at = event.event_time
        epoch = at.timestamp()
        detector = self._feeds[feed]
        metrics = detector.observe(state, event, at, epoch)
        state["indices"] = self._current_indices(state, event, metrics, detector)
        if state["health"]["pending"]:
            # A reading that jumped far from the sensor's normal is suspect until the next readings
            # say spike (a device fault) or a real change; the other rules wait for that verdict.
            metrics = {m: r for m, r in metrics.items() if m in HEALTH_METRICS}
        return self._evaluate(state, feed, event.sensor_id, metrics)

    def rejected(self, state: dict[str, Any], feed: str, sensor_id: str, at: datetime) -> list[Anomaly]:
        upgrade_sensor_state(state)
        epoch = at.timestamp()
        # The sensor is alive, only wrong: it is not silent.
        health.note_reading(state["health"], epoch)
        breached, cleared = self.judge("rejected_readings", 1)
        return self._evaluate(
            state, feed, sensor_id, {"rejected_readings": (at, epoch, 1, breached, cleared, None, None, None)}
        )

    def tick(self, state: dict[str, Any], feed: str, sensor_id: str, now: datetime) -> list[Anomaly]:
        upgrade_sensor_state(state)
        epoch = now.timestamp()
        shared = state.get("shared")
        if shared is not None and epoch - shared > SILENT_AFTER:
            # No reading scored lately: its neighbours must not wait for it (``ioc.detectors.neighbourhood``).
            self.share(state, sensor_id, epoch - SILENT_AFTER, None)
        metrics = self._feeds[feed].tick(state, sensor_id, now, epoch)
        return self._evaluate(state, feed, sensor_id, metrics) if metrics else []

    def share(self, state: dict[str, Any], sensor_id: str, epoch: float, deviation: float | None) -> None:
        """Publish a reading's deviation from its normal to the sensor's neighbours (``outbox``), each
        later than the last (``state["shared"]``: a late reading after a "no news" is not news)."""
        shared = state.get("shared")
        if shared is not None and epoch <= shared:
            return
        state["shared"] = epoch
        self.outbox.append(Deviation(sensor_id, epoch, deviation))

    # --- what every feed shares ---------------------------------------------------------------------

    def silence_metrics(self, state: dict[str, Any], now: datetime, epoch: float) -> Metrics:
        """How many reporting intervals the sensor has been silent, once it is overdue."""
        metrics: Metrics = {}
        sick = state["health"]
        silent = health.silent_intervals(sick, epoch)
        if silent is not None:
            breached, cleared = self.judge("silent_intervals", silent)
            began = sick["seen"] + health.interval(sick)  # when it should have reported
            metrics["silent_intervals"] = (now, epoch, silent, breached, cleared, None, None, began)
        return metrics

    def health_metrics(
        self, state: dict[str, Any], feed: str, epoch: float, values: dict[str, float]
    ) -> Metrics:
        """The health measures of a reading of ``feed``: silence ended, rejected, stuck, spike."""
        sick = state["health"]
        health.note_reading(sick, epoch)
        quiet = self._quiet
        stuck = health.stuck_minutes(sick, epoch, values)
        silent_breached, silent_cleared = quiet["silent_intervals"]
        rejected_breached, rejected_cleared = quiet["rejected_readings"]
        stuck_breached, stuck_cleared = (
            self.judge("identical_minutes", stuck) if stuck else quiet["identical_minutes"]
        )
        metrics: Metrics = {
            "silent_intervals": (None, epoch, 0.0, silent_breached, silent_cleared, None, None, None),
            "rejected_readings": (None, epoch, 0.0, rejected_breached, rejected_cleared, None, None, None),
            "identical_minutes": (None, epoch, stuck, stuck_breached, stuck_cleared, None, None, None),
        }
        if self._spike is not None and feed in self._spike_feeds:
            factor, back = self._spike
            found = health.spike(sick, epoch, values, factor=factor, back=back)
            if found is not None:
                breached, cleared = self.judge("spike_ratio", found.ratio)
                metrics["spike_ratio"] = (
                    None,
                    epoch,
                    found.ratio,
                    breached,
                    cleared,
                    None,
                    None,
                    found.began,
                )
            else:
                breached, cleared = quiet["spike_ratio"]
                metrics["spike_ratio"] = (None, epoch, 0.0, breached, cleared, None, None, None)
        return metrics

    def _current_indices(
        self, state: dict[str, Any], event: Event, metrics: Metrics, detector: FeedDetector
    ) -> dict[str, dict[str, Any]]:
        """The sensor's official index after this reading (``ioc.indices.current``), as the picture shows
        it; the one before stays when this reading gives none (an air station's first minutes). A new
        dict each reading: the pipeline keeps the one of each window's latest reading."""
        indices: dict[str, dict[str, Any]] = dict(state.get("indices") or {})
        if (found := detector.index(state, event, metrics)) is not None:
            indices[self._index_names[event.feed]] = found
        return indices

    # --- evaluation --------------------------------------------------------------------------------

    def _evaluate(self, state: dict[str, Any], feed: str, sensor_id: str, metrics: Metrics) -> list[Anomaly]:
        """Each metric to the conditions of the rules that judge it and apply to the sensor; the
        anomalies in the rules file's order."""
        sensor = self._sensor(feed, sensor_id)
        conditions = state["conditions"]
        found: list[tuple[int, Anomaly]] = []
        for metric_name, metric in metrics.items():
            for number, rule_id, condition in sensor.conditions.get(metric_name, ()):
                if not metric[3]:  # not breached, the common case, inline: a condition at rest stays at rest
                    last = conditions.get(rule_id)
                    if type(last) is not list:
                        if last is None or metric[1] >= last:
                            conditions[rule_id] = metric[1]
                        continue
                if (anomaly := condition.advance(conditions, sensor.subject, *metric)) is not None:
                    found.append((number, anomaly))
        if len(found) > 1:
            found.sort(key=lambda numbered: numbered[0])
        return [anomaly for _, anomaly in found]

    def _sensor(self, feed: str, sensor_id: str) -> _Sensor:
        known = self._sensors[feed].get(sensor_id)
        if known is None:  # the rules and the registry are fixed: ask once
            sensor = self.city.sensor(sensor_id)
            conditions: dict[str, list[tuple[int, str, Condition]]] = {}
            for number, rule in enumerate(self.rules_by_feed[feed]):
                if self.rule_applies(rule, feed, sensor_id):
                    conditions.setdefault(rule.metric, []).append((number, rule.id, self.conditions[rule.id]))
            known = self._sensors[feed][sensor_id] = _Sensor(
                subject=Subject(feed=feed, entity=sensor_id, district=sensor.district if sensor else ""),
                conditions={metric: tuple(judging) for metric, judging in conditions.items()},
            )
        return known

    def rule_applies(self, rule: Rule, feed: str, sensor_id: str) -> bool:
        """Whether ``rule`` judges this sensor of ``feed``: its feed's, and of a water class it names."""
        if not _for_feed(rule, feed):
            return False
        classes = rule.params.get("water_classes")
        if isinstance(classes, str):
            sensor = self.city.sensor(sensor_id)
            return sensor is not None and sensor.water_class in classes.split(",")
        return True

    def is_firing(self, state: dict[str, Any], metric: str) -> bool:
        """Whether the first rule of ``metric`` fires for this sensor."""
        rule = self.rule_by_metric.get(metric)
        return rule is not None and firing(state["conditions"], rule.id)

    def judge(self, metric: str, value: float | None) -> tuple[bool, bool]:
        """(breached, cleared) of a metric's value by the first rule of the metric; none: (False, True)."""
        condition = self._judge_by_metric.get(metric)
        return condition.judge(value) if condition is not None else (False, True)


def _for_feed(rule: Rule, feed: str) -> bool:
    """Whether a rule judges the feed's sensors (a health rule's ``feeds``, when it names them)."""
    feeds = rule.params.get("feeds")
    return not isinstance(feeds, str) or feed in feeds.split(",")


# --- state versions ---------------------------------------------------------------------------------


def upgrade_sensor_state(state: dict[str, Any]) -> dict[str, Any]:
    """The state in this version's format, in place (the same dict, which the caller's table value holds)
    and returned. Reads the first format (no ``v``: what ``ioc`` wrote before state versions); a state
    of this version is returned as it is, a later one refused."""
    version = state.get("v")
    if version == STATE_VERSION:
        return state
    if version not in (None, 1, 2):  # None: the first format, which had no version field
        raise ValueError(f"sensor state version {version!r}: this detector reads up to {STATE_VERSION}")
    upgraded = _from_first_format(state) if version is None else dict(state)
    upgraded["feed"] = _without_speed_normal(_series_from_baselines(upgraded["feed"]))
    upgraded["v"] = STATE_VERSION
    state.clear()
    state.update(upgraded)
    return state


def _series_from_baselines(feed: dict[str, Any]) -> dict[str, Any]:
    """Version 1 → 2: air's statistical rules are scored by the general detector, whose calibration (the
    largest surprise each view has produced) a seasonal baseline does not hold. So each rule's series
    starts afresh (a day's start-up of hourly means before it scores again); the last hour judged is
    kept, so no hour is judged twice."""
    if "baselines" not in feed:
        return feed
    feed = dict(feed)
    baselines = feed.pop("baselines")
    feed["series"] = {rule_id: [judged, general.new_series()] for rule_id, (judged, _) in baselines.items()}
    return feed


def _without_speed_normal(feed: dict[str, Any]) -> dict[str, Any]:
    """Version 2 → 3: traffic's statistical rule is scored by the general detector, which a median of
    recent speeds cannot start: its series starts afresh at the next reading (its jump view scores after
    an hour, the others after a day)."""
    if "normal_speed" not in feed:
        return feed
    return {name: value for name, value in feed.items() if name != "normal_speed"}


def _from_first_format(old: dict[str, Any]) -> dict[str, Any]:
    """Version 0: health with long names, conditions as dicts, air's hourly sums keyed by the hour as a
    string, baselines with their parameters, a station's normal keyed by slot names ("wd071")."""
    state = new_sensor_state()
    if "health" in old:
        state["health"] = health.upgrade_health(old["health"])
    state["conditions"] = upgrade_conditions(old.get("conditions", {}))
    feed = dict(old.get("feed", {}))
    if "hours" in feed:
        feed["hours"] = hourly.upgrade_ring(feed["hours"])
    if "baselines" in feed:
        feed["baselines"] = {
            rule_id: [series["judged"], baseline.model_of(series["model"])]
            for rule_id, series in feed["baselines"].items()
        }
    if "normal" in feed:
        normals: list[float | None] = [None] * (2 * FIRST_FORMAT_QUARTERS)
        for name, normal in feed["normal"].items():  # "wd071": weekday, 07:00, its second quarter
            day = FIRST_FORMAT_QUARTERS if name.startswith("we") else 0
            normals[day + int(name[2:4]) * 4 + int(name[4])] = normal
        feed["normal"] = normals
    state["feed"] = feed
    if "indices" in old:
        state["indices"] = old["indices"]
    return state


def identify_rejected(feed: str, value: bytes, city: City) -> tuple[str, datetime] | None:
    """The registered sensor and event time of a reading that failed validation, when they can be read:
    a sensor that sends out-of-range values is sick, and ``health.out_of_range`` should say so."""
    try:
        document = json.loads(value)
        sensor_id, observed = document["sensorId"], datetime.fromisoformat(document["dateObserved"])
    except (ValueError, KeyError, TypeError):
        return None
    sensor = city.sensor(sensor_id) if isinstance(sensor_id, str) else None
    if sensor is None or sensor.kind != feed or observed.tzinfo is None:
        return None
    if out_of_range(observed) is not None:  # its health state would convert it, and overflow
        return None
    return sensor_id, observed
