"""One rule's condition on one entity over event time: when it starts, while it holds, when it clears.

The rule's ``trigger`` opens an episode; only its ``clear`` threshold (on the far side of the trigger:
hysteresis) held for ``hold_minutes`` of event time closes it, so a value hovering at a threshold gives
one episode, not a flapping series. While firing, an update is reported when the severity changes, the
value reaches a new peak, or every ``UPDATE_EVERY`` of event time — not on every reading, to keep
``ioc.anomalies`` small. The state is a small JSON-able dict per (entity, rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ioc.alerts.rules import Rule, RuleSet
from ioc.models.anomaly import Anomaly

UPDATE_EVERY = timedelta(minutes=15)
PEAK_STEP = 0.05  # a new peak is reported when it beats the last reported one by 5 %


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


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def threshold_reading(rule: Rule, at: datetime, value: float | None, **extra: Any) -> Reading:
    """The usual case: breached past the trigger, cleared past the clear threshold (else the trigger)."""
    if value is None or rule.trigger is None:
        return Reading(at, value, breached=False, cleared=True, **extra)
    breached = rule.trigger.crossed(value)
    cleared = rule.clear.crossed(value) if rule.clear is not None else not breached
    return Reading(at, value, breached=breached, cleared=cleared, **extra)


def evaluate(
    state: dict[str, Any], rule: Rule, rules: RuleSet, subject: Subject, reading: Reading
) -> Anomaly | None:
    """Advance the condition with one reading; return the anomaly to report, if any. Mutates ``state``."""
    at = _epoch(reading.at)
    if state.get("last") is not None and at < state["last"]:
        return None  # an older reading (late event) does not move the condition backwards
    state["last"] = at
    firing = state.get("since") is not None

    if not firing:
        if not reading.breached:
            return None
        began = _epoch(reading.began) if reading.began is not None else at
        state.update(since=began, clear_since=None, peak=reading.value, reported=at)
        state["severity"] = rule.severity_of(reading.value)
        return _anomaly(state, rule, rules, subject, reading, firing=True)

    if reading.cleared:
        state["clear_since"] = state["clear_since"] if state.get("clear_since") is not None else at
        if at - state["clear_since"] >= rule.hold_minutes * 60:
            anomaly = _anomaly(state, rule, rules, subject, reading, firing=False)
            state.clear()
            state["last"] = at
            return anomaly
        return None

    state["clear_since"] = None
    if not reading.breached:
        return None  # between the clear and trigger thresholds: still the same episode, nothing new
    severity = rule.severity_of(reading.value)
    new_peak = _beyond(rule, reading.value, state.get("peak"))
    due = at - state["reported"] >= UPDATE_EVERY.total_seconds()
    if severity != state["severity"] or new_peak or due:
        if new_peak:
            state["peak"] = reading.value
        state.update(severity=severity, reported=at)
        return _anomaly(state, rule, rules, subject, reading, firing=True)
    return None


def _beyond(rule: Rule, value: float | None, peak: float | None) -> bool:
    if value is None or peak is None or rule.trigger is None:
        return False
    if rule.trigger.above is not None:
        return value > peak + abs(peak) * PEAK_STEP
    return value < peak - abs(peak) * PEAK_STEP


def _anomaly(
    state: dict[str, Any], rule: Rule, rules: RuleSet, subject: Subject, reading: Reading, *, firing: bool
) -> Anomaly:
    return Anomaly(
        rule=rule.id,
        rule_version=rules.version,
        kind=rule.kind,
        feed=subject.feed,
        entity=subject.entity,
        district=subject.district,
        firing=firing,
        episode_start=_utc(state["since"]),
        observed_at=reading.at,
        window=rule.window,
        metric=rule.metric,
        value=reading.value,
        unit=rule.unit,
        threshold=rule.trigger.limit if rule.trigger is not None else None,
        baseline=reading.baseline,
        severity=state["severity"],
        band=reading.band,
    )
