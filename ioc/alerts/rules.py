"""Alert rules are data: a versioned YAML file (``ioc/alerts/rules/<city>.yaml`` by default).

A rule names what it watches (``metric`` over a ``window`` of a ``feed``), when it fires
(``trigger``) and clears (``clear``; the gap between the two is the hysteresis that keeps a value
hovering at a threshold from flapping), how long it must stay clear before the alert resolves
(``hold_minutes``) and how bad it is (``severity``: the highest step the value reaches). Detectors
evaluate rules; the alert manager uses the rule's kind, names and version.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ioc.feeds import FEEDS
from ioc.models.anomaly import RuleKind, Severity

RULES_DIR = Path(__file__).parent / "rules"


class Text(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vi: str
    en: str


class Threshold(BaseModel):
    """``above: 150`` fires when value > 150; ``below: 2`` when value < 2. Values are in the rule's unit;
    for ``ratio`` metrics they are multiples of the entity's normal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    above: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _one_side(self) -> Threshold:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above or below")
        return self

    @property
    def limit(self) -> float:
        return self.above if self.above is not None else self.below  # type: ignore[return-value]

    def crossed(self, value: float) -> bool:
        return value > self.above if self.above is not None else value < self.below  # type: ignore[operator]


class SeverityStep(BaseModel):
    """From this value on (in the trigger's direction) the alert has this severity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: float
    level: Severity


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z_]+\.[a-z0-9_]+$")
    feed: str | None = Field(
        None, description="Feed it applies to; None for sensor-health rules that apply to every feed."
    )
    kind: RuleKind
    name: Text
    metric: str = Field(description="What is compared: an index, a field, or a health measure.")
    window: str = Field("1m", description="Window label the metric is computed over.")
    unit: str = ""
    trigger: Threshold | None = None
    clear: Threshold | None = None
    hold_minutes: float = Field(10, ge=0)
    report_minutes: float | None = Field(
        None,
        gt=0,
        description="While firing, a report at least this often (event time); by default 15 minutes, or "
        "a 24th of a longer window up to an hour.",
    )
    severity: list[SeverityStep] = Field(default_factory=list)
    default_severity: Severity = Severity.warning
    params: dict[str, float | str] = Field(default_factory=dict, description="Detector-specific knobs.")

    @field_validator("feed")
    @classmethod
    def _registered_feed(cls, value: str | None) -> str | None:
        if value is not None and value not in FEEDS:
            raise ValueError(f"feed {value!r} is not one of {', '.join(FEEDS)}")
        return value

    def severity_of(self, value: float | None) -> Severity:
        """The highest step the value reaches; ``default_severity`` below the first step."""
        level = self.default_severity
        if value is None or self.trigger is None:
            return level
        rising = self.trigger.above is not None
        for step in self.severity:
            if (value >= step.at) if rising else (value <= step.at):
                level = step.level
        return level


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    city: str
    incident_minutes: float = Field(
        30, description="Alerts in one district this close in time are one incident."
    )
    rules: list[Rule]

    @model_validator(mode="after")
    def _unique_ids(self) -> RuleSet:
        ids = [rule.id for rule in self.rules]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise ValueError(f"rule ids appear twice: {', '.join(duplicated)}")
        return self

    def get(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(f"no rule {rule_id!r} in rules version {self.version}")

    def for_feed(self, feed: str) -> list[Rule]:
        return [rule for rule in self.rules if rule.feed in (feed, None)]


def load_rules(source: str | Path) -> RuleSet:
    """A city name (``hanoi`` → the packaged file) or a path to a YAML file."""
    path = Path(source)
    if not path.suffix:
        path = RULES_DIR / f"{source}.yaml"
    return _load(path.resolve())


@cache
def _load(path: Path) -> RuleSet:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"rules file {path} does not exist") from None
    return RuleSet.model_validate(document)
