"""Events to a JSON Lines file: one ``{"feed", "key", "value"}`` object a line, key as in Kafka."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ioc.models import Event


def write_jsonl(events: Iterable[Event], path: Path) -> int:
    """Write the events in order; returns how many were written."""
    written = 0
    with path.open("w", encoding="utf-8") as file:
        for event in events:
            line = {"feed": event.feed, "key": event.sensor_id, "value": json.loads(event.to_json())}
            file.write(json.dumps(line, ensure_ascii=False) + "\n")
            written += 1
    return written
