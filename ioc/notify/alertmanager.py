"""Pure translation of ioc's alerts into Alertmanager v2 API objects (``/api/v2/alerts``,
``/api/v2/silences``), and the plan of what to send: no I/O here.

ioc stays the source of truth. Each alert becomes one Alertmanager alert whose identity is its label set
(alertname = rule id, severity, feed, area, entity, alert_id, source), so sending it again is harmless:
Alertmanager deduplicates. An acknowledged alert, or one an ioc silence suppresses, gets an Alertmanager
silence on its ``alert_id`` label, so reminders stop; ioc's notifier deletes that silence when it is no
longer wanted (resolved, un-acknowledged, silence over).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from ioc.models.alert import Alert, AlertStatus

SOURCE = "ioc"  # the ``source`` label and a silence's createdBy: what this notifier owns at Alertmanager
ID_LABEL = "alert_id"


def console_link(console_url: str, alert_id: str) -> str:
    return f"{console_url.rstrip('/')}/#alert={alert_id}"


def labels_of(alert: Alert) -> dict[str, str]:
    """The alert's identity at Alertmanager; they never change within an episode, except severity."""
    return {
        "alertname": alert.rule,
        "severity": str(alert.severity),
        "feed": alert.feed,
        "area": alert.district,
        "entity": alert.entity,
        ID_LABEL: alert.id,
        "source": SOURCE,
    }


def to_alertmanager(
    alert: Alert, console_url: str, now: datetime, starts_at: str | None = None
) -> dict[str, Any]:
    """``alert`` as a postable Alertmanager alert. An unresolved one has no endsAt (Alertmanager keeps it
    for resolve_timeout after each send); a resolved one ends ``now``.

    startsAt and endsAt are on Alertmanager's clock, not the event clock: startsAt is when ioc first told
    it (``starts_at``, else ``now``). An alert whose startsAt is older than the group wait flushes its
    group at once, and an episode's start is minutes old by the time a window closes, so sending it would
    mail each burst's first alert alone. The episode's start and resolution, for people, are annotations.
    """
    posted: dict[str, Any] = {
        "labels": labels_of(alert),
        "annotations": {
            "title_vi": alert.title.vi,
            "title_en": alert.title.en,
            "description_vi": alert.text.vi,
            "description_en": alert.text.en,
            "area_name": alert.district_name,
            "entity_name": alert.entity_name,
            "console_url": console_link(console_url, alert.id),
            "started": _shown(alert.episode_start),
        },
        "startsAt": starts_at or now.isoformat(),
        "generatorURL": console_link(console_url, alert.id),
    }
    if not alert.unresolved:
        posted["annotations"]["ended"] = _shown(alert.resolved_at or now)
        posted["endsAt"] = now.isoformat()
    return posted


def _shown(moment: datetime) -> str:
    """A time as the mail shows it, in the offset it was recorded in: 2026-11-23 07:15 +0700."""
    return moment.strftime("%Y-%m-%d %H:%M %z")


def wants_silence(alert: Alert) -> bool:
    """Acknowledged (someone is on it) or under an ioc silence: Alertmanager should stay quiet."""
    if not alert.unresolved:
        return False
    silenced = alert.suppressed_by is not None and alert.suppressed_by.silence is not None
    return alert.status is AlertStatus.acknowledged or silenced


def silence_comment(alert: Alert) -> str:
    if alert.status is AlertStatus.acknowledged:
        return f"Acknowledged in ioc by {alert.acknowledged_by}: {alert.title.en}"
    silence = alert.suppressed_by.silence if alert.suppressed_by else None
    return f"Silenced in ioc (silence {silence}): {alert.title.en}"


def to_silence(alert: Alert, now: datetime, longest: timedelta) -> dict[str, Any]:
    """A postable silence matching exactly this alert. It ends after ``longest`` at the latest; the
    notifier deletes it as soon as it is no longer wanted."""
    return {
        "matchers": [{"name": ID_LABEL, "value": alert.id, "isRegex": False, "isEqual": True}],
        "startsAt": now.isoformat(),
        "endsAt": (now + longest).isoformat(),
        "createdBy": SOURCE,
        "comment": silence_comment(alert),
    }


def silenced_alert_id(silence: Mapping[str, Any]) -> str | None:
    """The alert id of an active silence this notifier made (one equality matcher on alert_id); None for
    anyone else's silence, which is never touched."""
    if silence.get("createdBy") != SOURCE or silence.get("status", {}).get("state") == "expired":
        return None
    matchers = silence.get("matchers") or []
    if len(matchers) != 1:
        return None
    matcher = matchers[0]
    if matcher.get("name") != ID_LABEL or matcher.get("isRegex") or not matcher.get("isEqual", True):
        return None
    return str(matcher.get("value"))


def silence_changes(
    wanted: Iterable[str], existing: Iterable[Mapping[str, Any]]
) -> tuple[set[str], list[str]]:
    """(alert ids that need a silence, ids of silences to delete): the existing ones for alerts no longer
    wanted, and duplicates beyond the first for one alert."""
    wanted_ids = set(wanted)
    covered: set[str] = set()
    delete: list[str] = []
    for silence in existing:
        alert_id = silenced_alert_id(silence)
        if alert_id is None:
            continue
        if alert_id in wanted_ids and alert_id not in covered:
            covered.add(alert_id)
        else:
            delete.append(str(silence["id"]))
    return wanted_ids - covered, delete


def alert_id_of(am_alert: Mapping[str, Any]) -> str | None:
    """The ioc alert id of an alert Alertmanager holds, if it is ours."""
    labels = am_alert.get("labels") or {}
    return labels.get(ID_LABEL) if labels.get("source") == SOURCE else None
