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
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from ioc.alerts.rules import Rule, RuleSet
from ioc.city import City
from ioc.detectors import baseline, health, hourly
from ioc.detectors.condition import Reading, Subject, evaluate, threshold_reading
from ioc.indices import current
from ioc.indices.air import vn_aqi_hourly
from ioc.indices.traffic import level_of_service
from ioc.indices.water import WQI_VARIANTS, WqiVariant, vn_wqi
from ioc.models import AirQualityObserved, Event, FareTap, TrafficFlowObserved, WaterQualityObserved
from ioc.models.anomaly import Anomaly, RuleKind

HEALTH_METRICS = frozenset({"silent_intervals", "rejected_readings", "identical_minutes", "spike_ratio"})
AQI_POLLUTANTS = ("pm25", "pm10", "no2", "so2", "co", "o3")
AQI_HOURS = 12  # the NowCast looks back 12 hourly means
HOUR = hourly.HOUR
BIN = 15 * 60  # transit ridership bins
NORMAL_HISTORY = 12  # a traffic detector's normal speed: the median of its last readings outside incidents
FALLBACK_BINS = 4  # a first day borrows the normal of the hour before
BIN_ALPHA = 0.3  # weight of the newest bin in a station's normal for its time of the week


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def new_sensor_state() -> dict[str, Any]:
    return {"health": health.new_health(), "conditions": {}, "feed": {}}


