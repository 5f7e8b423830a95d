"""Silences: an operator mutes alerts that match, for a bounded time (Alertmanager's silences).

A silence names what it mutes by ``rule``, ``district`` and ``entity`` matchers — each an exact value or
a glob where ``*`` stands for any text (no other wildcard, so ids with brackets or ``?`` match
literally) — all the given ones must match. It is active from ``starts_at`` (inclusive) to ``ends_at``
(exclusive) of *event time*: the alert manager asks with the time of the anomaly it applies, so a replay
silences exactly what the live run did. Before one is made, ``refusal`` judges its matchers by what they
match among the ids that exist (the rules file's rules, the city's districts, the registry's sensors): a
silence must mute something, and not everything. A silenced alert is still tracked; it is marked
``suppressed_by = {silence: id}``. Ending a silence early is publishing it again with an earlier
``ends_at`` (and ``ended_by`` naming who ended it): a silence only ever ends earlier, so of two versions
of one id the one that ends first is the newer.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from ioc.city import UNREGISTERED_PREFIX
from ioc.models.alert import Alert
from ioc.models.base import SCHEMA_VERSION

MAX_PATTERN_LENGTH = 200  # longer than any id; a matcher is read for every alert of every entity
MAX_STARS = 8


def _few_stars(pattern: str) -> str:
    if pattern.count("*") > MAX_STARS:
        raise ValueError(f"at most {MAX_STARS} '*' in a matcher")
    return pattern


Pattern = Annotated[str, Field(min_length=1, max_length=MAX_PATTERN_LENGTH), AfterValidator(_few_stars)]


class Matchers(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: Pattern | None = Field(None, description="Rule id or glob, e.g. traffic.* .")
    district: Pattern | None = Field(None, description="District id or glob.")
    entity: Pattern | None = Field(None, description="Sensor or station id or glob.")

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
    created_at: AwareDatetime | None = Field(None, description="When it was created (wall-clock time).")
    comment: str = Field(min_length=1, description="Why: operators read it when an alert is muted.")
    ended_by: str | None = Field(
        None, min_length=1, description="Who ended it before its time; set on the version that ends it."
    )

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


def _matches_pattern(pattern: str, value: str) -> bool:
    """Whether the glob (``*`` any text, nothing else special) matches all of ``value``: its literal parts
    found left to right, each at its first place after the one before. Greedy-first is exact for ``*``
    alone, and never backtracks (a regex of ``.*`` parts did: seconds for twelve stars)."""
    first, *middle = pattern.split("*")
    if not middle:
        return pattern == value
    last = middle.pop()
    if len(value) < len(first) + len(last) or not value.startswith(first) or not value.endswith(last):
        return False
    at, end = len(first), len(value) - len(last)
    for part in middle:
        found = value.find(part, at, end)
        if found < 0:
            return False
        at = found + len(part)
    return True


# What each matcher is matched against, in the sentence that names it.
KNOWN_AS = {
    "rule": "rule of the rules file",
    "district": "district of the city",
    "entity": "sensor of the registry",
}


def refusal(matchers: Matchers, known: Mapping[str, Collection[str]]) -> str | None:
    """Why a silence with these matchers may not be made, judged by what each pattern matches among the
    known ids of its field (``known``: ``rule``, ``district``, ``entity`` → ids), not by its spelling; None
    when it may.

    * A matcher that matches no known id mutes nothing: a typo, or ``?`` taken for a wildcard (only ``*``
      is one). An entity pattern that could match an ``unregistered:`` sensor's id is kept: those are not
      in the registry.
    * Matchers that each match every known id of their field (``*.*`` for the rules, ``*-*`` for the
      sensors) would mute every alert, as ``*`` would.
    """
    patterns = matchers.given()
    for name, pattern in patterns.items():
        ids = known.get(name, ())
        if not ids or any(_matches_pattern(pattern, id_) for id_ in ids):
            continue
        if name == "entity" and _can_start_with(pattern, UNREGISTERED_PREFIX):
            continue
        return f"{name} {pattern!r} matches no {KNOWN_AS[name]} (only * is a wildcard): it would mute nothing"
    everywhere = [
        name
        for name, pattern in patterns.items()
        if known.get(name) and all(_matches_pattern(pattern, id_) for id_ in known[name])
    ]
    if patterns and len(everywhere) == len(patterns):
        said = ", ".join(f"{name} {patterns[name]!r} matches every {KNOWN_AS[name]}" for name in everywhere)
        return f"{said}: the silence would mute every alert"
    return None


def districts_matched(matchers: Matchers, districts: Iterable[str]) -> frozenset[str]:
    """The ``districts`` whose alerts a silence with these matchers may mute: those its district matcher
    matches, or all of them without one (a district-scoped operator's reach, ``ioc.api.scope``)."""
    pattern = matchers.district
    return frozenset(d for d in districts if pattern is None or _matches_pattern(pattern, d))


def _can_start_with(pattern: str, prefix: str) -> bool:
    """Whether some text the glob matches starts with ``prefix``."""
    literal, star, _ = pattern.partition("*")
    return literal.startswith(prefix) or bool(star) and prefix.startswith(literal)


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


# --- the alert manager's per-partition book of silences ------------------------------------------------
# Every silence is published to every partition of the silences topic, so each alert-manager partition
# holds all of them beside its own entities. The book (JSON, one per partition):
#   {"silences": {"<id>": {<Silence>}}, "unresolved": ["<entity>", …], "clock": "<ISO>" | null}
# ``clock`` is the newest event time the partition has seen; ``unresolved`` are its entities with an
# unresolved alert: the ones to re-judge when a silence arrives, starts or ends.

FORGET_AFTER = timedelta(days=1)  # an ended silence is kept this long in event time, then dropped


def new_book() -> dict[str, Any]:
    return {"silences": {}, "unresolved": [], "clock": None}


def silences_in(book: dict[str, Any]) -> list[Silence]:
    return [Silence.model_validate(held) for held in book["silences"].values()]


def keep(book: dict[str, Any], silence: Silence) -> None:
    """Hold a new silence, or the new version of one (ending it early is publishing it again)."""
    book["silences"][silence.id] = silence.model_dump(mode="json", by_alias=True)


def advance(book: dict[str, Any], at: datetime) -> bool:
    """Move the book's clock to ``at`` if later; True when a silence started or ended in between (the
    partition's unresolved alerts must then be re-judged). Silences ended long before are dropped."""
    before = clock_of(book)
    if before is not None and at <= before:
        return False
    book["clock"] = at.isoformat()
    silences = silences_in(book)
    for silence in silences:
        if silence.ends_at < at - FORGET_AFTER:
            del book["silences"][silence.id]
    return before is not None and any(
        before < boundary <= at for silence in silences for boundary in (silence.starts_at, silence.ends_at)
    )


def mark(book: dict[str, Any], entity: str, unresolved: bool) -> None:
    """Record whether ``entity`` has an unresolved alert."""
    held = entity in book["unresolved"]
    if unresolved and not held:
        book["unresolved"] = sorted([*book["unresolved"], entity])
    elif held and not unresolved:
        book["unresolved"].remove(entity)


def clock_of(book: dict[str, Any]) -> datetime | None:
    return datetime.fromisoformat(book["clock"]) if book["clock"] is not None else None
