"""The centre's own KPIs (``../shared/reference/kpis.md``, "The centre itself"): how fast alerts are
acknowledged and resolved (MTTA, MTTR), per severity and feed. Pure: alert lifecycles in, figures out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median, quantiles

CRITICAL_ACK_WITHIN = timedelta(minutes=15)
SYSTEM = "system"  # resolved_by when the data cleared the condition


@dataclass(frozen=True)
class Lifecycle:
    """One alert: when it opened, and when (if) an operator acknowledged it and it resolved."""

    alert_id: str
    severity: str
    feed: str
    area: str
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None


@dataclass(frozen=True)
class Spread:
    median: float
    p90: float


@dataclass(frozen=True)
class OpsKpis:
    severity: str
    feed: str
    alerts: int
    acknowledged: int
    resolved: int
    resolved_by_operator: int
    mtta_minutes: Spread | None  # opened → acknowledged, of those acknowledged
    mttr_minutes: Spread | None  # opened → resolved, of those resolved
    acknowledged_within_15_min: float | None  # share of the alerts; for critical ones, the KPI


def ops_kpis(lifecycles: Iterable[Lifecycle]) -> list[OpsKpis]:
    """Per (severity, feed), ordered by severity then feed."""
    groups: dict[tuple[str, str], list[Lifecycle]] = {}
    for alert in lifecycles:
        groups.setdefault((alert.severity, alert.feed), []).append(alert)
    order = {"critical": 0, "warning": 1, "info": 2}
    return [_kpis(severity, feed, alerts) for (severity, feed), alerts in sorted(
        groups.items(), key=lambda item: (order.get(item[0][0], 9), item[0][1])
    )]  # fmt: skip


def _kpis(severity: str, feed: str, alerts: list[Lifecycle]) -> OpsKpis:
    to_ack = [_minutes(a.acknowledged_at - a.opened_at) for a in alerts if a.acknowledged_at]
    to_resolve = [_minutes(a.resolved_at - a.opened_at) for a in alerts if a.resolved_at]
    within = sum(
        1 for a in alerts if a.acknowledged_at and a.acknowledged_at - a.opened_at <= CRITICAL_ACK_WITHIN
    )
    return OpsKpis(
        severity=severity,
        feed=feed,
        alerts=len(alerts),
        acknowledged=len(to_ack),
        resolved=len(to_resolve),
        resolved_by_operator=sum(1 for a in alerts if a.resolved_at and a.resolved_by not in (None, SYSTEM)),
        mtta_minutes=_spread(to_ack),
        mttr_minutes=_spread(to_resolve),
        acknowledged_within_15_min=within / len(alerts) if alerts else None,
    )


def _minutes(span: timedelta) -> float:
    return max(span.total_seconds(), 0.0) / 60


def _spread(values: list[float]) -> Spread | None:
    if not values:
        return None
    p90 = values[0] if len(values) == 1 else quantiles(values, n=10, method="inclusive")[-1]
    return Spread(median=round(median(values), 1), p90=round(p90, 1))
