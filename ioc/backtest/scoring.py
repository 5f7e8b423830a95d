"""Alerts against a ground truth (the simulator's ``--truth`` file): recall, precision, delay, duplicates.

An alert *matches* a scenario when its rule is one the scenario accepts, its entity is one of the
scenario's, and its episode began between ``TOLERANCE`` before the scenario's start and ``TOLERANCE``
after its end. A scenario accepts the rules it expects and their *consequences*: the other city rules
(standard or statistical) of the feeds those watch. A city anomaly changes its feed's readings, and may
breach more of that feed's limits than the ones it is sure to (a pollution episode lifts the 24-hour
PM10 mean past QCVN 05 only when it lasts over about 7 hours): such an alert is right, not a false one,
and it finds the scenario, but "every rule" recall asks only for the expected ones. A device fault has
no consequences: an index it moves is wrong.

Delay is from the scenario's start to the event time the alert opened, in windows of the rule (a 1-hour
index counts in hours, a 5-minute detector in 5 minutes).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ValidationError

from ioc.alerts.rules import RuleSet
from ioc.models.anomaly import Anomaly, RuleKind, alert_id
from ioc.windows import window_seconds

TOLERANCE = timedelta(minutes=30)


class TruthScenario(BaseModel):
    id: str
    kind: str
    entities: list[str]
    district: str
    start: AwareDatetime
    end: AwareDatetime
    rules: list[str]


class TruthError(ValueError):
    """A ground-truth file that cannot be read, with the line and why."""


def load_truth(path: Path) -> list[TruthScenario]:
    """The scenarios of a ground-truth JSON Lines file (``ioc simulate --truth``), one a line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise TruthError(f"{path}: not a ground-truth file (not UTF-8 text)") from None
    scenarios = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            scenarios.append(TruthScenario.model_validate_json(line))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise TruthError(f"{path}:{number}: {where + ': ' if where else ''}{first['msg']}") from None
    return scenarios


@dataclass(frozen=True)
class RaisedAlert:
    id: str
    rule: str
    entity: str
    episode_start: datetime
    opened_at: datetime


def alerts_from_anomalies(anomalies: Iterable[Anomaly]) -> tuple[list[RaisedAlert], int]:
    """One alert per episode, in opening order, and how many times an episode was opened again."""
    alerts: dict[str, RaisedAlert] = {}
    open_ids: set[str] = set()
    reopened = 0
    for anomaly in anomalies:
        ident = alert_id(anomaly.rule, anomaly.entity, anomaly.episode_start)
        if anomaly.firing and ident not in alerts:
            alerts[ident] = RaisedAlert(ident, anomaly.rule, anomaly.entity, anomaly.episode_start,
                                        anomaly.observed_at)  # fmt: skip
            open_ids.add(ident)
        elif anomaly.firing and ident not in open_ids:
            reopened += 1
        elif not anomaly.firing:
            open_ids.discard(ident)
    return list(alerts.values()), reopened


@dataclass
class Score:
    scenarios: int
    alerts: int
    recalled: list[str] = field(default_factory=list)
    fully_recalled: list[str] = field(default_factory=list)  # every expected rule alerted
    missed: list[str] = field(default_factory=list)
    matched_alerts: int = 0
    unmatched: list[RaisedAlert] = field(default_factory=list)
    delays_windows: list[float] = field(default_factory=list)
    duplicates: int = 0

    @property
    def recall(self) -> float:
        return len(self.recalled) / self.scenarios if self.scenarios else 1.0

    @property
    def precision(self) -> float:
        return self.matched_alerts / self.alerts if self.alerts else 1.0

    @property
    def median_delay_windows(self) -> float | None:
        return statistics.median(self.delays_windows) if self.delays_windows else None

    def summary(self) -> dict[str, object]:
        return {
            "scenarios": self.scenarios,
            "alerts": self.alerts,
            "recall": round(self.recall, 3),
            "recall_every_rule": round(len(self.fully_recalled) / self.scenarios, 3)
            if self.scenarios
            else 1.0,
            "precision": round(self.precision, 3),
            "median_delay_windows": self.median_delay_windows,
            "duplicates": self.duplicates,
            "missed": self.missed,
            "unmatched": [f"{a.rule} {a.entity} {a.episode_start.isoformat()}" for a in self.unmatched],
        }


def score(
    alerts: list[RaisedAlert], truth: list[TruthScenario], rules: RuleSet, duplicates: int = 0
) -> Score:
    result = Score(scenarios=len(truth), alerts=len(alerts), duplicates=duplicates)
    matched: set[str] = set()
    for scenario in truth:
        accepted = accepted_rules(scenario, rules)
        hits = [a for a in alerts if _matches(a, scenario, accepted)]
        matched.update(a.id for a in hits)
        if not hits:
            result.missed.append(scenario.id)
            continue
        result.recalled.append(scenario.id)
        if {a.rule for a in hits} >= set(scenario.rules):
            result.fully_recalled.append(scenario.id)
        first = min(hits, key=lambda a: a.opened_at)
        size = window_seconds(rules.get(first.rule).window)
        result.delays_windows.append(max(0.0, (first.opened_at - scenario.start).total_seconds() / size))
    result.matched_alerts = len(matched)
    result.unmatched = [a for a in alerts if a.id not in matched]
    return result


def accepted_rules(scenario: TruthScenario, rules: RuleSet) -> set[str]:
    """The rules the scenario expects, and the other city rules of the feeds those watch."""
    city_kinds = (RuleKind.standard, RuleKind.statistical)
    known = {rule.id: rule for rule in rules.rules}
    expected = [known[rule_id] for rule_id in scenario.rules if rule_id in known]
    feeds = {rule.feed for rule in expected if rule.kind in city_kinds and rule.feed is not None}
    consequences = {rule.id for rule in rules.rules if rule.feed in feeds and rule.kind in city_kinds}
    return set(scenario.rules) | consequences


def _matches(alert: RaisedAlert, scenario: TruthScenario, accepted: set[str]) -> bool:
    return (
        alert.rule in accepted
        and alert.entity in scenario.entities
        and scenario.start - TOLERANCE <= alert.episode_start <= scenario.end + TOLERANCE
    )
