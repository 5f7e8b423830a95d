"""Silences: an operator mutes alerts that match, for a bounded time (Alertmanager's silences).

A silence names what it mutes by ``rule``, ``district`` and ``entity`` matchers — each an exact value or
a glob where ``*`` stands for any text (no other wildcard, so ids with brackets or ``?`` match
literally) — all the given ones must match. It is active from ``starts_at`` (inclusive) to ``ends_at``
(exclusive) of *event time*: the alert manager asks with the time of the anomaly it applies, so a replay
silences exactly what the live run did. A silenced alert is still tracked; it is marked
``suppressed_by = {silence: id}``. Ending a silence early is publishing it again with an earlier
``ends_at``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from ioc.models.alert import Alert
from ioc.models.base import SCHEMA_VERSION


class Matchers(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str | None = Field(None, min_length=1, description="Rule id or glob, e.g. traffic.* .")
    district: str | None = Field(None, min_length=1, description="District id or glob.")
    entity: str | None = Field(None, min_length=1, description="Sensor or station id or glob.")

    def given(self) -> dict[str, str]:
        return {name: pattern for name, pattern in self.model_dump().items() if pattern is not None}


class Silence(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    schema_version: int = SCHEMA_VERSION
    id: str = Field(min_length=1)
    matchers: Matchers
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    created_by: str = Field(min_length=1)
    comment: str = Field(min_length=1, description="Why: operators read it when an alert is muted.")

    @model_validator(mode="after")
    def _bounded_and_specific(self) -> Silence:
        if self.ends_at <= self.starts_at:
            raise ValueError("endsAt must be after startsAt")
        patterns = self.matchers.given()
        if not patterns:
            raise ValueError("give at least one matcher: rule, district or entity")
        if all(set(pattern) == {"*"} for pattern in patterns.values()):
            raise ValueError("matchers made only of '*' would silence every alert")
        return self

    def active(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def _matches_pattern(pattern: str, value: str) -> bool:
    return _glob(pattern).fullmatch(value) is not None


def matches(silence: Silence, alert: Alert, at: datetime) -> bool:
    """Whether the silence is active at event time ``at`` and every matcher it gives matches the alert."""
    if not silence.active(at):
        return False
    values = {"rule": alert.rule, "district": alert.district, "entity": alert.entity}
    return all(_matches_pattern(pattern, values[name]) for name, pattern in silence.matchers.given().items())


def silencing(alert: Alert, silences: Iterable[Silence], at: datetime) -> Silence | None:
    """The silence that mutes the alert at ``at``, if any. When several match, the one that ends last
    (then the smallest id): the choice depends on the silences only, not on the order they arrived in."""
    matching = [silence for silence in silences if matches(silence, alert, at)]
    if not matching:
        return None
    return min(matching, key=lambda silence: (-silence.ends_at.timestamp(), silence.id))
