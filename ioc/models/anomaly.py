"""What a detector tells the alert manager, on ``<prefix>.anomalies`` (key: the alert fingerprint).

A detector evaluates one rule for one entity (a sensor or station) at one event time and reports a
*condition change or update*: ``firing=True`` while the condition holds (the first one opens an
episode, later ones update its count, peak and last-seen), ``firing=False`` once it has cleared for
the rule's hold time (the alert manager resolves the episode). Hysteresis and hold time are the
detector's business, so the alert manager needs no clock: it only follows these events.

``episode_start`` is the event time the condition began; it is deterministic for a given input, so
the alert id ``hash(rule, entity, episode_start)`` is the same across retries, restarts and replays.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ioc.models.base import SCHEMA_VERSION


class Severity(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"


class RuleKind(StrEnum):
    standard = "standard"  # a legal limit or an index band (QCVN, VN_AQI, VN_WQI)
    statistical = "statistical"  # departs from the entity's learned normal
    device_fault = "device_fault"  # the sensor is sick (stale, flatline, spike, out of range)


class Anomaly(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    schema_version: int = SCHEMA_VERSION
    rule: str = Field(description="Rule id, e.g. air.aqi_band.")
    rule_version: str = Field(description="Version of the rules file the rule came from.")
    kind: RuleKind
    feed: str
    entity: str = Field(description="Sensor or station id the condition is about.")
    district: str = Field(description="District id of the entity.")
    firing: bool = Field(description="True while the condition holds; False once it has cleared.")
    episode_start: AwareDatetime = Field(description="Event time the condition began.")
    observed_at: AwareDatetime = Field(description="Event time of this evaluation (end of its window).")
    window: str = Field(description="Window the value was computed over, e.g. 1m, 1h, 15m.")
    metric: str = Field(description="What was measured, e.g. vn_aqi, pm25, dissolved_oxygen, taps.")
    value: float | None = Field(description="The measured value (None when there is none: stale).")
    unit: str = Field(description="Unit of value, threshold and baseline ('' for an index).")
    threshold: float | None = Field(None, description="The limit crossed, when the rule has one.")
    baseline: float | None = Field(None, description="The entity's normal, when the rule compares with it.")
    severity: Severity
    band: str | None = Field(None, description="Index band, when the metric is an index (e.g. xau).")

    @property
    def fingerprint(self) -> str:
        """One alert stream per (rule, entity): the alert manager's key."""
        return f"{self.rule}|{self.entity}"

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


def alert_id(rule: str, entity: str, episode_start: datetime) -> str:
    """Stable id of one episode: the same input gives the same id on every run."""
    text = f"{rule}|{entity}|{episode_start.timestamp():.0f}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]
