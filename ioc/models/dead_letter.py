"""A rejected input, as written to ``<prefix>.dlq``: nothing is dropped without a reason."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from ioc.models.base import SCHEMA_VERSION


class DeadLetter(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    schema_version: int = SCHEMA_VERSION
    reason: str  # "invalid" | "late" | "unparseable" …
    detail: str
    feed: str
    source: str  # where it came from: a topic, an endpoint, an MQTT topic
    # When it was rejected; for the worker's, when the raw record entered Kafka (so a re-run writes the same).
    time: AwareDatetime
    key: str | None = None
    payload: str  # the original bytes, decoded leniently so the record is always valid JSON

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, naming the field, the value and the rule."""
    lines = []
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"]) or "(event)"
        value = problem.get("input")
        shown = json.dumps(value, default=str, ensure_ascii=False) if not isinstance(value, dict) else "{…}"
        lines.append(f"{field}={shown[:80]}: {problem['msg']}")
    return "; ".join(lines)


def dead_letter(
    *, reason: str, detail: str, feed: str, source: str, payload: bytes, at: datetime, key: Any = None
) -> DeadLetter:
    return DeadLetter(
        reason=reason,
        detail=detail,
        feed=feed,
        source=source,
        time=at,
        key=key.decode(errors="replace") if isinstance(key, bytes) else key,
        payload=payload.decode(errors="replace"),
    )


def unreadable(
    *, kind: str, source: str, payload: bytes, key: Any, at: datetime, error: ValueError
) -> DeadLetter:
    """A record of one of the worker's own topics (anomalies, alerts, commands, silences, incidents) that
    does not parse: written by hand or by a producer of another version. Dead-lettered, so the agent
    goes on instead of failing on it again after every restart; ``kind`` stands for the feed."""
    detail = describe_validation_error(error) if isinstance(error, ValidationError) else str(error)
    return dead_letter(
        reason="invalid", detail=detail, feed=kind, source=source, payload=payload, at=at, key=key
    )
