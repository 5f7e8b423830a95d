"""The alert manager: from detectors' anomalies and operators' commands to alert events.

It runs in an agent that consumes ``<prefix>.anomalies`` keyed by *entity*, so every alert of one
sensor or station is in one state (one table value per entity) and inhibition is local. The functions
here are pure: they read and **mutate** the state dict they are given (write it back to the table) and
return the events to publish on ``<prefix>.alerts`` (key: ``event.key``, the alert id).

Lifecycle, per fingerprint (rule|entity), following the detector's episodes:

* ``firing=True`` and no unresolved alert → **opened**; its id is ``alert_id(rule, entity,
  episode_start)``, so a replay or a retry gives the same id.
* ``firing=True`` on the open episode → count, last-seen, peak (in the rule's direction) and severity
  (the highest reached) are updated in the state every time, but an **updated** event is published
  only when an operator would see a difference: the severity rose, the peak moved past the last
  published one by ``PEAK_STEP`` (relative), or ``HEARTBEAT`` of event time went by since the last
  published event (so the shown last-seen is never staler than that). This keeps ``ioc.alerts`` small.
* ``firing=False`` → **resolved** by ``system`` at the clearing observation's time.
* ``firing=True`` with a *later* episode start while an alert is unresolved (the detector lost its
  clear, e.g. it restarted) → the old alert is resolved by ``system`` and a new one opened.
* An alert an operator resolved stays resolved while its episode keeps firing; the next episode (a new
  episode start) opens a new alert. RESOLVED is final; ACKNOWLEDGED → RESOLVED is allowed.

Idempotency: per fingerprint the manager remembers the last anomaly it applied, ordered by
(observed_at, firing before clearing at the same instant), and ignores anything not after it — a
redelivered or retried anomaly changes nothing. Per fingerprint the state keeps one alert: the
unresolved one, or the last resolved one (for idempotency and for operators' late commands); it is
replaced when the next episode opens, so state stays bounded by (rules × entities).

Every event carries the full alert and a per-alert ``revision`` (+1 per event): consumers keep the
highest revision per alert id. After each input the suppression of every unresolved alert of the
entity is recomputed (inhibition by an unresolved device fault first, then the active silences at the
input's event time); a change is published as **suppressed** / **unsuppressed**, folded into the
input's own event for the alert it opened or updated.

State (JSON, one per entity)::

    {"version": 1,
     "fingerprints": {"<rule>|<entity>": {
         "applied": ["<observed_at ISO>", <firing>],     # last anomaly applied
         "alert": {<Alert, wire JSON>} | null,           # unresolved, or the last resolved
         "revision": <int>,                              # of that alert's last event
         "published": {"severity": s, "peak": x, "lastSeen": "<ISO>"} | null}}}
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ioc.alerts import messages
from ioc.alerts.inhibit import inhibitor
from ioc.alerts.rules import Rule, RuleSet
from ioc.alerts.silence import Silence, silencing
from ioc.city import City
from ioc.models.alert import (
    SEVERITY_RANK,
    Alert,
    AlertChange,
    AlertCommand,
    AlertEvent,
    AlertStatus,
    Evidence,
    Suppression,
    worst,
)
from ioc.models.anomaly import Anomaly, RuleKind, alert_id

STATE_VERSION = 1
SYSTEM = "system"  # resolved_by when the condition cleared
PEAK_STEP = 0.10  # publish an update when the peak moves 10 % past the last published peak
HEARTBEAT = timedelta(minutes=15)  # …or when this much event time passed since the last published event

# When one input changes an alert in several ways, its one event names the most telling change.
_PRIORITY = {
    AlertChange.opened: 4,
    AlertChange.resolved: 3,
    AlertChange.acknowledged: 2,
    AlertChange.suppressed: 1,
    AlertChange.unsuppressed: 1,
    AlertChange.updated: 0,
}


@dataclass(frozen=True)
class CommandResult:
    """What an operator command did: the events to publish, or why nothing was done."""

    events: list[AlertEvent] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def new_state() -> dict[str, Any]:
    return {"version": STATE_VERSION, "fingerprints": {}}


def apply_anomaly(
    state: dict[str, Any],
    anomaly: Anomaly,
    rules: RuleSet,
    city: City,
    silences: Iterable[Silence] = (),
) -> list[AlertEvent]:
    """Apply one detector report to the entity's state; return the alert events it causes."""
    records: dict[str, dict[str, Any]] = state["fingerprints"]
    fingerprint = anomaly.fingerprint
    record = records.get(fingerprint)
    if record is not None and not _after(anomaly, record["applied"]):
        return []  # a retry, a redelivery, or older than what was applied
    if record is None:
        record = records[fingerprint] = {"applied": None, "alert": None, "revision": 0, "published": None}
    record["applied"] = [anomaly.observed_at.isoformat(), anomaly.firing]

    at = anomaly.observed_at
    rule = _rule(rules, anomaly.rule)
    current = _alert(record)
    events: list[AlertEvent] = []
    changes: dict[str, AlertChange] = {}
    if anomaly.firing:
        if current is None or anomaly.episode_start > current.episode_start:
            if current is not None and current.unresolved:  # the detector's clear never came
                events.append(
                    _publish(record, AlertChange.resolved, _resolved(current, SYSTEM, at, None), at)
                )
            _store(record, _opened(anomaly, rule, city), revision=0)
            changes[fingerprint] = AlertChange.opened
        elif current.unresolved and anomaly.episode_start == current.episode_start:
            observed = _observed(current, anomaly, rule, city)
            _store(record, observed)
            if _worth_publishing(observed, record["published"], _rising(rule, anomaly)):
                changes[fingerprint] = AlertChange.updated
        # else: the episode is resolved already (by an operator) or older than the one held: nothing
    elif current is not None and current.unresolved and anomaly.episode_start >= current.episode_start:
        _store(record, _resolved(current, SYSTEM, at, None))
        changes[fingerprint] = AlertChange.resolved

    _resuppress(records, silences, at, changes)
    events.extend(_publish(records[fp], change, _alert(records[fp]), at) for fp, change in changes.items())
    return events


