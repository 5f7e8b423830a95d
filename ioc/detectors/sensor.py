"""Every rule for one sensor, reading by reading: the detector stage of the pipeline.

``SensorDetector`` turns a sensor's readings into rule metrics (the hourly VN_AQI, dissolved oxygen,
speed against the detector's normal, taps against the station's normal, health measures), feeds them
to each rule's condition (``ioc.detectors.condition``) and returns the anomalies to report. Three
entry points, all pure over one JSON-able state per sensor:

- ``observe`` — a valid reading;
- ``rejected`` — a reading the edge or the agent refused as invalid (out of physical range);
- ``tick`` — event time moved on (other sensors reported) without this one: silence, gates offline.

Online, a Faust agent keyed by sensor id calls them; offline, ``ioc backtest`` and the tests do.
"""

from __future__ import annotations

import json
import statistics
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ioc.alerts.rules import Rule, RuleSet
from ioc.city import City
from ioc.detectors import health
from ioc.detectors.condition import Reading, Subject, evaluate, threshold_reading
from ioc.indices.air import vn_aqi_hourly
from ioc.models import Event, FareTap, TrafficFlowObserved, WaterQualityObserved
from ioc.models.anomaly import Anomaly

HEALTH_METRICS = frozenset({"silent_intervals", "rejected_readings", "identical_minutes", "spike_ratio"})
AQI_POLLUTANTS = ("pm25", "pm10", "no2", "so2", "co", "o3")
AQI_HOURS = 12  # the NowCast looks back 12 hourly means
HOUR = 3600
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
            metrics.update(self._health(state, feed, epoch, event.measured_values()))
            if feed == "air":
                metrics.update(self._air(state, at, event.measured_values()))
            elif feed == "water":
                assert isinstance(event, WaterQualityObserved)
                metrics.update(self._water(event))
            elif feed == "traffic":
                assert isinstance(event, TrafficFlowObserved)
                metrics.update(self._traffic(state, event))
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

    def _air(self, state: dict[str, Any], at: datetime, values: dict[str, float]) -> dict[str, Reading]:
        """Hourly means per pollutant for the last 12 hours; the current hour's mean so far is c1, so the
        hourly index moves every minute (what an operator watching a pollution episode needs)."""
        hours: dict[str, dict[str, list[float]]] = state["feed"].setdefault("hours", {})
        hour = int(_epoch(at) // HOUR * HOUR)
        for pollutant in AQI_POLLUTANTS:
            if (value := values.get(pollutant)) is None:
                continue
            means = hours.setdefault(pollutant, {})
            total = means.setdefault(str(hour), [0.0, 0])
            total[0] += value
            total[1] += 1
            for key in [k for k in means if int(k) <= hour - AQI_HOURS * HOUR]:
                del means[key]
        history = {
            pollutant: [
                (total[0] / total[1]) if (total := means.get(str(hour - i * HOUR))) else None
                for i in range(AQI_HOURS)
            ]
            for pollutant, means in hours.items()
        }
        result = vn_aqi_hourly(history)
        if result is None:
            return {}
        return {"vn_aqi": self._reading("vn_aqi", at, float(result.value), band=result.band.key)}

    def _water(self, event: WaterQualityObserved) -> dict[str, Reading]:
        at = event.event_time
        return {name: self._reading(name, at, value) for name, value in event.measured_values().items()}

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
        return next((rule for rule in self.rules.rules if rule.metric == metric), None)

    def _reading(self, metric: str, at: datetime, value: float | None, **extra: Any) -> Reading:
        rule = self._rule_for(metric)
        if rule is None:
            return Reading(at, value, breached=False, cleared=True, **extra)
        return threshold_reading(rule, at, value, **extra)


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