class SensorDetector:
    def __init__(self, rules: RuleSet, city: City) -> None:
        self.rules = rules
        self.city = city
        self.zone = ZoneInfo(city.timezone)
        self._rules_by_feed = {feed: rules.for_feed(feed) for feed in ("air", "water", "traffic", "transit")}
        self._applicable: dict[tuple[str, str, str], bool] = {}
        self._rule_by_metric: dict[str, Rule] = {}
        for rule in rules.rules:  # the first rule of a metric, as the rules file lists them
            self._rule_by_metric.setdefault(rule.metric, rule)
        air = self._rules_by_feed["air"]
        # Limits on a pollutant's mean over some hours (QCVN 05): a new limit is a YAML edit, not code.
        self._mean_rules = [rule for rule in air if "mean_hours" in rule.params]
        # A field's hourly mean against the sensor's seasonal baseline.
        self._series_rules = [r for r in air if r.kind == RuleKind.statistical and "field" in r.params]
        self._series_params = {rule.id: asdict(_baseline_params(rule)) for rule in self._series_rules}
        longest = max((int(rule.params["mean_hours"]) for rule in self._mean_rules), default=0)
        # An N-hour window that slides within the hour still covers part of the hour N back.
        self._keep_hours = max(AQI_HOURS, longest + 1)
        self._wqi_rule = next((r for r in self._rules_by_feed["water"] if r.metric == "vn_wqi"), None)
        wqi_params = self._wqi_rule.params if self._wqi_rule is not None else {}
        variant = str(wqi_params.get("wqi_variant", "cube_root"))
        if variant not in WQI_VARIANTS:
            raise ValueError(f"wqi_variant {variant!r}: use one of {', '.join(WQI_VARIANTS)}")
        self._wqi_variant = cast(WqiVariant, variant)

    # --- entry points ------------------------------------------------------------------------------

    def observe(self, state: dict[str, Any], event: Event) -> list[Anomaly]:
        feed = type(event).feed
        at = event.event_time
        epoch = _epoch(at)
        metrics: dict[str, Reading] = {}
        if feed == "transit":
            assert isinstance(event, FareTap)
            metrics.update(self._transit(state, epoch))
        else:
            values = event.measured_values()
            metrics.update(self._health(state, feed, epoch, values))
            if feed == "air":
                assert isinstance(event, AirQualityObserved)
                admitted = _admitted(state, epoch, values, metrics)
                metrics.update(self._air(state, event, admitted))
            elif feed == "water":
                assert isinstance(event, WaterQualityObserved)
                metrics.update(self._water(event))
            elif feed == "traffic":
                assert isinstance(event, TrafficFlowObserved)
                metrics.update(self._traffic(state, event))
        state["indices"] = self._current_indices(state, event, metrics)
        if state["health"]["pending"]:
            # A reading that jumped far from the sensor's normal is suspect until the next readings
            # say spike (a device fault) or a real change; the other rules wait for that verdict.
            metrics = {m: r for m, r in metrics.items() if m in HEALTH_METRICS}
        return self._evaluate(state, feed, event.sensor_id, metrics)

    def rejected(self, state: dict[str, Any], feed: str, sensor_id: str, at: datetime) -> list[Anomaly]:
        # The sensor is alive, only wrong: it is not silent.
        health.note_reading(state["health"], _epoch(at))
        return self._evaluate(
            state, feed, sensor_id, {"rejected_readings": self._reading("rejected_readings", at, 1)}
        )

    def tick(self, state: dict[str, Any], feed: str, sensor_id: str, now: datetime) -> list[Anomaly]:
        epoch = _epoch(now)
        metrics: dict[str, Reading] = {}
        if feed == "transit":
            metrics.update(self._gates(state, sensor_id, epoch))
        else:
            silent = health.silent_intervals(state["health"], epoch)
            usual = health.interval(state["health"])
            if silent is not None and usual is not None:
                began = _utc(state["health"]["last_seen"] + usual)
                metrics["silent_intervals"] = self._reading("silent_intervals", now, silent, began=began)
        return self._evaluate(state, feed, sensor_id, metrics)

    # --- metrics per feed --------------------------------------------------------------------------

    def _health(
        self, state: dict[str, Any], feed: str, epoch: float, values: dict[str, float]
    ) -> dict[str, Reading]:
        sick = state["health"]
        at = _utc(epoch)
        health.note_reading(sick, epoch)
        readings = {
            "silent_intervals": self._reading("silent_intervals", at, 0.0),
            "rejected_readings": self._reading("rejected_readings", at, 0.0),
            "identical_minutes": self._reading(
                "identical_minutes", at, health.stuck_minutes(sick, epoch, values)
            ),
        }
        spike_rule = self._rule_for("spike_ratio")
        if spike_rule is not None and spike_rule.trigger is not None:
            found = health.spike(
                sick,
                epoch,
                values,
                factor=spike_rule.trigger.limit,
                back=float(spike_rule.params.get("back", 2)),
            )
            if found is not None:
                readings["spike_ratio"] = self._reading(
                    "spike_ratio", at, found.ratio, began=_utc(found.began)
                )
            else:
                readings["spike_ratio"] = self._reading("spike_ratio", at, 0.0)
        return readings

    def _air(
        self, state: dict[str, Any], event: AirQualityObserved, admitted: list[list[Any]]
    ) -> dict[str, Reading]:
        """Hourly means per pollutant over the last day, of the readings device faults spared. The current
        hour's mean so far is the NowCast's c1, so the hourly index moves every minute (what an operator
        watching a pollution episode needs); the QCVN 05 means slide with each reading too."""
        ring: hourly.Ring = state["feed"].setdefault("hours", {})
        for epoch, values in admitted:
            pollutants = {p: v for p, v in values.items() if p in AQI_POLLUTANTS}
            hourly.add(ring, epoch, pollutants, self._keep_hours)
        at = event.event_time
        epoch = _epoch(at)
        hours = hourly.keys(hourly.hour_of(epoch), self._keep_hours)
        history = {pollutant: hourly.means(sums, hours) for pollutant, sums in ring.items()}
        readings: dict[str, Reading] = {}
        result = vn_aqi_hourly({p: means[:AQI_HOURS] for p, means in history.items()})
        if result is not None:
            readings["vn_aqi"] = self._reading("vn_aqi", at, float(result.value), band=result.band.key)
        # A reading stands for the time since the one before it (an hourly station's for its whole hour).
        share = hourly.into_hour(epoch, health.interval(state["health"]) or float(event.averaging_period))
        for rule in self._mean_rules:
            if (reading := _limit_reading(rule, at, history, share)) is not None:
                readings[rule.metric] = reading
        if not state["feed"]["held"]:  # an hour is judged once none of its readings awaits a verdict
            for rule in self._series_rules:
                if (reading := self._unusual(state, rule, at, ring)) is not None:
                    readings[rule.metric] = reading
        return readings

    def _unusual(self, state: dict[str, Any], rule: Rule, at: datetime, ring: hourly.Ring) -> Reading | None:
        """The rule's field: the score of its last completed hourly mean against the sensor's seasonal
        baseline (``ioc.detectors.baseline``), which then learns it, so a score never looks ahead. Each
        hour is judged once, at the first reading after it with no suspect held, and only when its
        readings cover 75 % of it (a silent or stuck sensor's hour is not its normal). The raw score:
        the condition's hysteresis and hold already make one alert of an episode, the baseline's own
        damping would end it early."""
        current = hourly.hour_of(_epoch(at))
        baselines = state["feed"].setdefault("baselines", {})
        if rule.id not in baselines:
            baselines[rule.id] = {"judged": None, "model": baseline.new_state()}
        series = baselines[rule.id]
        judged = series["judged"]
        if judged is not None and current <= judged + HOUR:
            return None  # no hour has ended since the last one judged
        # The rule's knobs, not those saved with the state: a rules change applies to a running system.
        series["model"]["params"] = dict(self._series_params[rule.id])
        log_scale = rule.params.get("scale") == "log"
        sums = ring.get(str(rule.params["field"]), {})
        done = sorted(h for key in sums if (h := int(key)) < current and (judged is None or h > judged))
        usual = health.interval(state["health"])
        scored = None
        for hour in done:
            total, count = sums[str(hour)]
            if usual is not None and count * usual >= hourly.COMPLETE * HOUR:
                mean = total / count
                middle = datetime.fromtimestamp(hour + HOUR / 2, self.zone)  # local: its hour of the week
                scored = baseline.score_point(
                    series["model"], middle, math.log1p(mean) if log_scale else mean
                )
        if done:
            series["judged"] = done[-1]
        if scored is None:
            return None
        normal = scored.expected
        if normal is not None and log_scale:
            normal = math.expm1(normal)
        return threshold_reading(rule, at, scored.raw_score, baseline=normal)

    def _water(self, event: WaterQualityObserved) -> dict[str, Reading]:
        """Each parameter as measured, and the VN_WQI of the sample: a station samples every parameter
        at once, so one reading is one sample, and a sample short of the index's data (3 of its 5
        groups, 3 parameters in group IV) gives no index rather than a guess."""
        at = event.event_time
        values = event.measured_values()
        readings = {name: self._reading(name, at, value) for name, value in values.items()}
        # Every station's index is shown; the rule judges only the classes it names (``_evaluate``).
        index = vn_wqi(values, self._wqi_variant)
        if index.value is not None and index.band is not None:
            readings["vn_wqi"] = self._reading("vn_wqi", at, float(index.value), band=index.band.key)
        return readings

    def _traffic(self, state: dict[str, Any], event: TrafficFlowObserved) -> dict[str, Reading]:
        """Speed against the detector's normal: the median of its recent readings, frozen while an
        incident is open so the incident does not become the normal."""
        speed = event.average_vehicle_speed
        if speed is None:
            return {}
        normal: list[float] = state["feed"].setdefault("normal_speed", [])
        firing = self._firing(state, "speed_ratio")
        readings: dict[str, Reading] = {}
        if len(normal) >= health.MIN_HISTORY:
            baseline = statistics.median(normal)
            if baseline > 0:
                readings["speed_ratio"] = self._reading(
                    "speed_ratio", event.event_time, speed / baseline, baseline=baseline
                )
        if not firing and not (readings and readings["speed_ratio"].breached):
            normal.append(speed)
            del normal[:-NORMAL_HISTORY]
        return readings

    def _transit(self, state: dict[str, Any], epoch: float) -> dict[str, Reading]:
        """Taps per 15-minute bin against the station's normal for that time of the week. A busy partial
        bin may open an episode; only completed bins may close one."""
        station = state["feed"]
        readings = self._roll_bins(state, epoch, learn=True)
        station["bin"][1] += 1
        station["last_tap"] = max(station.get("last_tap") or epoch, epoch)
        if not self._firing(state, "taps_ratio") and "taps_ratio" not in readings:
            readings["taps_ratio"] = self._crowding(station, epoch, station["bin"][1], partial=True)
        readings["taps"] = Reading(_utc(epoch), float(station["bin"][1]), breached=False, cleared=True)
        return readings

    def _roll_bins(self, state: dict[str, Any], epoch: float, *, learn: bool) -> dict[str, Reading]:
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
            _learn_bin(station, done_start, done_count, self.zone)
            for empty in range(done_start + BIN, start, BIN):
                _learn_bin(station, empty, 0, self.zone)
        station["bin"] = [start, 0]
        return {"taps_ratio": judged}

    def _crowding(self, station: dict[str, Any], epoch: float, count: int, *, partial: bool) -> Reading:
        rule = self._rule_for("taps_ratio")
        floor = float(rule.params.get("min_normal_taps", 10)) if rule is not None else 10.0
        normal = _normal_taps(station, epoch, self.zone)
        baseline = max(normal, floor) if normal is not None else None
        ratio = count / baseline if baseline else None
        reading = self._reading("taps_ratio", _utc(epoch), ratio, baseline=baseline)
        if partial:  # a partial bin can only show crowding, not its end
            return Reading(reading.at, reading.value, reading.breached, False, reading.baseline)
        return reading

    def _gates(self, state: dict[str, Any], sensor_id: str, epoch: float) -> dict[str, Reading]:
        """A station whose gates have been silent for a whole bin while its normal says riders should
        have tapped: so many (``min_expected_taps``) that the silence is no accident — riders come in
        bursts with the trains, so a short gap proves nothing. Judged before the silent bins are learned,
        so an outage does not become the normal."""
        station = state["feed"]
        last = station.get("last_tap")
        rule = self._rule_for("taps")
        readings: dict[str, Reading] = {}
        if last is not None and rule is not None and self._in_service(sensor_id, last, epoch):
            expected = _expected_taps(station, last, epoch, self.zone)
            if epoch - last >= BIN and expected >= float(rule.params.get("min_expected_taps", 10)):
                readings["taps"] = Reading(
                    _utc(epoch), 0.0, breached=True, cleared=False, baseline=expected, began=_utc(last)
                )
        readings.update(self._roll_bins(state, epoch, learn="taps" not in readings))
        return readings

    def _current_indices(
        self, state: dict[str, Any], event: Event, metrics: dict[str, Reading]
    ) -> dict[str, dict[str, Any]]:
        """The sensor's official index after this reading (``ioc.indices.current``), as the picture shows
        it; the one before stays when this reading gives none (an air station's first minutes)."""
        indices: dict[str, dict[str, Any]] = dict(state.get("indices") or {})
        for metric, name in (("vn_aqi", current.VN_AQI), ("vn_wqi", current.VN_WQI)):
            if (reading := metrics.get(metric)) is not None and reading.value is not None:
                indices[name] = {"value": reading.value, "band": reading.band}
        if isinstance(event, TrafficFlowObserved) and event.average_vehicle_speed is not None:
            sensor = self.city.sensor(event.sensor_id)
            if sensor is not None and sensor.free_flow_speed:
                speed, free_flow = event.average_vehicle_speed, sensor.free_flow_speed
                indices[current.LEVEL_OF_SERVICE] = {
                    "value": round(100 * speed / free_flow, 1),
                    "band": level_of_service(speed, free_flow),
                }
        if isinstance(event, FareTap):
            indices[current.RIDERSHIP] = {"value": float(state["feed"]["bin"][1]), "band": None}
        return indices

    # --- evaluation --------------------------------------------------------------------------------

    def _evaluate(
        self, state: dict[str, Any], feed: str, sensor_id: str, metrics: dict[str, Reading]
    ) -> list[Anomaly]:
        sensor = self.city.sensor(sensor_id)
        subject = Subject(feed=feed, entity=sensor_id, district=sensor.district if sensor else "")
        anomalies = []
        for rule in self._rules_by_feed[feed]:
            reading = metrics.get(rule.metric)
            if reading is None or not self._applies(rule, feed, sensor_id):
                continue
            condition = state["conditions"].setdefault(rule.id, {})
            if (anomaly := evaluate(condition, rule, self.rules, subject, reading)) is not None:
                anomalies.append(anomaly)
        return anomalies

    def _applies(self, rule: Rule, feed: str, sensor_id: str) -> bool:
        key = (rule.id, feed, sensor_id)
        if key not in self._applicable:  # the rules and the registry are fixed: ask once
            self._applicable[key] = self._rule_applies(rule, feed, sensor_id)
        return self._applicable[key]

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
        sensor = self.city.sensor(sensor_id)
        begin, end = datetime.fromtimestamp(first, self.zone), datetime.fromtimestamp(last, self.zone)
        for line_id in sensor.lines if sensor else []:
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
        rule = self._rule_for(metric)
        return rule is not None and state["conditions"].get(rule.id, {}).get("since") is not None

    def _rule_for(self, metric: str) -> Rule | None:
        return self._rule_by_metric.get(metric)

    def _reading(self, metric: str, at: datetime, value: float | None, **extra: Any) -> Reading:
        rule = self._rule_for(metric)
        if rule is None:
            return Reading(at, value, breached=False, cleared=True, **extra)
        return threshold_reading(rule, at, value, **extra)


