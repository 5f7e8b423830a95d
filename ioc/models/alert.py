"""What the alert manager publishes on ``<prefix>.alerts`` (key: alert id), the operator commands it
accepts, and the incidents the incident stage publishes (key: incident id).

An :class:`AlertEvent` carries the change and the *full* alert snapshot with a per-alert ``revision``
that only grows: the event with the highest revision of an alert id is the truth, and a consumer that
sees one (id, revision) twice (a retry, a replay) can drop the second. The same holds for
:class:`IncidentEvent` per incident id.

Times are event times: an alert's times come from the anomalies (sensor time), an operator's from the
command. ``severity`` is the *highest* severity the episode has reached — an operator who was paged for
a critical condition keeps seeing it as critical until it resolves; the latest observation's own
severity is in ``evidence.severity``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from ioc.alerts.rules import Text
from ioc.models.anomaly import RuleKind, Severity
from ioc.models.base import SCHEMA_VERSION

SEVERITY_RANK = {Severity.info: 0, Severity.warning: 1, Severity.critical: 2}


def worst(*levels: Severity) -> Severity:
    """The most severe of the given levels."""
    return max(levels, key=SEVERITY_RANK.__getitem__)


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    def to_state(self) -> dict:
        """Plain JSON types, for a Faust table (reloaded with ``model_validate``)."""
        return self.model_dump(mode="json", by_alias=True)


class AlertStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class AlertChange(StrEnum):
    opened = "opened"
    updated = "updated"  # severity rose, the peak moved a step, or the heartbeat came due
    acknowledged = "acknowledged"
    resolved = "resolved"
    suppressed = "suppressed"  # suppressed_by became set, or changed (inhibition ↔ silence)
    unsuppressed = "unsuppressed"


class Evidence(_Wire):
    """The latest firing observation: what was measured, against what, over which window, when."""

    observed_at: AwareDatetime
    metric: str
    window: str
    value: float | None
    unit: str
    threshold: float | None = None
    baseline: float | None = None
    band: str | None = None
    severity: Severity
    rule_version: str


class Suppression(_Wire):
    """Why operators are not notified: a device fault on the same entity, or an operator's silence."""

    inhibited_by: str | None = Field(None, description="Id of the device-fault alert that inhibits it.")
    silence: str | None = Field(None, description="Id of the silence that matches it.")

    @model_validator(mode="after")
    def _one_reason(self) -> Suppression:
        if (self.inhibited_by is None) == (self.silence is None):
            raise ValueError("give exactly one of inhibitedBy or silence")
        return self


class Alert(_Wire):
    schema_version: int = SCHEMA_VERSION
    id: str = Field(description="alert_id(rule, entity, episode_start): stable across retries and replays.")
    fingerprint: str = Field(description="rule|entity: at most one unresolved alert per fingerprint.")
    rule: str
    rule_version: str = Field(description="Version of the rules file of the anomaly that opened it.")
    kind: RuleKind
    feed: str
    entity: str
    entity_name: str = Field(description="Sensor or station name from the city registry (the id if unknown).")
    district: str
    district_name: str
    status: AlertStatus = AlertStatus.open
    severity: Severity = Field(description="Highest severity reached in this episode.")
    episode_start: AwareDatetime
    last_seen: AwareDatetime = Field(description="Event time of the latest firing observation.")
    count: int = Field(1, ge=1, description="Firing observations applied in this episode.")
    peak: float | None = Field(None, description="Worst value of the episode, in the rule's direction.")
    evidence: Evidence
    title: Text
    text: Text
    acknowledged_by: str | None = None
    acknowledged_at: AwareDatetime | None = None
    acknowledged_note: str | None = None
    resolved_by: str | None = Field(None, description="Operator, or 'system' when the condition cleared.")
    resolved_at: AwareDatetime | None = None
    resolved_note: str | None = None
    suppressed_by: Suppression | None = None
    incident: str | None = Field(
        None,
        description="Incident id; the alert manager leaves it None (incidents are a later stage, "
        "published on their own events), a view that joins the two may fill it.",
    )

    @property
    def unresolved(self) -> bool:
        return self.status != AlertStatus.resolved


class AlertEvent(_Wire):
    """One change of one alert, with the alert as it is after the change."""

    schema_version: int = SCHEMA_VERSION
    change: AlertChange
    revision: int = Field(ge=1, description="Per alert id, +1 per event: dedupe by (alert.id, revision).")
    at: AwareDatetime = Field(description="Event time of the change (an anomaly's or a command's).")
    alert: Alert

    @property
    def key(self) -> str:
        return self.alert.id


class AlertCommand(_Wire):
    """An operator's action on an alert. ``entity`` routes it to the partition that holds the alert
    (the alert manager's state is keyed by entity; the alert snapshot names it)."""

    schema_version: int = SCHEMA_VERSION
    action: Literal["acknowledge", "resolve"]
    alert_id: str
    entity: str
    by: str = Field(min_length=1)
    at: AwareDatetime
    note: str | None = None


# --- incidents ---------------------------------------------------------------------------------


class IncidentStatus(StrEnum):
    open = "open"  # at least one member unresolved
    resolved = "resolved"


class IncidentChange(StrEnum):
    opened = "opened"
    updated = "updated"  # members, their status or severity changed
    resolved = "resolved"  # the last member resolved
    reopened = "reopened"  # a member joined or became visible again after it resolved
    merged = "merged"  # its members now belong to the incident ``merged_into``
    dissolved = "dissolved"  # no member is left (they became suppressed)


class IncidentMember(_Wire):
    alert_id: str
    rule: str
    kind: RuleKind
    feed: str
    entity: str
    entity_name: str
    severity: Severity
    status: AlertStatus
    episode_start: AwareDatetime
    last_seen: AwareDatetime
    title: Text


class Incident(_Wire):
    schema_version: int = SCHEMA_VERSION
    id: str = Field(description="Stable hash of (district, earliest member episode start).")
    district: str
    district_name: str
    status: IncidentStatus
    severity: Severity = Field(description="Highest member severity.")
    started_at: AwareDatetime = Field(description="Earliest member episode start.")
    last_seen: AwareDatetime
    feeds: list[str]
    members: list[IncidentMember] = Field(description="Ordered by episode start, then alert id.")
    title: Text
    text: Text


class IncidentEvent(_Wire):
    schema_version: int = SCHEMA_VERSION
    change: IncidentChange
    revision: int = Field(ge=1, description="Per incident id, +1 per event: dedupe by (id, revision).")
    at: AwareDatetime = Field(description="Event time of the alert event that caused the change.")
    incident: Incident = Field(
        description="The incident after the change (before it, when merged/dissolved)."
    )
    merged_into: str | None = None

    @property
    def key(self) -> str:
        return self.incident.id
