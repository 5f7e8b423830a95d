"""Recordings: feed events as they were in Kafka, in a file, to replay and to backtest.

The format (version 1) is JSON Lines, gzip-compressed when the name ends in ``.gz``. The first line is
the header, every other line one event::

    {"format": "ioc-recording", "version": 1, "createdAt": "…", "source": "kafka ioc.*.raw",
     "feeds": ["air", "traffic"], "from": "…", "to": "…"}
    {"feed": "air", "key": "hn-air-001", "eventTime": "2026-01-15T08:00:00+07:00",
     "value": {<the event as in ioc.air.raw>}, "headers": [["name", "value"], …]}

``key`` is the Kafka key (the sensor id), ``eventTime`` the event's ``dateObserved``, ``headers`` the
Kafka record headers as text (omitted when there are none). Readers refuse another format or a newer
version, so a file is never half understood.

A folder of CSV files, or one CSV file, loads too: one file per feed named after it (``air.csv``,
``traffic-2026-01.csv``), a header row with the feed's wire field names (``sensorId``,
``dateObserved``, ``pm25`` …, see ``docs/architecture.md``) and an empty cell for an absent field.
Every row is validated like an ingested event; a bad one is an error naming its file and line.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from ioc.city import City
from ioc.feeds import FEEDS, MODELS
from ioc.models import Event
from ioc.models.base import numbers_of

FORMAT = "ioc-recording"
VERSION = 1
# Fields of an event that are instants; a shift in time moves them all.
_TIME_FIELDS = ("dateObserved", "ingestTime")


class RecordingError(ValueError):
    """A file that is not a readable recording, with where and why."""


class RecordingHeader(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    format: str = FORMAT
    version: int = VERSION
    created_at: AwareDatetime | None = Field(None, description="When it was recorded (none: reproducible).")
    source: str = Field(description="Where the events came from: topics, a simulator run, CSV files.")
    feeds: list[str]
    start: AwareDatetime | None = Field(None, alias="from")
    end: AwareDatetime | None = Field(None, alias="to")


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    feed: str
    key: str
    event_time: datetime
    value: bytes  # the event JSON exactly as in Kafka
    headers: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def of(cls, event: Event) -> RecordedEvent:
        return cls(event.feed, event.sensor_id, event.event_time, event.to_json())

    def shifted(self, by: timedelta) -> RecordedEvent:
        """The same event ``by`` later: its event time and ingest time move, nothing else."""
        if not by:
            return self
        document = json.loads(self.value)
        for name in _TIME_FIELDS:
            if name in document:
                document[name] = (datetime.fromisoformat(document[name]) + by).isoformat()
        value = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        return RecordedEvent(self.feed, self.key, self.event_time + by, value, self.headers)


def _open_text(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, mode + "t", encoding="utf-8")
    return path.open(mode, encoding="utf-8")


def write_recording(events: Iterable[RecordedEvent], path: Path, header: RecordingHeader) -> int:
    """Write a header and the events in the given order; returns how many events were written."""
    written = 0
    with _open_text(path, "w") as file:
        file.write(header.model_dump_json(by_alias=True, exclude_none=True) + "\n")
        for event in events:
            line: dict[str, Any] = {
                "feed": event.feed,
                "key": event.key,
                "eventTime": event.event_time.isoformat(),
                "value": json.loads(event.value),
            }
            if event.headers:
                line["headers"] = [[name, value.decode("utf-8", "replace")] for name, value in event.headers]
            file.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
            written += 1
    return written


def read_header(path: Path) -> RecordingHeader:
    with _open_text(path, "r") as file:
        return _header(path, file.readline())


def read_recording(path: Path) -> Iterator[RecordedEvent]:
    """The events of a recording file in file order."""
    with _open_text(path, "r") as file:
        _header(path, file.readline())
        for number, text in enumerate(file, start=2):
            if text.strip():
                yield _event(path, number, text)


def _header(path: Path, text: str) -> RecordingHeader:
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        document = None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise RecordingError(f"{path}: not an ioc recording (its first line is no {FORMAT!r} header)")
    if not isinstance(document.get("version"), int) or document["version"] > VERSION:
        raise RecordingError(
            f"{path}: recording format version {document.get('version')!r}; this ioc reads up to {VERSION}"
        )
    try:
        return RecordingHeader.model_validate(document)
    except ValidationError as error:
        raise RecordingError(f"{path}:1: bad header: {_first_error(error)}") from None


def _event(path: Path, number: int, text: str) -> RecordedEvent:
    try:
        line = json.loads(text)
        feed, key, value = line["feed"], line["key"], line["value"]
        if feed not in FEEDS:
            raise ValueError(f"feed {feed!r} is not one of {', '.join(FEEDS)}")
        event_time = datetime.fromisoformat(line.get("eventTime") or value["dateObserved"])
        if event_time.tzinfo is None:
            raise ValueError("eventTime has no UTC offset")
        headers = tuple((str(name), str(data).encode()) for name, data in line.get("headers", ()))
        encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    except (ValueError, KeyError, TypeError) as error:
        detail = f"missing {error}" if isinstance(error, KeyError) else str(error)
        raise RecordingError(f"{path}:{number}: {detail}") from None
    return RecordedEvent(feed, str(key), event_time, encoded, headers)


def load_events(path: Path, city: City | None = None) -> tuple[RecordingHeader, list[RecordedEvent]]:
    """A recording file, a CSV file or a folder of CSV files, as a header and its events in file order.

    ``city`` checks CSV rows' sensor ids against the registry, as the ingest edge does.
    """
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
        if not files:
            raise RecordingError(f"{path}: a folder with no .csv file")
        return _csv_recording(files, city)
    if path.suffix.lower() == ".csv":
        return _csv_recording([path], city)
    return read_header(path), list(read_recording(path))


def in_event_time_order(events: list[RecordedEvent]) -> list[RecordedEvent]:
    """Sorted by event time; ties keep file order, so each key's events keep theirs (a stable sort)."""
    return sorted(events, key=lambda event: event.event_time)


def csv_feed(path: Path) -> str:
    """The feed a CSV file holds, from its name: ``air.csv``, ``traffic-2026-01.csv``."""
    feed = re.split(r"[^a-z]", path.stem.lower(), maxsplit=1)[0]
    if feed not in FEEDS:
        raise RecordingError(f"{path}: name it after its feed ({', '.join(FEEDS)}), e.g. {FEEDS[0]}.csv")
    return feed


def _csv_recording(files: list[Path], city: City | None) -> tuple[RecordingHeader, list[RecordedEvent]]:
    events: list[RecordedEvent] = []
    feeds: list[str] = []
    for path in files:
        feed = csv_feed(path)
        feeds.append(feed)
        events.extend(_csv_events(path, feed, city))
    header = RecordingHeader(source="csv " + ", ".join(p.name for p in files), feeds=sorted(set(feeds)))
    return header, events


def _csv_events(path: Path, feed: str, city: City | None) -> Iterator[RecordedEvent]:
    model = MODELS[feed]
    context = {"city": city} if city is not None else None
    with path.open(encoding="utf-8-sig", newline="") as file:
        reader = csv.DictReader(file)
        for row in reader:
            cells = {name: value for name, value in row.items() if name and value not in ("", None)}
            fields = numbers_of(model, cells)  # the models take measures as numbers only
            try:
                event = model.model_validate(fields, context=context)
            except ValidationError as error:
                raise RecordingError(f"{path}:{reader.line_num}: {_first_error(error)}") from None
            yield RecordedEvent.of(event)


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}" if where else f"{first['msg']}{more}"
