"""The dead-letter topic ``<prefix>.dlq``: read it, and replay corrected events into the raw topics.

Reading uses a plain consumer with no group (nothing is committed, nobody else's position moves): it
takes the partitions' end offsets when it starts and reads from the beginning (or from ``since``) up to
them. A dead letter is named by its position in the topic, ``partition:offset`` (``2:17``).

Replay runs each payload, or a corrected item, through the same ingest edge as every other way in
(``ioc.ingest.edge.prepare``). Accepted events go to ``<prefix>.<feed>.raw``; what still fails goes back to
the DLQ with its reason and a source naming the dead letter it came from (``replay of <dlq> 2:17``).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from pydantic import ValidationError

from connectors.kafka import EventProducer, kafka_python_options
from connectors.sources.mqtt import Edge
from ioc.feeds import MODELS
from ioc.ingest.edge import Accepted, Problem, Rejected, parse_json, prepare, prepare_json
from ioc.models.dead_letter import DeadLetter
from ioc.settings import Settings

READ_TIMEOUT = 60.0
_POSITION = re.compile(r"(?:(\d+):)?(\d+)")


class DlqError(ValueError):
    """A request the DLQ tools cannot serve: a malformed position, a line of a fix file, a missing letter."""


@dataclass(frozen=True, order=True)
class Position:
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.partition}:{self.offset}"

    @classmethod
    def parse(cls, text: str) -> Position:
        """``partition:offset``; a bare ``offset`` means partition 0."""
        match = _POSITION.fullmatch(text.strip())
        if match is None:
            raise DlqError(f"{text!r} is not a DLQ position: write partition:offset, e.g. 0:17")
        return cls(int(match.group(1) or 0), int(match.group(2)))


@dataclass(frozen=True)
class StoredLetter:
    """One record of the DLQ topic: where it is, and the dead letter it holds (if it is one)."""

    position: Position
    timestamp: datetime  # the Kafka record's timestamp
    key: str | None
    value: bytes
    letter: DeadLetter | None  # None when the record is not a dead letter (then ``problem`` says why)
    problem: str | None = None

    @classmethod
    def from_record(cls, partition: int, offset: int, timestamp_ms: int, key: bytes | None, value: bytes):
        at = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
        shown_key = key.decode(errors="replace") if key is not None else None
        try:
            letter = DeadLetter.model_validate_json(value)
        except ValidationError as error:
            summary = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(record)'}: {e['msg']}" for e in error.errors()
            )
            return cls(
                Position(partition, offset), at, shown_key, value, None, f"not a dead letter: {summary}"
            )
        return cls(Position(partition, offset), at, shown_key, value, letter)

    @property
    def feed(self) -> str:
        return self.letter.feed if self.letter else "?"

    @property
    def reason(self) -> str:
        return self.letter.reason if self.letter else "?"

    @property
    def detail(self) -> str:
        return self.letter.detail if self.letter else str(self.problem)

    @property
    def time(self) -> datetime:
        """When it was rejected (the record's timestamp for a record that is not a dead letter)."""
        return self.letter.time if self.letter else self.timestamp

    def as_json(self) -> dict[str, Any]:
        """Everything about the dead letter, with its payload parsed when it is JSON."""
        shown: dict[str, Any] = {"position": str(self.position), "kafkaTimestamp": self.timestamp.isoformat()}
        if self.letter is None:
            return shown | {
                "key": self.key,
                "problem": self.problem,
                "value": self.value.decode(errors="replace"),
            }
        shown |= json.loads(self.letter.model_dump_json(by_alias=True))
        parsed = parse_json(self.letter.payload)
        if not isinstance(parsed, Problem):
            shown["payload"] = parsed.value
        return shown


@dataclass(frozen=True)
class Selection:
    """Which dead letters: by feed, reason and rejection time (each optional)."""

    feed: str | None = None
    reason: str | None = None
    since: datetime | None = None

    def __call__(self, stored: StoredLetter) -> bool:
        return (
            (self.feed is None or stored.feed == self.feed)
            and (self.reason is None or stored.reason == self.reason)
            and (self.since is None or stored.time >= self.since)
        )


def _consumer(settings: Settings) -> KafkaConsumer:
    return KafkaConsumer(
        **kafka_python_options(settings),
        group_id=None,
        enable_auto_commit=False,
        client_id="ioc-dlq",
    )


def read_dlq(
    settings: Settings, *, since: datetime | None = None, timeout: float = READ_TIMEOUT
) -> Iterator[StoredLetter]:
    """Every dead letter from the beginning (or the first at or after ``since``) to the current end."""
    consumer = _consumer(settings)
    try:
        partitions = _partitions(consumer, settings.dlq_topic)
        if not partitions:
            return
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        starts = consumer.beginning_offsets(partitions)
        if since is not None:
            # Record timestamps are write times; a dead letter is written when it is rejected.
            found = consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in partitions})
            starts = {tp: found[tp].offset if found.get(tp) else ends[tp] for tp in partitions}
        for tp in partitions:
            consumer.seek(tp, starts[tp])
        yield from _read_until(consumer, ends, timeout, settings.dlq_topic)
    finally:
        consumer.close()


