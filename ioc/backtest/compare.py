"""Two rule sets' alerts over one recording, side by side: what a rules change would change.

Alerts are paired first by id (rule, entity, episode start), then — since a moved threshold moves the
start of the same episode, and so its id — by fingerprint (rule|entity) when the episodes overlap in
event time, earliest first, one to one. A pair whose severity (the highest reached) or start differs is
*changed*; an alert without a pair is *only* in its rule set.

The JSON report (:func:`to_json`), keys in this order::

    {"format": "ioc-backtest", "version": 1,
     "run": {…what the caller says about the run: recording, events, seconds…},
     "baseline":  {"rules": "<name or path>", "version": "<rules version>", "anomalies": n,
                   "alertEvents": n, "alerts": n, "truth": {<Score.summary(), camelCase keys>} | null},
     "candidate": {…the same…},
     "diff": {"counts": {"onlyCandidate": n, "onlyBaseline": n, "changed": n, "severityChanged": n,
                         "moved": n, "same": n},
              "onlyCandidate": [<alert>…], "onlyBaseline": [<alert>…],
              "changed": [{"rule", "entity", "district", "severity": {"baseline", "candidate"},
                           "startShiftSeconds": candidate start - baseline start,
                           "baseline": <alert>, "candidate": <alert>}…]},
     "perRule":     {"<rule>":     {"baseline": n, "candidate": n, "delta": candidate - baseline}},
     "perDistrict": {"<district>": {"baseline": n, "candidate": n, "delta": n}}}

    <alert> = {"id", "rule", "entity", "district", "severity", "status", "episodeStart", "openedAt",
               "resolvedAt", "peak", "count"}

Times are ISO 8601 with their offset; lists are in episode-start order, maps sorted by key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from pydantic.alias_generators import to_camel
from rich.table import Table

from ioc.backtest.run import RuleSetRun
from ioc.models.alert import Alert

FORMAT = "ioc-backtest"
VERSION = 1


@dataclass(frozen=True)
class Pair:
    """One episode as both rule sets alerted it."""

    baseline: Alert
    candidate: Alert

    @property
    def severity_changed(self) -> bool:
        return self.baseline.severity != self.candidate.severity

    @property
    def start_shift_seconds(self) -> float:
        return (self.candidate.episode_start - self.baseline.episode_start).total_seconds()

    @property
    def changed(self) -> bool:
        return self.severity_changed or self.start_shift_seconds != 0


@dataclass(frozen=True)
class Comparison:
    baseline: RuleSetRun
    candidate: RuleSetRun
    only_candidate: list[Alert]
    only_baseline: list[Alert]
    changed: list[Pair]
    same: int
    per_rule: dict[str, tuple[int, int]]  # rule → (baseline, candidate) alert counts
    per_district: dict[str, tuple[int, int]]


def compare(baseline: RuleSetRun, candidate: RuleSetRun) -> Comparison:
    """Pair the two runs' alerts and count them per rule and per district."""
    pairs, only_baseline, only_candidate = pair_alerts(baseline.managed.alerts, candidate.managed.alerts)
    # Every rule of either set appears, so a rule that alerts in neither shows as 0 → 0.
    rule_ids = {rule.id for rule in baseline.rules.rules} | {rule.id for rule in candidate.rules.rules}
    return Comparison(
        baseline=baseline,
        candidate=candidate,
        only_candidate=only_candidate,
        only_baseline=only_baseline,
        changed=[pair for pair in pairs if pair.changed],
        same=sum(not pair.changed for pair in pairs),
        per_rule=_counts(baseline.managed.alerts, candidate.managed.alerts, "rule", rule_ids),
        per_district=_counts(baseline.managed.alerts, candidate.managed.alerts, "district", set()),
    )


