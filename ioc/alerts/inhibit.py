"""Inhibition: a sick sensor's readings are not evidence about the city.

While a device-fault alert on an entity is unresolved (open or acknowledged — acknowledging a fault
does not repair the sensor), the entity's standard and statistical alerts are inhibited: still tracked,
marked ``suppressed_by = {inhibitedBy: <fault alert id>}``. When the last fault resolves they are
released (or fall under a silence, if one matches). The alert manager's state is keyed by entity, so
every alert this needs is in one state: inhibition is local.
"""

from __future__ import annotations

from collections.abc import Iterable

from ioc.models.alert import Alert
from ioc.models.anomaly import RuleKind

INHIBITED_KINDS = frozenset({RuleKind.standard, RuleKind.statistical})


def inhibits(source: Alert, target: Alert) -> bool:
    """Whether ``source`` (a fault) inhibits ``target`` (an anomaly alert of the same entity)."""
    return (
        source.kind == RuleKind.device_fault
        and source.unresolved
        and target.kind in INHIBITED_KINDS
        and source.entity == target.entity
    )


def inhibitor(target: Alert, alerts: Iterable[Alert]) -> Alert | None:
    """The fault that inhibits ``target``, if any: the earliest-starting one (then the smallest id), so
    the answer depends on the set of alerts, not on the order they opened in."""
    sources = [source for source in alerts if inhibits(source, target)]
    if not sources:
        return None
    return min(sources, key=lambda source: (source.episode_start, source.id))
