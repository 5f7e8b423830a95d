"""One rule's condition on one entity over event time: when it starts, while it holds, when it clears.

The rule's ``trigger`` opens an episode; only its ``clear`` threshold (on the far side of the trigger:
hysteresis) held for ``hold_minutes`` of event time closes it, so a value hovering at a threshold gives
one episode, not a flapping series. While firing, an update is reported when the severity changes, the
value reaches a new peak, or every ``report_every`` of event time — not on every reading, to keep
``ioc.anomalies`` small: 15 minutes, or for a rule over a longer window a 24th of it up to an hour (a
24-hour mean moves little in 15 minutes, and its reports were most of a day's alert traffic).

The state is one JSON-able dict per entity, rule id → condition, compact because every reading of a
sensor passes through every rule: a condition at rest is the event time it was last judged at (a
float: an older reading must not move it backwards); a firing one is the list ``[last judged, since,
clear since, peak, last reported, severity]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ioc.alerts.rules import Rule, RuleSet
from ioc.models.anomaly import Anomaly, Severity
from ioc.windows import window_seconds

UPDATE_EVERY = timedelta(minutes=15)  # while firing, a report at least this often…
UPDATE_EVERY_LONGEST = timedelta(hours=1)  # …or, for a rule over a long window, at least this often
PEAK_STEP = 0.05  # a new peak is reported when it beats the last reported one by 5 %

# Positions in a firing condition.
LAST, SINCE, CLEAR_SINCE, PEAK, REPORTED, SEVERITY = range(6)

Conditions = dict[str, Any]  # rule id → last judged (at rest) or the firing list


@dataclass(frozen=True)
class Subject:
    """What an evaluation is about, for the anomaly it may report."""

    feed: str
    entity: str
    district: str


@dataclass(frozen=True)
class Reading:
    """A rule's metric at one event time, and optionally what it is compared with."""

    at: datetime
    value: float | None
    breached: bool
    cleared: bool
    baseline: float | None = None
    band: str | None = None
    # When the condition truly began, if earlier than ``at`` (a silent sensor: its last reading).
    began: datetime | None = None


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def report_every(rule: Rule) -> float:
    """Seconds of event time between a firing condition's reports: the rule's ``report_minutes``, else a
    24th of its window, at least ``UPDATE_EVERY`` and at most ``UPDATE_EVERY_LONGEST``."""
    if rule.report_minutes is not None:
        return rule.report_minutes * 60
    share = window_seconds(rule.window) / 24
    return min(max(share, UPDATE_EVERY.total_seconds()), UPDATE_EVERY_LONGEST.total_seconds())