def pair_alerts(
    baseline: Iterable[Alert], candidate: Iterable[Alert]
) -> tuple[list[Pair], list[Alert], list[Alert]]:
    """Pairs of the same episode, the baseline's unpaired alerts, the candidate's; each in start order."""
    left = sorted(baseline, key=_start_order)
    right = sorted(candidate, key=_start_order)
    right_by_id = {alert.id: alert for alert in right}
    pairs = [Pair(alert, right_by_id[alert.id]) for alert in left if alert.id in right_by_id]
    taken = {pair.baseline.id for pair in pairs}
    left_rest = [alert for alert in left if alert.id not in taken]
    unpaired: dict[str, list[Alert]] = {}  # the candidate's rest by fingerprint, in start order
    for alert in right:
        if alert.id not in taken:
            unpaired.setdefault(alert.fingerprint, []).append(alert)
    for alert in left_rest:
        same_fingerprint = unpaired.get(alert.fingerprint, [])
        match = next((other for other in same_fingerprint if _overlap(alert, other)), None)
        if match is not None:
            pairs.append(Pair(alert, match))
            same_fingerprint.remove(match)
            taken.add(alert.id)
    pairs.sort(key=lambda pair: _start_order(pair.baseline))
    only_candidate = sorted((a for rest in unpaired.values() for a in rest), key=_start_order)
    return pairs, [a for a in left_rest if a.id not in taken], only_candidate


def _start_order(alert: Alert) -> tuple[datetime, str]:
    return alert.episode_start, alert.id


def _overlap(one: Alert, other: Alert) -> bool:
    """Whether the two episodes share a moment of event time."""
    return one.episode_start <= _end(other) and other.episode_start <= _end(one)


def _end(alert: Alert) -> datetime:
    return alert.resolved_at or alert.last_seen


def _counts(
    baseline: list[Alert], candidate: list[Alert], field: str, always: set[str]
) -> dict[str, tuple[int, int]]:
    before = Counter(getattr(alert, field) for alert in baseline)
    after = Counter(getattr(alert, field) for alert in candidate)
    return {key: (before[key], after[key]) for key in sorted(always | set(before) | set(after))}


# --- the JSON report ------------------------------------------------------------------------------


def to_json(comparison: Comparison, run: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The report as JSON types, in the shape the module docstring gives."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "run": dict(run or {}),
        "baseline": _side_json(comparison.baseline),
        "candidate": _side_json(comparison.candidate),
        "diff": {
            "counts": _diff_counts(comparison),
            "onlyCandidate": [_alert_json(a, comparison.candidate) for a in comparison.only_candidate],
            "onlyBaseline": [_alert_json(a, comparison.baseline) for a in comparison.only_baseline],
            "changed": [_pair_json(pair, comparison) for pair in comparison.changed],
        },
        "perRule": _counts_json(comparison.per_rule),
        "perDistrict": _counts_json(comparison.per_district),
    }


def _diff_counts(comparison: Comparison) -> dict[str, int]:
    return {
        "onlyCandidate": len(comparison.only_candidate),
        "onlyBaseline": len(comparison.only_baseline),
        "changed": len(comparison.changed),
        "severityChanged": sum(pair.severity_changed for pair in comparison.changed),
        "moved": sum(pair.start_shift_seconds != 0 for pair in comparison.changed),
        "same": comparison.same,
    }


def _side_json(side: RuleSetRun) -> dict[str, Any]:
    truth = None
    if side.score is not None:
        truth = {to_camel(key): _rounded(value) for key, value in side.score.summary().items()}
    return {
        "rules": side.source,
        "version": side.rules.version,
        "anomalies": len(side.outcome.anomalies),
        "alertEvents": side.managed.events,
        "alerts": len(side.managed.alerts),
        "truth": truth,
    }


def _rounded(value: object) -> object:
    return round(value, 3) if isinstance(value, float) else value


def _alert_json(alert: Alert, side: RuleSetRun) -> dict[str, Any]:
    opened_at = side.managed.opened_at.get(alert.id)
    return {
        "id": alert.id,
        "rule": alert.rule,
        "entity": alert.entity,
        "district": alert.district,
        "severity": alert.severity.value,
        "status": alert.status.value,
        "episodeStart": alert.episode_start.isoformat(),
        "openedAt": opened_at.isoformat() if opened_at else None,
        "resolvedAt": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "peak": alert.peak,
        "count": alert.count,
    }


def _pair_json(pair: Pair, comparison: Comparison) -> dict[str, Any]:
    return {
        "rule": pair.baseline.rule,
        "entity": pair.baseline.entity,
        "district": pair.baseline.district,
        "severity": {"baseline": pair.baseline.severity.value, "candidate": pair.candidate.severity.value},
        "startShiftSeconds": pair.start_shift_seconds,
        "baseline": _alert_json(pair.baseline, comparison.baseline),
        "candidate": _alert_json(pair.candidate, comparison.candidate),
    }


