"""Every rule for one sensor, reading by reading: the detector stage of the pipeline.

``SensorDetector`` turns a sensor's readings into rule metrics (the hourly VN_AQI, QCVN 05 means, an
hourly mean against its seasonal baseline, dissolved oxygen, VN_WQI, speed against the detector's
normal, taps against the station's normal, health measures), feeds them to each rule's condition
(``ioc.detectors.condition``) and returns the anomalies to report. Three entry points, all pure over
one JSON-able state per sensor:

- ``observe`` — a valid reading;
- ``rejected`` — a reading the edge or the agent refused as invalid (out of physical range);
- ``tick`` — event time moved on (other sensors reported) without this one: silence, gates offline.

Online, a Faust agent keyed by sensor id calls them; offline, ``ioc backtest`` and the tests do.

The state (``new_sensor_state``, version ``STATE_VERSION``) is kept in a table changelog as JSON and
goes through every reading, so it is small and bounded::

    {"v": 1,
     "health": ioc.detectors.health.new_health(),
     "conditions": {rule id: last judged | [last judged, since, clear since, peak, reported, severity]},
     "feed": air:     {"held": [[epoch, values], …] (readings awaiting a spike verdict),
                       "hours": {pollutant: [newest hour, its sum, its count, [sums before], [counts]]}
                                (ioc.detectors.hourly),
                       "baselines": {rule id: [last hour judged, baseline.new_model()]}}
             traffic: {"normal_speed": [the last speeds outside incidents]}
             transit: {"bin": [start, taps], "last_tap": epoch,
                       "normal": [taps per quarter of the day, weekdays then weekends; null unseen]}
             water:   {},
     "indices": {name: {"value": …, "band": …}}}

A state written by an earlier version is upgraded when the detector first meets it
(``upgrade_sensor_state``), so a worker upgraded in place carries on from its table.

Every reading of an air station passes a dozen rules, so the work per reading is kept flat and small:
what the completed hours give (their means, the NowCast's view of them, how high this hour's mean may go
before a QCVN 05 mean could pass its limit) is worked out once per hour and kept in memory beside the
state, and a condition at rest far from its trigger is told so without working out its exact mean. The
exact values — the floats an alert reports — are computed as the first implementation did, to the bit.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from ioc.alerts.rules import Rule, RuleSet
from ioc.city import City
from ioc.detectors import baseline, health, hourly
from ioc.detectors.condition import Condition, Subject, firing, upgrade_conditions
from ioc.indices import current
from ioc.indices.air import PARTICULATES, NowcastHistory, nowcast_with, vn_aqi_hourly_index
from ioc.indices.traffic import level_of_service
from ioc.indices.water import WQI_VARIANTS, WqiVariant, vn_wqi
from ioc.models import AirQualityObserved, Event, FareTap, TrafficFlowObserved, WaterQualityObserved
from ioc.models.anomaly import Anomaly, RuleKind
from ioc.models.time_range import out_of_range

STATE_VERSION = 1
FEEDS = ("air", "water", "traffic", "transit")
HEALTH_METRICS = frozenset({"silent_intervals", "rejected_readings", "identical_minutes", "spike_ratio"})
AQI_POLLUTANTS = ("pm25", "pm10", "no2", "so2", "co", "o3")
AQI_HOURS = 12  # the NowCast looks back 12 hourly means
HOUR = hourly.HOUR
BIN = 15 * 60  # transit ridership bins
QUARTERS = 24 * 4  # bins in a day: a station's normal has one per quarter, for weekdays and weekends
NORMAL_HISTORY = 12  # a traffic detector's normal speed: the median of its last readings outside incidents
FALLBACK_BINS = 4  # a first day borrows the normal of the hour before
BIN_ALPHA = 0.3  # weight of the newest bin in a station's normal for its time of the week
REMEMBERED_BINS = 100_000  # local time of so many bins kept (about 3 years)
REMEMBERED_SENSORS = 100_000  # sensors whose completed hours' summaries are kept (one per pollutant)

# A rule's metric at one event time, as the conditions take it: (reported time, or None for the epoch
# in UTC; epoch; value; breached; cleared; baseline; band; began, epoch or None). A tuple: every
# reading makes one per rule.
Metric = tuple[datetime | None, float, float | None, bool, bool, float | None, str | None, float | None]
Metrics = dict[str, Metric]


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
    free_flow_speed: float | None
    lines: tuple[str, ...]


class SensorDetector:
    def __init__(self, rules: RuleSet, city: City) -> None:
        self.rules = rules
        self.city = city
        self.zone = ZoneInfo(city.timezone)
        self._rules_by_feed = {feed: rules.for_feed(feed) for feed in FEEDS}
        self._conditions = {rule.id: Condition(rule, rules) for rule in rules.rules}
        self._rule_by_metric: dict[str, Rule] = {}
        for rule in rules.rules:  # the first rule of a metric, as the rules file lists them
            self._rule_by_metric.setdefault(rule.metric, rule)
        # A metric is judged breached or cleared by the first rule of it (as ``_reading`` always did).
        self._judge_by_metric = {
            metric: self._conditions[rule.id] for metric, rule in self._rule_by_metric.items()
        }
        self._metrics_by_feed = {
            feed: {rule.metric for rule in rules} for feed, rules in self._rules_by_feed.items()
        }
        self._rule_ids_by_metric: dict[str, list[str]] = {}
        for rule in rules.rules:
            self._rule_ids_by_metric.setdefault(rule.metric, []).append(rule.id)
        air = self._rules_by_feed["air"]
        # Limits on a pollutant's mean over some hours (QCVN 05): a new limit is a YAML edit, not code.
        self._mean_rules = [
            (
                self._conditions[rule.id],
                str(rule.params["pollutant"]),
                int(rule.params["mean_hours"]),
                rule.metric,
                tuple(self._rule_ids_by_metric[rule.metric]),  # every rule judging the metric
            )
            for rule in air
            if "mean_hours" in rule.params
        ]
        # A field's hourly mean against the sensor's seasonal baseline.
        self._series_rules = [r for r in air if r.kind == RuleKind.statistical and "field" in r.params]
        self._series_params = {rule.id: _baseline_params(rule) for rule in self._series_rules}
        self._keep = _hours_kept(self._mean_rules, self._series_rules)
        self._wqi_rule = next((r for r in self._rules_by_feed["water"] if r.metric == "vn_wqi"), None)
        wqi_params = self._wqi_rule.params if self._wqi_rule is not None else {}
        variant = str(wqi_params.get("wqi_variant", "cube_root"))
        if variant not in WQI_VARIANTS:
            raise ValueError(f"wqi_variant {variant!r}: use one of {', '.join(WQI_VARIANTS)}")
        self._wqi_variant = cast(WqiVariant, variant)
        spike_rule = self._rule_by_metric.get("spike_ratio")
        self._spike = (
            (spike_rule.trigger.limit, float(spike_rule.params.get("back", 2)))
            if spike_rule is not None and spike_rule.trigger is not None
            else None
        )
        crowding = self._rule_by_metric.get("taps_ratio")
        self._min_normal_taps = float(crowding.params.get("min_normal_taps", 10)) if crowding else 10.0
        # The health readings of every reading: constant values, judged once.
        self._quiet = {metric: self._judge(metric, 0.0) for metric in HEALTH_METRICS}
        self._sensors: dict[str, dict[str, _Sensor]] = {feed: {} for feed in FEEDS}  # feed → sensor → _Sensor
        self._slots: dict[int, int] = {}  # bin (epoch // BIN) → its slot of a station's normal
        self._completed: dict[str, dict[str, hourly.Completed]] = {}  # sensor → field → its hours before

    # --- entry points ------------------------------------------------------------------------------

    def observe(self, state: dict[str, Any], event: Event) -> list[Anomaly]:
        if state.get("v") != STATE_VERSION:
            upgrade_sensor_state(state)
        feed = event.feed
        at = event.event_time
        epoch = at.timestamp()
        if feed == "transit":
            assert isinstance(event, FareTap)
            metrics = self._transit(state, epoch)
        else:
            values = event.measured_values()
            metrics = self._health(state, epoch, values)
            if feed == "air":
                assert isinstance(event, AirQualityObserved)
                self._air(state, event, at, epoch, values, metrics)
            elif feed == "water":
                assert isinstance(event, WaterQualityObserved)
                self._water(event, epoch, values, metrics)
            elif feed == "traffic":
                assert isinstance(event, TrafficFlowObserved)
                self._traffic(state, event, epoch, metrics)
        state["indices"] = self._current_indices(state, event, metrics)
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
        breached, cleared = self._judge("rejected_readings", 1)
        return self._evaluate(
            state, feed, sensor_id, {"rejected_readings": (at, epoch, 1, breached, cleared, None, None, None)}
        )

    def tick(self, state: dict[str, Any], feed: str, sensor_id: str, now: datetime) -> list[Anomaly]:
        upgrade_sensor_state(state)
        epoch = now.timestamp()
        metrics: Metrics = {}
        if feed == "transit":
            metrics = self._gates(state, sensor_id, epoch)
        else:
            sick = state["health"]
            silent = health.silent_intervals(sick, epoch)
            if silent is not None:
                breached, cleared = self._judge("silent_intervals", silent)
                began = sick["seen"] + health.interval(sick)  # when it should have reported
                metrics["silent_intervals"] = (now, epoch, silent, breached, cleared, None, None, began)
        return self._evaluate(state, feed, sensor_id, metrics) if metrics else []

    # --- metrics per feed --------------------------------------------------------------------------

    def _health(self, state: dict[str, Any], epoch: float, values: dict[str, float]) -> Metrics:
        sick = state["health"]
        health.note_reading(sick, epoch)
        quiet = self._quiet
        stuck = health.stuck_minutes(sick, epoch, values)
        silent_breached, silent_cleared = quiet["silent_intervals"]
        rejected_breached, rejected_cleared = quiet["rejected_readings"]
        stuck_breached, stuck_cleared = (
            self._judge("identical_minutes", stuck) if stuck else quiet["identical_minutes"]
        )
        metrics: Metrics = {
            "silent_intervals": (None, epoch, 0.0, silent_breached, silent_cleared, None, None, None),
            "rejected_readings": (None, epoch, 0.0, rejected_breached, rejected_cleared, None, None, None),
            "identical_minutes": (None, epoch, stuck, stuck_breached, stuck_cleared, None, None, None),
        }
        if self._spike is not None:
            factor, back = self._spike
            found = health.spike(sick, epoch, values, factor=factor, back=back)
            if found is not None:
                breached, cleared = self._judge("spike_ratio", found.ratio)
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

    def _air(
        self,
        state: dict[str, Any],
        event: AirQualityObserved,
        at: datetime,
        epoch: float,
        values: dict[str, float],
        metrics: Metrics,
    ) -> None:
        """Hourly means per pollutant over the last day, of the readings device faults spared. The current
        hour's mean so far is the NowCast's c1, so the hourly index moves every minute (what an operator
        watching a pollution episode needs); the QCVN 05 means slide with each reading too."""
        feed = state["feed"]
        ring: hourly.Ring = feed.setdefault("hours", {})
        for admitted_epoch, admitted_values in _admitted(state, epoch, values, metrics):
            hourly.add(ring, admitted_epoch, admitted_values, self._keep)
        hours, concentrations = self._hours(event.sensor_id, ring, hourly.hour_of(epoch))
        if (index := vn_aqi_hourly_index(concentrations)) is not None:
            value = float(index[0])
            breached, cleared = self._judge("vn_aqi", value)
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
        """The rule's field: the score of its last completed hourly mean against the sensor's seasonal
        baseline (``ioc.detectors.baseline``), which then learns it, so a score never looks ahead. Each
        hour is judged once, at the first reading after it with no suspect held, and only when its
        readings cover 75 % of it (a silent or stuck sensor's hour is not its normal). The raw score:
        the condition's hysteresis and hold already make one alert of an episode, the baseline's own
        damping would end it early."""
        this_hour = hourly.hour_of(epoch)
        baselines = state["feed"].setdefault("baselines", {})
        series = baselines.get(rule.id)
        if series is None:
            series = baselines[rule.id] = [None, baseline.new_model()]
        judged = series[0]
        if judged is not None and this_hour <= judged + HOUR:
            return None  # no hour has ended since the last one judged
        # The rule's knobs, not kept in the state: a rules change applies to a running system.
        params = self._series_params[rule.id]
        log_scale = rule.params.get("scale") == "log"
        done = hourly.completed_hours(ring, str(rule.params["field"]), before=this_hour, after=judged)
        usual = health.interval(state["health"])
        scored = None
        for hour, total, count in done:
            if usual is not None and count * usual >= hourly.COMPLETE * HOUR:
                mean = total / count
                middle = datetime.fromtimestamp(hour + HOUR / 2, self.zone)  # local: its hour of the week
                scored = baseline.score_model(
                    series[1], params, middle, math.log1p(mean) if log_scale else mean
                )
        if done:
            series[0] = done[-1][0]
        if scored is None:
            return None
        normal = scored.expected
        if normal is not None and log_scale:
            normal = math.expm1(normal)
        breached, cleared = self._conditions[rule.id].judge(scored.raw_score)
        return (at, epoch, scored.raw_score, breached, cleared, normal, None, None)

    def _water(
        self, event: WaterQualityObserved, epoch: float, values: dict[str, float], metrics: Metrics
    ) -> None:
        """Each parameter as measured, and the VN_WQI of the sample: a station samples every parameter
        at once, so one reading is one sample, and a sample short of the index's data (3 of its 5
        groups, 3 parameters in group IV) gives no index rather than a guess."""
        at = event.event_time
        for name in self._metrics_by_feed["water"]:
            if (value := values.get(name)) is not None:
                metrics[name] = (at, epoch, value, *self._judge(name, value), None, None, None)
        # Every station's index is shown; the rule judges only the classes it names (``_applies``).
        index = vn_wqi(values, self._wqi_variant)
        if index.value is not None and index.band is not None:
            value = float(index.value)
            metrics["vn_wqi"] = (at, epoch, value, *self._judge("vn_wqi", value), None, index.band.key, None)

    def _traffic(
        self, state: dict[str, Any], event: TrafficFlowObserved, epoch: float, metrics: Metrics
    ) -> None:
        """Speed against the detector's normal: the median of its recent readings, frozen while an
        incident is open so the incident does not become the normal."""
        speed = event.average_vehicle_speed
        if speed is None:
            return
        normal: list[float] = state["feed"].setdefault("normal_speed", [])
        incident = self._firing(state, "speed_ratio")
        breached = False
        if len(normal) >= health.MIN_HISTORY:
            usual = health.median(normal)
            if usual > 0:
                ratio = speed / usual
                breached, cleared = self._judge("speed_ratio", ratio)
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

    def _transit(self, state: dict[str, Any], epoch: float) -> Metrics:
        """Taps per 15-minute bin against the station's normal for that time of the week. A busy partial
        bin may open an episode; only completed bins may close one."""
        station = state["feed"]
        metrics = self._roll_bins(state, epoch, learn=True)
        station["bin"][1] += 1
        taps = station["bin"][1]
        station["last_tap"] = max(station.get("last_tap") or epoch, epoch)
        if "taps_ratio" not in metrics and not self._firing(state, "taps_ratio"):
            metrics["taps_ratio"] = self._crowding(station, epoch, taps, partial=True)
        metrics["taps"] = (None, epoch, float(taps), False, True, None, None, None)
        return metrics

    def _roll_bins(self, state: dict[str, Any], epoch: float, *, learn: bool) -> Metrics:
        """Close the station's bins that ended by ``epoch``: the last one is judged for crowding, and all
        are learned as the station's normal — empty ones too (a quiet night is normal), but not while the
        gates are out (an outage is not the normal)."""
        station = state["feed"]
        start = int(epoch // BIN * BIN)
        if "bin" not in station:
            station["bin"] = [start, 0]
        done_start, done_count = station["bin"]
        if start <= done_start:
            return {}
        judged = self._crowding(station, done_start + BIN, done_count, partial=False)
        if learn and not self._firing(state, "taps"):
            self._learn_bin(station, done_start, done_count)
            for empty in range(done_start + BIN, start, BIN):
                self._learn_bin(station, empty, 0)
        station["bin"] = [start, 0]
        return {"taps_ratio": judged}

    def _crowding(self, station: dict[str, Any], epoch: float, count: int, *, partial: bool) -> Metric:
        normal = self._normal_taps(station, epoch)
        usual = max(normal, self._min_normal_taps) if normal is not None else None
        ratio = count / usual if usual else None
        breached, cleared = self._judge("taps_ratio", ratio)
        # A partial bin can only show crowding, not its end.
        return (None, epoch, ratio, breached, cleared and not partial, usual, None, None)

    def _gates(self, state: dict[str, Any], sensor_id: str, epoch: float) -> Metrics:
        """A station whose gates have been silent for a whole bin while its normal says riders should
        have tapped: so many (``min_expected_taps``) that the silence is no accident — riders come in
        bursts with the trains, so a short gap proves nothing. Judged before the silent bins are learned,
        so an outage does not become the normal."""
        station = state["feed"]
        last = station.get("last_tap")
        rule = self._rule_by_metric.get("taps")
        metrics: Metrics = {}
        if (
            last is not None
            and rule is not None
            and epoch - last >= BIN
            and self._in_service(sensor_id, last, epoch)
        ):
            expected = self._expected_taps(station, last, epoch)
            if expected >= float(rule.params.get("min_expected_taps", 10)):
                metrics["taps"] = (None, epoch, 0.0, True, False, expected, None, last)
        metrics.update(self._roll_bins(state, epoch, learn="taps" not in metrics))
        return metrics

    def _current_indices(
        self, state: dict[str, Any], event: Event, metrics: Metrics
    ) -> dict[str, dict[str, Any]]:
        """The sensor's official index after this reading (``ioc.indices.current``), as the picture shows
        it; the one before stays when this reading gives none (an air station's first minutes). A new
        dict each reading: the pipeline keeps the one of each window's latest reading."""
        indices: dict[str, dict[str, Any]] = dict(state.get("indices") or {})
        if isinstance(event, AirQualityObserved | WaterQualityObserved):
            metric, name = (
                ("vn_aqi", current.VN_AQI)
                if isinstance(event, AirQualityObserved)
                else ("vn_wqi", current.VN_WQI)
            )
            if (found := metrics.get(metric)) is not None and found[2] is not None:
                indices[name] = {"value": found[2], "band": found[6]}
        elif isinstance(event, TrafficFlowObserved) and event.average_vehicle_speed is not None:
            free_flow = self._sensor("traffic", event.sensor_id).free_flow_speed
            if free_flow:
                speed = event.average_vehicle_speed
                indices[current.LEVEL_OF_SERVICE] = {
                    "value": round(100 * speed / free_flow, 1),
                    "band": level_of_service(speed, free_flow),
                }
        elif isinstance(event, FareTap):
            indices[current.RIDERSHIP] = {"value": float(state["feed"]["bin"][1]), "band": None}
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
            for number, rule in enumerate(self._rules_by_feed[feed]):
                if self._rule_applies(rule, feed, sensor_id):
                    conditions.setdefault(rule.metric, []).append(
                        (number, rule.id, self._conditions[rule.id])
                    )
            known = self._sensors[feed][sensor_id] = _Sensor(
                subject=Subject(feed=feed, entity=sensor_id, district=sensor.district if sensor else ""),
                conditions={metric: tuple(judging) for metric, judging in conditions.items()},
                free_flow_speed=sensor.free_flow_speed if sensor else None,
                lines=tuple(sensor.lines) if sensor else (),
            )
        return known

    def _rule_applies(self, rule: Rule, feed: str, sensor_id: str) -> bool:
        feeds = rule.params.get("feeds")
        if isinstance(feeds, str) and feed not in feeds.split(","):
            return False
        classes = rule.params.get("water_classes")
        if isinstance(classes, str):
            sensor = self.city.sensor(sensor_id)
            return sensor is not None and sensor.water_class in classes.split(",")
        return True

    def _in_service(self, sensor_id: str, first: float, last: float) -> bool:
        """Whether a line serving the station runs from ``first`` to ``last`` (one local service day)."""
        begin, end = datetime.fromtimestamp(first, self.zone), datetime.fromtimestamp(last, self.zone)
        for line_id in self._sensor("transit", sensor_id).lines:
            line = self.city.line(line_id)
            if (
                line
                and begin.date() == end.date()
                and line.service_start <= begin.time()
                and end.time() < line.service_end
            ):
                return True
        return False

    def _firing(self, state: dict[str, Any], metric: str) -> bool:
        rule = self._rule_by_metric.get(metric)
        return rule is not None and firing(state["conditions"], rule.id)

    def _judge(self, metric: str, value: float | None) -> tuple[bool, bool]:
        """(breached, cleared) of a metric's value by the first rule of the metric; none: (False, True)."""
        condition = self._judge_by_metric.get(metric)
        return condition.judge(value) if condition is not None else (False, True)

    # --- a station's normal ------------------------------------------------------------------------

    def _slot(self, epoch: float) -> int:
        """The position in a station's normal of the bin holding ``epoch``: weekday or weekend, and the
        local quarter of an hour — riders keep a weekly rhythm, and the last quarter before the service
        ends is nothing like the one before it. Remembered per bin where the zone's offset holds through
        the bin and is whole quarters (else worked out each time)."""
        key = int(epoch // BIN)
        slot = self._slots.get(key)
        if slot is None:
            start = key * BIN
            offset = datetime.fromtimestamp(start, self.zone).utcoffset()
            if offset != datetime.fromtimestamp(start + BIN - 1, self.zone).utcoffset() or (
                offset is None or offset.total_seconds() % BIN
            ):
                return _slot_at(epoch, self.zone)
            if len(self._slots) >= REMEMBERED_BINS:
                self._slots.clear()
            slot = self._slots[key] = _slot_at(start, self.zone)
        return slot

    def _learn_bin(self, station: dict[str, Any], start: int, count: int) -> None:
        normals: list[float | None] = station.setdefault("normal", [None] * (2 * QUARTERS))
        slot = self._slot(start)
        previous = normals[slot]
        normals[slot] = count if previous is None else (1 - BIN_ALPHA) * previous + BIN_ALPHA * count

    def _expected_taps(self, station: dict[str, Any], first: float, last: float) -> float:
        """Taps the station's normal expects between two instants (0 where it has no normal)."""
        total, moment = 0.0, first
        while moment < last:
            bin_end = (moment // BIN + 1) * BIN
            span = min(bin_end, last) - moment
            total += (self._normal_taps(station, moment) or 0.0) * span / BIN
            moment = bin_end
        return total

    def _normal_taps(self, station: dict[str, Any], epoch: float) -> float | None:
        """The station's usual taps per bin at this time of the week. Until it has seen this quarter on
        this kind of day: the same quarter on the other kind of day, else the latest quarter it has seen
        in the hour before (a first day), else None — no judgement without a normal."""
        normals: list[float | None] | None = station.get("normal")
        if normals is None:
            return None
        slot = self._slot(epoch)
        for candidate in (slot, (slot + QUARTERS) % (2 * QUARTERS)):
            if (normal := normals[candidate]) is not None:
                return normal
        for back in range(1, FALLBACK_BINS + 1):
            if (normal := normals[self._slot(epoch - back * BIN)]) is not None:
                return normal
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


def _slot_at(epoch: float, zone: ZoneInfo) -> int:
    local = datetime.fromtimestamp(epoch, zone)
    return (QUARTERS if local.weekday() >= 5 else 0) + local.hour * 4 + local.minute // 15


def _admitted(
    state: dict[str, Any], epoch: float, values: dict[str, float], metrics: Metrics
) -> list[list[Any]]:
    """The readings the hourly means may take now. A suspect reading (far from the sensor's normal)
    waits for the verdict: a spike is dropped, a real change goes in with the reading that proved it;
    the repeats of a stuck sensor are not measurements. So device faults poison neither the VN_AQI,
    the QCVN means nor a baseline."""
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
    hour N back), and a baseline's field as many as any, so an hour that ends in a silence is still
    there to judge when the sensor comes back."""
    keep = {pollutant: AQI_HOURS if pollutant in PARTICULATES else 1 for pollutant in AQI_POLLUTANTS}
    for _, pollutant, hours, *_ in mean_rules:
        if pollutant in keep:
            keep[pollutant] = max(keep[pollutant], hours + 1)
    longest = max(keep.values())
    for rule in series_rules:
        if (field := str(rule.params["field"])) in keep:
            keep[field] = longest
    return keep


def _baseline_params(rule: Rule) -> baseline.BaselineParams:
    """A statistical rule's baseline: the defaults, the direction of its field, and any of the
    baseline's parameters the rule sets."""
    if rule.params.get("scale", "log") != "log":
        raise ValueError(f"rule {rule.id}: scale is log or not given (the field as it comes)")
    knobs = {name: float(value) for name, value in rule.params.items() if name not in ("field", "scale")}
    try:
        tuned = replace(baseline.BaselineParams(), **knobs)
    except TypeError:
        raise ValueError(f"rule {rule.id}: unknown baseline parameters in {sorted(knobs)}") from None
    return baseline.params_for_metric(str(rule.params["field"]), tuned)


# --- state versions ---------------------------------------------------------------------------------


def upgrade_sensor_state(state: dict[str, Any]) -> dict[str, Any]:
    """The state in this version's format, in place (the same dict, which the caller's table value holds)
    and returned. Reads the first format (no ``v``: what ``ioc`` wrote before state versions); a state
    of this version is returned as it is, a later one refused."""
    version = state.get("v")
    if version == STATE_VERSION:
        return state
    if version is not None:
        raise ValueError(f"sensor state version {version!r}: this detector reads up to {STATE_VERSION}")
    upgraded = _from_first_format(state)
    state.clear()
    state.update(upgraded)
    return state


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
        normals: list[float | None] = [None] * (2 * QUARTERS)
        for name, normal in feed["normal"].items():  # "wd071": weekday, 07:00, its second quarter
            day = QUARTERS if name.startswith("we") else 0
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