def apply_command(
    state: dict[str, Any], command: AlertCommand, silences: Iterable[Silence] = ()
) -> CommandResult:
    """Acknowledge or resolve an alert of this entity. An unknown id or a transition the lifecycle does
    not allow is an error result (nothing changes); the same command applied again is a no-op."""
    records: dict[str, dict[str, Any]] = state["fingerprints"]
    found = next(
        (fp for fp, record in records.items() if (record["alert"] or {}).get("id") == command.alert_id), None
    )
    if found is None:
        return CommandResult(
            error=f"no alert {command.alert_id} on {command.entity}: unknown, or resolved and replaced "
            "by a newer episode"
        )
    record = records[found]
    alert = _alert(record)
    assert alert is not None
    if command.action == "acknowledge":
        if alert.status == AlertStatus.open:
            update = {
                "acknowledged_by": command.by,
                "acknowledged_at": command.at,
                "acknowledged_note": command.note,
            }
            acknowledged = alert.model_copy(update={"status": AlertStatus.acknowledged} | update)
            _store(record, acknowledged)
            return CommandResult([_publish(record, AlertChange.acknowledged, acknowledged, command.at)])
        if (alert.acknowledged_by, alert.acknowledged_at) == (command.by, command.at):
            return CommandResult()  # this very command, again
        who = alert.acknowledged_by if alert.status == AlertStatus.acknowledged else alert.resolved_by
        return CommandResult(
            error=f"alert {alert.id} cannot be acknowledged: it is already {alert.status.value} by {who}"
        )

    if alert.unresolved:
        resolved = _resolved(alert, command.by, command.at, command.note)
        _store(record, resolved)
        changes = {found: AlertChange.resolved}
        if alert.kind == RuleKind.device_fault:  # its inhibition ends with it
            _resuppress(records, silences, command.at, changes)
        return CommandResult(
            [_publish(records[fp], c, _alert(records[fp]), command.at) for fp, c in changes.items()]
        )
    if (alert.resolved_by, alert.resolved_at) == (command.by, command.at):
        return CommandResult()
    return CommandResult(
        error=f"alert {alert.id} is already resolved by {alert.resolved_by} at "
        f"{alert.resolved_at.isoformat() if alert.resolved_at else '?'}; a resolved alert is final"
    )