def fetch(
    settings: Settings, positions: Iterable[Position], *, timeout: float = READ_TIMEOUT
) -> list[StoredLetter]:
    """The dead letters at ``positions``, in that order; DlqError names any that is not there."""
    wanted = list(dict.fromkeys(positions))
    if not wanted:
        return []
    consumer = _consumer(settings)
    found: dict[Position, StoredLetter] = {}
    held: dict[int, tuple[int, int]] = {}  # partition → (first offset, end offset), for the error
    try:
        partitions = {tp.partition: tp for tp in _partitions(consumer, settings.dlq_topic)}
        missing_partitions = sorted({p.partition for p in wanted} - set(partitions))
        if missing_partitions:
            raise DlqError(
                f"{settings.dlq_topic} has no partition {', '.join(map(str, missing_partitions))} "
                f"(it has {len(partitions)})"
            )
        chosen = [partitions[p] for p in sorted({p.partition for p in wanted})]
        consumer.assign(chosen)
        ends = consumer.end_offsets(chosen)
        starts = consumer.beginning_offsets(chosen)
        limits = {}
        for tp in chosen:
            held[tp.partition] = (starts[tp], ends[tp])
            offsets = [p.offset for p in wanted if p.partition == tp.partition]
            consumer.seek(tp, max(min(offsets), starts[tp]))
            limits[tp] = min(max(offsets) + 1, ends[tp])
        wanted_set = set(wanted)
        for stored in _read_until(consumer, limits, timeout, settings.dlq_topic):
            if stored.position in wanted_set:
                found[stored.position] = stored
    finally:
        consumer.close()
    missing = [p for p in wanted if p not in found]
    if missing:
        ranges = []
        for partition in sorted({p.partition for p in missing}):
            first, end = held[partition]
            ranges.append(
                f"partition {partition} is empty"
                if first >= end
                else f"partition {partition} holds {first}–{end - 1}"
            )
        raise DlqError(
            f"no dead letter at {', '.join(map(str, missing))} in {settings.dlq_topic} ({'; '.join(ranges)})"
        )
    return [found[p] for p in wanted]


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


def _read_until(
    consumer: KafkaConsumer, ends: dict[TopicPartition, int], timeout: float, topic: str
) -> Iterator[StoredLetter]:
    deadline = time.monotonic() + timeout
    remaining = {tp for tp, end in ends.items() if consumer.position(tp) < end}
    while remaining:
        if time.monotonic() > deadline:
            raise TimeoutError(f"reading {topic} did not reach its end within {timeout:.0f} s")
        for tp, records in consumer.poll(timeout_ms=500).items():
            for record in records:
                if record.offset < ends[tp]:
                    yield StoredLetter.from_record(
                        tp.partition, record.offset, record.timestamp, record.key, record.value
                    )
        remaining = {tp for tp in remaining if consumer.position(tp) < ends[tp]}


# --- replay ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """An item to send through the edge again: where it came from, its feed, and the item."""

    origin: str  # "0:17", "0:17[2]" (an item of an array), "fix.jsonl:3 (0:17)"
    feed: str
    item: Any = None  # the parsed JSON item
    text: str | None = None  # the text, when it is not JSON (the edge rejects it again, as unparseable)
    key: str | None = None


@dataclass(frozen=True)
class ReplayOutcome:
    candidate: Candidate
    outcome: Accepted | Rejected | None  # None: skipped, see ``skipped``
    skipped: str | None = None


def candidates_from_letters(letters: Iterable[StoredLetter]) -> list[Candidate]:
    """Each dead letter's payload, as it was; an array payload gives one candidate per item."""
    found = []
    for stored in letters:
        origin = str(stored.position)
        if stored.letter is None:
            found.append(Candidate(origin, "?", text=stored.value.decode(errors="replace")))
            continue
        letter = stored.letter
        parsed = parse_json(letter.payload)
        if isinstance(parsed, Problem):
            found.append(Candidate(origin, letter.feed, text=letter.payload, key=letter.key))
        elif isinstance(parsed.value, list) and parsed.value:
            found += [
                Candidate(f"{origin}[{i}]", letter.feed, item=item, key=letter.key)
                for i, item in enumerate(parsed.value)
            ]
        else:
            found.append(Candidate(origin, letter.feed, item=parsed.value, key=letter.key))
    return found