class Condition:
    """A rule made ready to judge readings: its thresholds and severity steps as plain numbers, so the
    hot path (every reading, every rule) is a few comparisons."""

    __slots__ = ("rule", "rule_id", "metric", "version", "above", "limit", "clear_above", "clear_limit",
                 "hold", "steps", "default_severity", "report_every")  # fmt: skip

    def __init__(self, rule: Rule, rules: RuleSet) -> None:
        self.rule = rule
        self.rule_id = rule.id
        self.metric = rule.metric
        self.version = rules.version
        trigger, clear = rule.trigger, rule.clear
        # above: True for "above", False for "below", None without a trigger (never breached).
        self.above = None if trigger is None else trigger.above is not None
        self.limit = None if trigger is None else trigger.limit
        self.clear_above = None if clear is None else clear.above is not None
        self.clear_limit = None if clear is None else clear.limit
        self.hold = rule.hold_minutes * 60
        self.steps = [(step.at, step.level) for step in rule.severity]
        self.default_severity = rule.default_severity
        self.report_every = report_every(rule)

    def judge(self, value: float | None) -> tuple[bool, bool]:
        """(breached, cleared): breached past the trigger, cleared past the clear threshold (else not
        breached). Without a value or a trigger: not breached, cleared."""
        if value is None or self.above is None:
            return False, True
        breached = value > self.limit if self.above else value < self.limit  # type: ignore[operator]
        if self.clear_above is None:
            return breached, not breached
        cleared = value > self.clear_limit if self.clear_above else value < self.clear_limit  # type: ignore[operator]
        return breached, cleared

    def never_breached(self, low: float, high: float) -> bool:
        """Whether no value from ``low`` to ``high`` breaches the trigger."""
        if self.above is None:
            return True
        return high <= self.limit if self.above else low >= self.limit  # type: ignore[operator]

    def severity_of(self, value: float | None) -> Severity:
        """The highest step the value reaches; the default below the first step (``Rule.severity_of``)."""
        level = self.default_severity
        if value is None or self.above is None:
            return level
        for at, step_level in self.steps:
            if (value >= at) if self.above else (value <= at):
                level = step_level
        return level

    def advance(
        self,
        conditions: Conditions,
        subject: Subject,
        at: datetime | None,
        epoch: float,
        value: float | None,
        breached: bool,
        cleared: bool,
        baseline: float | None = None,
        band: str | None = None,
        began: float | None = None,
    ) -> Anomaly | None:
        """Advance the condition with one reading at ``epoch``, reported as ``at`` (None: the epoch in
        UTC); ``began``: when the condition truly began, if earlier (epoch). Return the anomaly to
        report, if any. Mutates ``conditions``."""
        rule_id = self.rule_id
        state = conditions.get(rule_id)
        if type(state) is not list:  # at rest (or new): the common case, kept short
            if state is not None and epoch < state:
                return None  # an older reading (late event) does not move the condition backwards
            if not breached:
                conditions[rule_id] = epoch
                return None
            # To the microsecond, as an event time is.
            since = _utc(began).timestamp() if began is not None else epoch
            state = [epoch, since, None, value, epoch, self.severity_of(value)]
            conditions[rule_id] = state
            return self._anomaly(state, subject, at, epoch, value, baseline, band, firing=True)

        if epoch < state[LAST]:
            return None
        state[LAST] = epoch
        if cleared:
            if state[CLEAR_SINCE] is None:
                state[CLEAR_SINCE] = epoch
            if epoch - state[CLEAR_SINCE] >= self.hold:
                conditions[rule_id] = epoch
                return self._anomaly(state, subject, at, epoch, value, baseline, band, firing=False)
            return None
        state[CLEAR_SINCE] = None
        if not breached:
            return None  # between the clear and trigger thresholds: still the same episode, nothing new
        severity = self.severity_of(value)
        new_peak = self._beyond(value, state[PEAK])
        due = epoch - state[REPORTED] >= self.report_every
        if severity != state[SEVERITY] or new_peak or due:
            if new_peak:
                state[PEAK] = value
            state[SEVERITY], state[REPORTED] = severity, epoch
            return self._anomaly(state, subject, at, epoch, value, baseline, band, firing=True)
        return None

    def _beyond(self, value: float | None, peak: float | None) -> bool:
        if value is None or peak is None or self.above is None:
            return False
        if self.above:
            return value > peak + abs(peak) * PEAK_STEP
        return value < peak - abs(peak) * PEAK_STEP

    def _anomaly(
        self,
        state: list[Any],
        subject: Subject,
        at: datetime | None,
        epoch: float,
        value: float | None,
        baseline: float | None,
        band: str | None,
        *,
        firing: bool,
    ) -> Anomaly:
        rule = self.rule
        return Anomaly(
            rule=rule.id,
            rule_version=self.version,
            kind=rule.kind,
            feed=subject.feed,
            entity=subject.entity,
            district=subject.district,
            firing=firing,
            episode_start=_utc(state[SINCE]),
            observed_at=at if at is not None else _utc(epoch),
            window=rule.window,
            metric=rule.metric,
            value=value,
            unit=rule.unit,
            threshold=self.limit,
            baseline=baseline,
            severity=state[SEVERITY],
            band=band,
        )


def firing(conditions: Conditions, rule_id: str) -> bool:
    """Whether the rule's condition is in an episode."""
    return type(conditions.get(rule_id)) is list


def threshold_reading(rule: Rule, at: datetime, value: float | None, **extra: Any) -> Reading:
    """The usual case: breached past the trigger, cleared past the clear threshold (else the trigger)."""
    if value is None or rule.trigger is None:
        return Reading(at, value, breached=False, cleared=True, **extra)
    breached = rule.trigger.crossed(value)
    cleared = rule.clear.crossed(value) if rule.clear is not None else not breached
    return Reading(at, value, breached=breached, cleared=cleared, **extra)


def evaluate(
    conditions: Conditions, rule: Rule, rules: RuleSet, subject: Subject, reading: Reading
) -> Anomaly | None:
    """Advance the rule's condition in ``conditions`` with one reading; return the anomaly to report, if
    any. A convenience for one-off use: the detector keeps its ``Condition`` per rule."""
    return Condition(rule, rules).advance(
        conditions,
        subject,
        reading.at,
        reading.at.timestamp(),
        reading.value,
        reading.breached,
        reading.cleared,
        reading.baseline,
        reading.band,
        reading.began.timestamp() if reading.began is not None else None,
    )


def upgrade_conditions(old: dict[str, dict[str, Any]]) -> Conditions:
    """The first format's conditions (a dict per rule: last, since, clear_since, peak, reported,
    severity) in this one."""
    conditions: Conditions = {}
    for rule_id, state in old.items():
        if state.get("since") is not None:
            conditions[rule_id] = [state["last"], state["since"], state.get("clear_since"), state.get("peak"),
                                   state["reported"], state["severity"]]  # fmt: skip
        elif state.get("last") is not None:
            conditions[rule_id] = state["last"]
    return conditions