def _admitted(
    state: dict[str, Any], epoch: float, values: dict[str, float], health_readings: dict[str, Reading]
) -> list[list[Any]]:
    """The readings the hourly means may take now. A suspect reading (far from the sensor's normal)
    waits for the verdict: a spike is dropped, a real change goes in with the reading that proved it;
    the repeats of a stuck sensor are not measurements. So device faults poison neither the VN_AQI,
    the QCVN means nor a baseline."""
    held: list[list[Any]] = state["feed"].setdefault("held", [])
    if state["health"]["pending"]:
        held.append([epoch, values])
        return []
    spike = health_readings.get("spike_ratio")
    admitted = [] if spike is not None and spike.value else held  # a value: the held ones were a spike
    state["feed"]["held"] = []
    stuck = health_readings["identical_minutes"].value
    return admitted if stuck else [*admitted, [epoch, values]]


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


def _limit_reading(
    rule: Rule, at: datetime, history: dict[str, list[float | None]], share: float
) -> Reading | None:
    """A pollutant's mean over the rule's ``mean_hours`` against its limit. With too little data the
    mean's least possible value may prove an exceedance, but cannot end one."""
    hours = int(rule.params["mean_hours"])
    mean = hourly.trailing_mean(history.get(str(rule.params["pollutant"]), []), share, hours)
    if mean is None:
        return None
    reading = threshold_reading(rule, at, mean.value)
    return reading if mean.complete else replace(reading, cleared=False)