def apply_silences(state: dict[str, Any], silences: Iterable[Silence], at: datetime) -> list[AlertEvent]:
    """Re-judge the entity's unresolved alerts against the silences active at event time ``at`` (a silence
    was created or edited, or one started or ended); return the suppressed / unsuppressed events."""
    records: dict[str, dict[str, Any]] = state["fingerprints"]
    changes: dict[str, AlertChange] = {}
    _resuppress(records, silences, at, changes)
    return [_publish(records[fp], change, _alert(records[fp]), at) for fp, change in changes.items()]


def has_unresolved(state: dict[str, Any]) -> bool:
    return any(alert.unresolved for alert in alerts_of(state))


def alerts_of(state: dict[str, Any]) -> list[Alert]:
    """The alerts the state holds (unresolved ones and the last resolved per fingerprint)."""
    return [alert for record in state["fingerprints"].values() if (alert := _alert(record)) is not None]


# --- steps ------------------------------------------------------------------------------------------


def _after(anomaly: Anomaly, applied: list[Any]) -> bool:
    """Whether the anomaly comes after the last applied one: later, or a clear at the same instant as a
    firing report (a sensor-health rule with no hold time may fire and clear on one event time)."""
    applied_at = datetime.fromisoformat(applied[0])
    if anomaly.observed_at != applied_at:
        return anomaly.observed_at > applied_at
    return applied[1] and not anomaly.firing


def _rule(rules: RuleSet, rule_id: str) -> Rule | None:
    try:
        return rules.get(rule_id)
    except KeyError:  # a detector on a newer rules file: keep working with what the anomaly says
        return None


def _rising(rule: Rule | None, anomaly: Anomaly) -> bool:
    """Whether higher values are worse (the rule fires *above* its threshold)."""
    if rule is not None and rule.trigger is not None:
        return rule.trigger.above is not None
    if anomaly.threshold is not None and anomaly.value is not None:
        return anomaly.value >= anomaly.threshold
    return True


def _evidence(anomaly: Anomaly) -> Evidence:
    return Evidence(
        observed_at=anomaly.observed_at,
        metric=anomaly.metric,
        window=anomaly.window,
        value=anomaly.value,
        unit=anomaly.unit,
        threshold=anomaly.threshold,
        baseline=anomaly.baseline,
        band=anomaly.band,
        severity=anomaly.severity,
        rule_version=anomaly.rule_version,
    )


def _with_text(alert: Alert, rule: Rule | None, rising: bool, city: City) -> Alert:
    """The alert with its title and text for its current figures: a VN_AQI alert's name follows the band
    its peak reached (``messages.alert_name``); the id never changes. A rule the manager does not know
    keeps its id as its name: nothing says what its threshold means."""
    name = messages.rule_name(rule, alert.rule)
    if rule is not None:
        name = messages.alert_name(name, alert.evidence.metric, alert.peak)
    title = messages.alert_title(name, alert.entity_name, alert.district_name)
    text = messages.alert_text(alert, name, rising, city.timezone)
    return alert.model_copy(update={"title": title, "text": text})


def _opened(anomaly: Anomaly, rule: Rule | None, city: City) -> Alert:
    sensor = city.sensor(anomaly.entity)
    district = city.district(anomaly.district)
    entity_name = sensor.name if sensor is not None else anomaly.entity
    district_name = district.name if district is not None else anomaly.district
    title = messages.alert_title(messages.rule_name(rule, anomaly.rule), entity_name, district_name)
    alert = Alert(
        id=alert_id(anomaly.rule, anomaly.entity, anomaly.episode_start),
        fingerprint=anomaly.fingerprint,
        rule=anomaly.rule,
        rule_version=anomaly.rule_version,
        kind=anomaly.kind,
        feed=anomaly.feed,
        entity=anomaly.entity,
        entity_name=entity_name,
        district=anomaly.district,
        district_name=district_name,
        severity=anomaly.severity,
        episode_start=anomaly.episode_start,
        last_seen=anomaly.observed_at,
        peak=anomaly.value,
        evidence=_evidence(anomaly),
        title=title,  # both replaced just below: they need the alert
        text=title,
    )
    return _with_text(alert, rule, _rising(rule, anomaly), city)


