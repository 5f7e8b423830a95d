"""The neighbourhood stage: a sensor judged beside its registry neighbours, in event time.

A sensor's detector sees only its own readings: its state lives where its partition is. Whether a
traffic detector's slow-down is its own (an incident: the detector far down, its neighbours less) or
the area's (rain, an event let out: the detector and most of its neighbours down alike) takes its
neighbours' readings at the same event time. So the reading path publishes, for each reading a
statistical rule scored, the reading's *deviation* from that rule's normal (``log1p(value) − normal``,
0 at the normal, −0.51 at 60 % of it) to every sensor that counts it as a neighbour, and to itself: the
topic ``<prefix>.<feed>.neighbours``, keyed by the receiving sensor (``Deviation``, ``audience``). This
stage, keyed by that sensor, keeps its neighbours' latest deviations and judges the sensor's own.

**Deterministic, in event time.** The sensor's reading at ``t`` is judged once every neighbour has
published something at or after ``t``: then each neighbour's deviation "as of t" (its latest at or
before ``t``, within ``horizon``) no longer depends on which partition's pipeline ran ahead. Each
sensor's records come from one partition's pipeline, in that pipeline's order, with rising times, so
any interleaving of the sensors gives the same judgements: online (catching up, crashed and restarted)
and offline alike. A record at or before its sensor's latest is a repeat (a republished batch) and is
ignored. A neighbour that says nothing still moves on: when the pipeline's silence clock finds a
sensor without a scored reading for ``SILENT_AFTER``, it publishes a deviation of None (no news) at
that time. A reading waits at most ``MAX_WAIT`` of the sensor's own event time, then is dropped
unjudged, and a member's records are kept back that far at most (a neighbour whose whole partition
stopped must not grow the state). Bounds in event time, not in counts: catching up, one partition's
pipeline may run hours ahead of another's, and a count would cut records a judgement still needs. So
online equals offline while the partitions stay within ``MAX_WAIT`` of each other.

State per sensor (JSON): ``{"v": 1, "seen": {sensor: [[epoch, deviation or None], …]}, "pending":
[[epoch, deviation], …], "conditions": {rule id: …}}`` — ``seen`` holds each member's latest records
back to what the oldest pending reading needs.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ioc.alerts.rules import Rule, RuleSet
from ioc.city import City
from ioc.detectors.condition import Condition, Subject
from ioc.models.anomaly import Anomaly

VERSION = 1
SILENT_AFTER = 15 * 60.0  # seconds without a scored reading after which a sensor publishes "no news"
MAX_WAIT = 2 * 86400.0  # seconds of its own event time a reading waits for its neighbours, at most


@dataclass(frozen=True, slots=True)
class Deviation:
    """One sensor's reading as its neighbours need it: how far from its normal, at what event time."""

    sensor_id: str
    at: float  # epoch seconds
    deviation: float | None  # log1p(value) − log1p(normal); None: no reading scored lately

    def to_json(self) -> bytes:
        return json.dumps({"sensorId": self.sensor_id, "at": self.at, "deviation": self.deviation}).encode()

    @classmethod
    def from_json(cls, value: bytes) -> Deviation:
        try:
            record = json.loads(value)
            at, deviation = record["at"], record["deviation"]
            if not isinstance(record["sensorId"], str) or not isinstance(at, int | float):
                raise TypeError
            if deviation is not None and not isinstance(deviation, int | float):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise ValueError("not a neighbour deviation: {sensorId, at, deviation}") from None
        if not math.isfinite(at) or (deviation is not None and not math.isfinite(deviation)):
            raise ValueError("a neighbour deviation's at and deviation are finite numbers")
        return cls(record["sensorId"], float(at), None if deviation is None else float(deviation))


def audience(city: City) -> dict[str, tuple[str, ...]]:
    """Sensor → the sensors that need its deviations: itself and every sensor that names it as a
    neighbour (the registry's lists need not be symmetric). Only sensors with neighbours take part."""
    needs: dict[str, list[str]] = {}
    for sensor in city.sensors:
        if sensor.neighbours:
            needs.setdefault(sensor.id, []).append(sensor.id)
            for neighbour in sensor.neighbours:
                needs.setdefault(neighbour, []).append(sensor.id)
    return {sensor_id: tuple(dict.fromkeys(ids)) for sensor_id, ids in needs.items()}


@dataclass(frozen=True)
class AreaParams:
    """What makes a slow-down the area's, from the rule's ``params``."""

    min_neighbours: int = 2  # neighbours with news at t, at least, to judge
    slowed_share: float = 0.66  # of them, at least this share under the trigger too
    local_contrast: float = 0.6  # a member under this share of the median: an incident, not the area
    horizon_minutes: float = 10  # a neighbour's deviation counts this long after its time

    @classmethod
    def of(cls, rule: Rule) -> AreaParams:
        known = {name for name in cls.__dataclass_fields__}
        knobs = {name: value for name, value in rule.params.items() if name in known}
        if "min_neighbours" in knobs:
            knobs["min_neighbours"] = int(knobs["min_neighbours"])
        return cls(**knobs)  # type: ignore[arg-type]


def new_state() -> dict[str, Any]:
    return {"v": VERSION, "seen": {}, "pending": [], "conditions": {}}