def _counts_json(counts: dict[str, tuple[int, int]]) -> dict[str, dict[str, int]]:
    return {
        key: {"baseline": before, "candidate": after, "delta": after - before}
        for key, (before, after) in counts.items()
    }


# --- the terminal tables --------------------------------------------------------------------------

_TRUTH_ROWS = (
    ("scenarios", "scenarios"),
    ("alerts", "alerts"),
    ("recall", "recall"),
    ("recall (every expected rule)", "recall_every_rule"),
    ("precision", "precision"),
    ("median delay (windows)", "median_delay_windows"),
    ("duplicates", "duplicates"),
    ("missed scenarios", "missed"),
)


def render(comparison: Comparison, limit: int = 20, tz: tzinfo | None = None) -> list[Table]:
    """Rich tables: the runs (and truth scores), the alerts that differ (the first ``limit``; times in
    ``tz``, the city's, when given), per rule and per district counts. Rules and districts that alert in
    neither run are left out."""
    tables = [_runs_table(comparison), _diff_table(comparison, limit, tz)]
    tables.append(_counts_table("Alerts per rule", "rule", comparison.per_rule))
    tables.append(_counts_table("Alerts per district", "district", comparison.per_district))
    return tables


def _runs_table(comparison: Comparison) -> Table:
    base, cand = comparison.baseline, comparison.candidate
    table = Table(title="Rule sets")
    table.add_column("")
    table.add_column(f"baseline\n{base.source} ({base.rules.version})", justify="right")
    table.add_column(f"candidate\n{cand.source} ({cand.rules.version})", justify="right")
    table.add_row("anomalies", str(len(base.outcome.anomalies)), str(len(cand.outcome.anomalies)))
    table.add_row("alert events", str(base.managed.events), str(cand.managed.events))
    table.add_row("alerts", str(len(base.managed.alerts)), str(len(cand.managed.alerts)))
    if base.score is not None and cand.score is not None:
        before, after = base.score.summary(), cand.score.summary()
        for label, key in _TRUTH_ROWS:
            table.add_row(f"truth: {label}", _cell(before[key]), _cell(after[key]))
    counts = _diff_counts(comparison)
    table.add_section()
    table.add_row(
        "diff",
        f"{counts['onlyBaseline']} only here",
        f"{counts['onlyCandidate']} only here",
    )
    table.add_row(
        "",
        "",
        f"{counts['changed']} changed ({counts['severityChanged']} severity, {counts['moved']} moved), "
        f"{counts['same']} same",
    )
    return table


def _cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _diff_table(comparison: Comparison, limit: int, tz: tzinfo | None) -> Table:
    table = Table(title="Alerts that differ")
    for name in ("only in / changed", "rule", "entity", "district", "episode start", "severity", "shift"):
        table.add_column(name, no_wrap=True)
    rows = [("candidate", a, a.severity.value, "") for a in comparison.only_candidate]
    rows += [("baseline", a, a.severity.value, "") for a in comparison.only_baseline]
    rows += [
        ("changed", p.baseline, f"{p.baseline.severity.value} → {p.candidate.severity.value}",
         _shift(p.start_shift_seconds))
        for p in comparison.changed
    ]  # fmt: skip
    for where, alert, severity, shift in rows[:limit]:
        start = alert.episode_start.astimezone(tz).isoformat(timespec="minutes")
        table.add_row(where, alert.rule, alert.entity, alert.district, start, severity, shift)
    if not rows:
        table.caption = "none: both rule sets raise the same alerts"
    elif len(rows) > limit:
        table.caption = f"{len(rows) - limit} more rows in the JSON report (--json)"
    return table


def _shift(seconds: float) -> str:
    return f"{seconds / 60:+.0f} min" if seconds else ""


def _counts_table(title: str, what: str, counts: dict[str, tuple[int, int]]) -> Table:
    table = Table(title=title)
    table.add_column(what)
    for name in ("baseline", "candidate", "delta"):
        table.add_column(name, justify="right")
    for key, (before, after) in counts.items():
        if before or after:
            table.add_row(key, str(before), str(after), f"{after - before:+d}" if after != before else "")
    return table