def _observed(alert: Alert, anomaly: Anomaly, rule: Rule | None, city: City) -> Alert:
    rising = _rising(rule, anomaly)
    peak = alert.peak
    if anomaly.value is not None and (
        peak is None or (anomaly.value > peak if rising else anomaly.value < peak)
    ):
        peak = anomaly.value
    updated = alert.model_copy(
        update={
            "count": alert.count + 1,
            "last_seen": anomaly.observed_at,
            "peak": peak,
            "severity": worst(alert.severity, anomaly.severity),
            "evidence": _evidence(anomaly),
        }
    )
    return _with_text(updated, rule, rising, city)


def _resolved(alert: Alert, by: str, at: datetime, note: str | None) -> Alert:
    return alert.model_copy(
        update={"status": AlertStatus.resolved, "resolved_by": by, "resolved_at": at, "resolved_note": note}
    )


def _worth_publishing(alert: Alert, published: dict[str, Any] | None, rising: bool) -> bool:
    if published is None:
        return True
    if SEVERITY_RANK[alert.severity] > SEVERITY_RANK[published["severity"]]:
        return True
    # The title names the peak's band: a band risen within one severity (Rất xấu → Nguy hại) is shown.
    metric = alert.evidence.metric
    if messages.peak_band(metric, alert.peak) != messages.peak_band(metric, published["peak"]):
        return True
    if alert.last_seen - datetime.fromisoformat(published["lastSeen"]) >= HEARTBEAT:
        return True
    shown = published["peak"]
    if alert.peak is None or shown is None:
        return alert.peak != shown
    gain = alert.peak - shown if rising else shown - alert.peak
    return gain > PEAK_STEP * abs(shown) if shown else gain > 0


def _resuppress(
    records: dict[str, dict[str, Any]],
    silences: Iterable[Silence],
    at: datetime,
    changes: dict[str, AlertChange],
) -> None:
    """Recompute the suppression of every unresolved alert; record changes in ``changes``."""
    silences = list(silences)
    held = {fp: alert for fp, record in records.items() if (alert := _alert(record)) is not None}
    for fp in sorted(held):
        alert = held[fp]
        if not alert.unresolved:
            continue  # a resolved alert keeps the suppression it ended with
        wanted = _suppression(alert, held.values(), silences, at)
        if wanted == alert.suppressed_by:
            continue
        _store(records[fp], alert.model_copy(update={"suppressed_by": wanted}))
        change = AlertChange.suppressed if wanted is not None else AlertChange.unsuppressed
        if fp not in changes or _PRIORITY[change] > _PRIORITY[changes[fp]]:
            changes[fp] = change


def _suppression(
    alert: Alert, alerts: Iterable[Alert], silences: list[Silence], at: datetime
) -> Suppression | None:
    fault = inhibitor(alert, alerts)
    if fault is not None:
        return Suppression(inhibited_by=fault.id)
    silence = silencing(alert, silences, at)
    return Suppression(silence=silence.id) if silence is not None else None


def _alert(record: dict[str, Any]) -> Alert | None:
    return Alert.model_validate(record["alert"]) if record["alert"] is not None else None


def _store(record: dict[str, Any], alert: Alert, revision: int | None = None) -> None:
    if revision is not None:  # a new alert in this fingerprint: its own revisions and publications
        record["revision"], record["published"] = revision, None
    record["alert"] = alert.to_state()


def _publish(record: dict[str, Any], change: AlertChange, alert: Alert | None, at: datetime) -> AlertEvent:
    assert alert is not None
    record["revision"] += 1
    record["published"] = {
        "severity": alert.severity.value,
        "peak": alert.peak,
        "lastSeen": alert.last_seen.isoformat(),
    }
    return AlertEvent(change=change, revision=record["revision"], at=at, alert=alert)
