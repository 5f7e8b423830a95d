"""The detection pipeline in one process: the feeds' reading path (``ioc.step``), then the alert manager.

The same pure steps as the stream agents, in the order the events are given (a recording's order).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ioc.alerts.manager import alerts_of, apply_anomaly, new_state
from ioc.alerts.rules import RuleSet
from ioc.backtest.scoring import RaisedAlert, Score, TruthScenario, alerts_from_anomalies, score
from ioc.city import City
from ioc.models.alert import Alert, AlertChange
from ioc.models.anomaly import Anomaly
from ioc.recording import RecordedEvent
from ioc.settings import Settings
from ioc.step import OfflineRun


@dataclass
class Outcome:
    events: int = 0
    rejected: int = 0  # dead letters: invalid, or too late for the feed's shortest window
    anomalies: list[Anomaly] = field(default_factory=list)


def detect(events: Iterable[RecordedEvent], rules: RuleSet, city: City, settings: Settings) -> Outcome:
    """The feeds' reading path (``ioc.step``, as the worker runs it) over recorded events in order; every
    anomaly it reports."""
    outcome = Outcome()
    for _, result in OfflineRun(settings, rules, city).run(events):
        outcome.events += result.records
        outcome.rejected += len(result.dead_letters)
        outcome.anomalies += result.anomalies
    return outcome


@dataclass
class ManagedAlerts:
    """The alert manager's result over a run: every alert once, as it last stood."""

    alerts: list[Alert] = field(default_factory=list)  # in opening order
    opened_at: dict[str, datetime] = field(default_factory=dict)  # alert id → event time it opened
    events: int = 0  # alert events the stream would have published


def manage(anomalies: Iterable[Anomaly], rules: RuleSet, city: City) -> ManagedAlerts:
    """Run the alert manager over the anomalies in order, one state per entity (as the stream keys it),
    no silences; return each alert id's latest version (severity the highest reached, status …)."""
    states: dict[str, dict[str, Any]] = {}
    latest: dict[str, Alert] = {}
    result = ManagedAlerts()
    for anomaly in anomalies:
        state = states.setdefault(anomaly.entity, new_state())
        for event in apply_anomaly(state, anomaly, rules, city):
            result.events += 1
            latest[event.alert.id] = event.alert
            if event.change == AlertChange.opened:
                result.opened_at[event.alert.id] = event.at
    # The state holds updates not worth publishing (count, last seen, peak): take its versions last.
    for state in states.values():
        for alert in alerts_of(state):
            latest[alert.id] = alert
    result.alerts = list(latest.values())
    return result


@dataclass
class RuleSetRun:
    """One rule set over a recording: what the detectors and the alert manager made of it."""

    source: str  # the rules as given: a packaged name or a path
    rules: RuleSet
    outcome: Outcome
    managed: ManagedAlerts
    score: Score | None = None  # against the ground truth, when there is one


def run_rules(
    events: Sequence[RecordedEvent],
    rules: RuleSet,
    city: City,
    settings: Settings,
    source: str,
    truth: list[TruthScenario] | None = None,
) -> RuleSetRun:
    """Detect, manage alerts and (with a ground truth) score, for one rule set."""
    outcome = detect(events, rules, city, settings)
    managed = manage(outcome.anomalies, rules, city)
    scored = None
    if truth is not None:
        _, reopened = alerts_from_anomalies(outcome.anomalies)  # what a manager without state would repeat
        scored = score(raised_alerts(managed), truth, rules, duplicates=reopened)
    return RuleSetRun(source, rules, outcome, managed, scored)


def raised_alerts(managed: ManagedAlerts) -> list[RaisedAlert]:
    """The managed alerts as the scoring sees them, opened at the event time of their opened event."""
    return [
        RaisedAlert(a.id, a.rule, a.entity, a.episode_start, managed.opened_at.get(a.id, a.episode_start))
        for a in managed.alerts
    ]