class Neighbourhood:
    """The stage for one feed: its rules that judge a sensor beside its neighbours (``params.of``: the
    statistical rule whose deviations they read), the registry's neighbours, the conditions."""

    def __init__(self, feed: str, rules: RuleSet, city: City) -> None:
        self.feed = feed
        self.city = city
        self.rules = [rule for rule in rules.for_feed(feed) if rule.feed == feed and "of" in rule.params]
        self.conditions = {rule.id: Condition(rule, rules) for rule in self.rules}
        self.params = {rule.id: AreaParams.of(rule) for rule in self.rules}
        self.neighbours = {s.id: tuple(s.neighbours) for s in city.sensors if s.neighbours}
        self.audience = audience(city)

    @property
    def shared_rules(self) -> frozenset[str]:
        """The statistical rules whose deviations the reading path must publish."""
        return frozenset(str(rule.params["of"]) for rule in self.rules)

    def records(self, deviation: Deviation) -> Iterable[tuple[str, Deviation]]:
        """(receiving sensor, record) for each sensor that needs this one's deviation."""
        return ((receiver, deviation) for receiver in self.audience.get(deviation.sensor_id, ()))

    def receive(self, state: dict[str, Any], sensor_id: str, record: Deviation) -> list[Anomaly]:
        """A member's record into the state of ``sensor_id``; the anomalies of the readings of
        ``sensor_id`` it lets be judged, in time order."""
        neighbours = self.neighbours.get(sensor_id)
        if neighbours is None or (record.sensor_id != sensor_id and record.sensor_id not in neighbours):
            return []  # not a member (a registry changed since it was sent)
        seen = state["seen"].setdefault(record.sensor_id, [])
        if seen and record.at <= seen[-1][0]:
            return []  # a repeat: a batch published again after a restart
        seen.append([record.at, record.deviation])
        pending = state["pending"]
        if record.sensor_id == sensor_id:
            if record.deviation is not None:
                pending.append([record.at, record.deviation])
            while pending and pending[0][0] < record.at - MAX_WAIT:
                del pending[0]
        found: list[Anomaly] = []
        while pending and all(self._latest(state, n) >= pending[0][0] for n in neighbours):
            at, deviation = pending.pop(0)
            found += self._judge(state, sensor_id, neighbours, at, deviation)
        self._forget(state, sensor_id)
        return found

    @staticmethod
    def _latest(state: dict[str, Any], sensor_id: str) -> float:
        seen = state["seen"].get(sensor_id)
        return seen[-1][0] if seen else -math.inf

    def _judge(
        self, state: dict[str, Any], sensor_id: str, neighbours: tuple[str, ...], at: float, deviation: float
    ) -> list[Anomaly]:
        sensor = self.city.sensor(sensor_id)
        subject = Subject(self.feed, sensor_id, sensor.district if sensor else "")
        found = []
        for rule in self.rules:
            params = self.params[rule.id]
            seen, horizon = state["seen"], params.horizon_minutes
            around = [d for n in neighbours if (d := _as_of(seen.get(n, ()), at, horizon)) is not None]
            condition = self.conditions[rule.id]
            value, breached, cleared = area_ratio(deviation, around, params, condition)
            if value is None:
                continue
            anomaly = condition.advance(
                state["conditions"], subject, None, at, value, breached, cleared, baseline=None
            )
            if anomaly is not None:
                found.append(anomaly)
        return found

    def _forget(self, state: dict[str, Any], sensor_id: str) -> None:
        """Keep of each member the records the oldest pending reading may still need (none older than
        ``MAX_WAIT`` before the member's latest: a sensor yet to report has no reading to bound them),
        and always its latest."""
        own = state["seen"].get(sensor_id)
        oldest = state["pending"][0][0] if state["pending"] else (own[-1][0] if own else None)
        horizon = max((p.horizon_minutes for p in self.params.values()), default=0) * 60
        for records in state["seen"].values():
            cutoff = records[-1][0] - MAX_WAIT
            if oldest is not None:
                cutoff = max(cutoff, oldest - horizon)
            keep = next((i for i, (t, _) in enumerate(records) if t >= cutoff), len(records) - 1)
            if keep > 0:
                del records[:keep]


def _as_of(records: Iterable[list[Any]], at: float, horizon_minutes: float) -> float | None:
    """A member's deviation as of ``at``: its latest record at or before ``at``, if within the horizon."""
    found = None
    for t, deviation in records:
        if t > at:
            break
        found = (t, deviation)
    if found is None or at - found[0] > horizon_minutes * 60:
        return None
    return found[1]


def area_ratio(
    deviation: float, around: list[float], params: AreaParams, condition: Condition
) -> tuple[float | None, bool, bool]:
    """(value, breached, cleared) of one reading beside its neighbours' deviations at its time. The
    value is the neighbourhood's speed as a share of its normal: exp of the median deviation of the
    sensor and its neighbours. Breached when it is under the rule's trigger, the sensor is too, as is at
    least ``slowed_share`` of its neighbours, and no member is under ``local_contrast`` of the median
    (that is an incident: the per-sensor rule's). None without ``min_neighbours`` neighbours with news."""
    if len(around) < params.min_neighbours:
        return None, False, False
    middle = statistics.median([deviation, *around])
    value = round(math.exp(middle), 3)
    breached, cleared = condition.judge(value)
    if breached:
        low, _ = condition.judge(math.exp(deviation))
        slowed = sum(1 for d in around if condition.judge(math.exp(d))[0]) / len(around)
        # One member far under the rest is an incident there, and the others its ripple (a road's
        # neighbours slow to about half when it is blocked).
        local = min(deviation, *around) - middle < math.log(params.local_contrast)
        breached = low and slowed >= params.slowed_share and not local
    return value, breached, cleared