def fix_lines(letters: Iterable[StoredLetter]) -> str:
    """The dead letters as a fix file: one ``{"offset", "feed", "item"}`` line each, for editing."""
    lines = []
    for candidate in candidates_from_letters(letters):
        position = candidate.origin.split("[")[0]
        value = candidate.item if candidate.text is None else candidate.text
        lines.append(
            json.dumps({"offset": position, "feed": candidate.feed, "item": value}, ensure_ascii=False)
        )
    return "\n".join(lines) + ("\n" if lines else "")


def candidates_from_fix(
    path: Path, settings: Settings, *, default_feed: str | None = None, timeout: float = READ_TIMEOUT
) -> list[Candidate]:
    """Corrected items from a JSON Lines file.

    A line is ``{"offset": "0:17", "item": {…}}`` (the corrected item of that dead letter, whose feed it
    keeps unless the line gives ``"feed"``), ``{"feed": "air", "item": {…}}``, or a bare item (then the
    feed is ``default_feed``). Blank lines and lines starting with ``#`` are skipped.
    """
    entries: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parsed = parse_json(line)
        if isinstance(parsed, Problem):
            raise DlqError(f"{path.name}:{number}: {parsed.reason}")
        value = parsed.value
        if isinstance(value, dict) and "item" in value and set(value) <= {"item", "offset", "feed"}:
            entries.append((number, value))
        else:
            entries.append((number, {"item": value}))
    positions = [Position.parse(str(e["offset"])) for _, e in entries if "offset" in e]
    originals = {s.position: s for s in fetch(settings, positions, timeout=timeout)}
    found = []
    for number, entry in entries:
        origin = f"{path.name}:{number}"
        original = originals.get(Position.parse(str(entry["offset"]))) if "offset" in entry else None
        feed = entry.get("feed") or (original.feed if original else default_feed)
        if not feed:
            raise DlqError(f'{origin}: which feed? give "feed" on the line, an "offset", or --feed')
        if original is not None:
            origin += f" ({original.position})"
        item = entry["item"]
        key = original.letter.key if original and original.letter else None
        if isinstance(item, str) and (feed not in MODELS or isinstance(parse_json(item), Problem)):
            found.append(Candidate(origin, str(feed), text=item, key=key))
        else:
            found.append(Candidate(origin, str(feed), item=item, key=key))
    return found


def prepare_candidates(
    candidates: Iterable[Candidate], settings: Settings, *, edge: Edge, now: datetime
) -> list[ReplayOutcome]:
    """Run every candidate through the ingest edge (pure: nothing is written)."""
    results = []
    for candidate in candidates:
        if candidate.feed not in MODELS:
            results.append(
                ReplayOutcome(
                    candidate,
                    None,
                    f"feed {candidate.feed!r} is not one of {', '.join(MODELS)}: "
                    "give the corrected item and its feed in a fix file",
                )
            )
            continue
        options = dict(
            city=edge.city,
            card_key=edge.card_key,
            card_key_id=edge.card_key_id,
            source=f"replay of {settings.dlq_topic} {candidate.origin}",
            received_at=now,
            future_tolerance=edge.future_tolerance,
        )
        if candidate.text is not None:
            outcome = prepare_json(candidate.feed, candidate.text, **options)
        else:
            outcome = prepare(candidate.feed, candidate.item, **options)
        results.append(ReplayOutcome(candidate, outcome))
    return results


def replay(
    candidates: Iterable[Candidate],
    settings: Settings,
    *,
    edge: Edge | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> list[ReplayOutcome]:
    """Prepare the candidates, then write accepted ones to the raw topics and failures back to the DLQ.

    Returns once Kafka has acknowledged every record (idempotent producer, ``acks=all``).
    """
    results = prepare_candidates(
        candidates, settings, edge=edge or Edge.from_settings(settings), now=now or datetime.now(UTC)
    )
    records = []
    for result in results:
        outcome = result.outcome
        if isinstance(outcome, Accepted):
            records.append((settings.raw_topic(outcome.feed), outcome.key, outcome.value))
        elif isinstance(outcome, Rejected):
            key = outcome.key or result.candidate.key or ""
            records.append((settings.dlq_topic, key, outcome.dead_letter().to_json()))
    if records and not dry_run:
        asyncio.run(_send(settings, records))
    return results


async def _send(settings: Settings, records: list[tuple[str, str, bytes]]) -> int:
    async with EventProducer(settings) as producer:
        return await producer.send_many(records)
