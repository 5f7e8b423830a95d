"""The audit trail: who acknowledged or resolved which alert, who silenced or unsilenced what, and when.

Entries are derived from what Kafka holds, so the trail can be rebuilt after Redis is lost:

* an alert event (``<prefix>.alerts``) whose change is ``acknowledged``, or ``resolved`` by someone other
  than ``system``: what the alert manager actually applied (a command it refused leaves no entry);
* a silence (``<prefix>.silences``): the version without ``endedBy`` is its creation, the version with
  ``endedBy`` its early end.

Each entry's id names what happened (``alert:<id>:acknowledged``, ``silence:<id>:unsilenced`` …): an
alert is acknowledged or resolved at most once, so a replayed event, or the copy of a silence on every
partition, gives the same id and the same entry.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, Field

from ioc.alerts.manager import SYSTEM
from ioc.alerts.rules import Text
from ioc.alerts.silence import Matchers, Silence
from ioc.models.alert import AlertChange, AlertEvent, _Wire


class AuditAction(StrEnum):
    acknowledged = "acknowledged"
    resolved = "resolved"
    silenced = "silenced"
    unsilenced = "unsilenced"


class AuditEntry(_Wire):
    id: str = Field(description="Stable: alert:<id>:<action> or silence:<id>:<action>.")
    action: AuditAction
    by: str = Field(description="The name of the API key that did it (IOC_API_KEYS), never the key.")
    at: AwareDatetime = Field(description="When it was done (the command's or the silence's time).")
    note: str | None = Field(None, description="The operator's note, or the silence's comment.")
    alert_id: str | None = None
    alert_title: Text | None = None
    entity: str | None = None
    district: str | None = None
    silence_id: str | None = None
    matchers: Matchers | None = None
    starts_at: AwareDatetime | None = Field(None, description="The silence's start.")
    ends_at: AwareDatetime | None = Field(None, description="The silence's end (unsilenced: its new end).")


def of_alert_event(event: AlertEvent) -> AuditEntry | None:
    """The entry for an operator's acknowledgement or resolution; None for any other alert event."""
    alert = event.alert
    if event.change == AlertChange.acknowledged and alert.acknowledged_by and alert.acknowledged_at:
        action, by, at, note = (
            AuditAction.acknowledged,
            alert.acknowledged_by,
            alert.acknowledged_at,
            (alert.acknowledged_note),
        )
    elif (
        event.change == AlertChange.resolved
        and alert.resolved_by
        and alert.resolved_by != SYSTEM
        and alert.resolved_at
    ):
        action, by, at, note = AuditAction.resolved, alert.resolved_by, alert.resolved_at, alert.resolved_note
    else:
        return None
    return AuditEntry(
        id=f"alert:{alert.id}:{action.value}",
        action=action,
        by=by,
        at=at,
        note=note,
        alert_id=alert.id,
        alert_title=alert.title,
        entity=alert.entity,
        district=alert.district,
    )


def of_silence(silence: Silence) -> AuditEntry:
    """The entry for a silence's creation, or for its early end (the version naming ``endedBy``)."""
    if silence.ended_by is not None:
        action, by, at = AuditAction.unsilenced, silence.ended_by, silence.ends_at
    else:
        action, by, at = AuditAction.silenced, silence.created_by, silence.created_at or silence.starts_at
    return AuditEntry(
        id=f"silence:{silence.id}:{action.value}",
        action=action,
        by=by,
        at=at,
        note=silence.comment,
        silence_id=silence.id,
        matchers=silence.matchers,
        starts_at=silence.starts_at,
        ends_at=silence.ends_at,
    )