def _slot(epoch: float, zone: ZoneInfo) -> str:
    """Weekday or weekend, and the local quarter of an hour: riders keep a weekly rhythm, and the last
    quarter before the service ends is nothing like the one before it."""
    local = datetime.fromtimestamp(epoch, zone)
    return f"{'we' if local.weekday() >= 5 else 'wd'}{local.hour:02d}{local.minute // 15}"


def _learn_bin(station: dict[str, Any], start: int, count: int, zone: ZoneInfo) -> None:
    normals: dict[str, float] = station.setdefault("normal", {})
    slot = _slot(start, zone)
    previous = normals.get(slot)
    normals[slot] = count if previous is None else (1 - BIN_ALPHA) * previous + BIN_ALPHA * count


def _expected_taps(station: dict[str, Any], first: float, last: float, zone: ZoneInfo) -> float:
    """Taps the station's normal expects between two instants (0 where it has no normal)."""
    total, moment = 0.0, first
    while moment < last:
        bin_end = (moment // BIN + 1) * BIN
        span = min(bin_end, last) - moment
        total += (_normal_taps(station, moment, zone) or 0.0) * span / BIN
        moment = bin_end
    return total


def _normal_taps(station: dict[str, Any], epoch: float, zone: ZoneInfo) -> float | None:
    """The station's usual taps per bin at this time of the week. Until it has seen this quarter on
    this kind of day: the same quarter on the other kind of day, else the latest quarter it has seen in
    the hour before (a first day), else None — no judgement without a normal."""
    normals: dict[str, float] = station.get("normal", {})
    slot = _slot(epoch, zone)
    other = ("wd" if slot.startswith("we") else "we") + slot[2:]
    earlier = [_slot(epoch - back * BIN, zone) for back in range(1, FALLBACK_BINS + 1)]
    for candidate in (slot, other, *earlier):
        if candidate in normals:
            return normals[candidate]
    return None


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
    return sensor_id, observed
