"""The ingest edge: one pure function from an integrator's item to a Kafka record or a dead letter.

Every way in (HTTP batches, NGSI-LD notifications, the MQTT bridge) calls the same functions, so the
same item gets the same answer whichever way it came::

    outcome = prepare(
        "transit", item,
        city=city, card_key=b"secret", card_key_id="k1",
        source="http /v1/ingest/transit key=integrator:1a2b3c4d", received_at=now,
    )
    if isinstance(outcome, Accepted):
        producer.send(settings.raw_topic(outcome.feed), key=outcome.key_bytes, value=outcome.value)
    else:
        producer.send(settings.dlq_topic, key=outcome.dlq_key, value=outcome.dead_letter().to_json())

Public names (stable; other components rely on them):

- ``prepare(feed, item, *, city, card_key, card_key_id, source, received_at[, future_tolerance])
  -> Accepted | Rejected`` for an already-parsed JSON value (``item``: anything ``json.loads`` returns);
- ``prepare_json(feed, raw, *, ...same) -> Accepted | Rejected`` for the bytes of one JSON document
  (an MQTT payload, an NDJSON line): text that is not JSON is rejected with kind ``unparseable``;
- ``prepare_ngsi_ld(entity, *, ...same) -> Accepted | Rejected`` for one NGSI-LD entity (a notification's,
  an upsert's; any form ``ioc.models.ngsi_ld.read_entity`` reads); its ``type`` picks the feed, its id
  or ``refDevice`` the sensor (through the registry's ``external_ids`` too); ``Accepted.dropped`` names
  the attributes ioc does not keep;
- ``Accepted``: ``feed``, ``event`` (the validated model), ``key`` (the sensor id; ``key_bytes``), ``value``
  (the JSON bytes for ``<prefix>.<feed>.raw``) and ``dedup_key`` (see Idempotency);
- ``Rejected``: ``feed``, ``kind`` (the DLQ reason code: ``invalid``, ``unparseable`` or ``future``),
  ``problems`` (``Problem(field, reason)``, at least one), ``field`` and ``reason`` (the first problem's,
  a sentence naming no secret), ``payload`` (the original item, redacted), ``key``, ``source``, ``at``;
  ``dead_letter()`` gives the ``ioc.models.dead_letter.DeadLetter`` for ``<prefix>.dlq``.

What ``prepare`` does, in order:

1. **Pseudonymise.** A transit item may carry the raw card id as ``cardId`` (a string, or a JSON
   number). It is removed and replaced by ``cardIdHash`` = HMAC-SHA256(``card_key``, card id) and
   ``cardKeyId`` = ``card_key_id`` (``ioc.privacy.pseudonymise_card``) before anything else looks at
   the item. The raw id goes nowhere: not into the accepted value, not into a rejection's payload, field
   or reason. A rejection also redacts every other field whose name mentions a card (``cardNumber``,
   ``card_id`` …) unless it is a well-formed digest, key id or card type, and every occurrence of the
   raw id inside other values. An item that carries its raw card id in another field too is rejected,
   so a misplaced card number cannot reach Kafka.
2. **Stamp** ``ingestTime`` = ``received_at`` (a client's own ``ingestTime`` is replaced).
3. **Validate** with ``MODELS[feed].model_validate(item, context={"city": city})``.
4. **Bound the event time.** ``dateObserved`` more than ``future_tolerance`` (keyword, default
   ``IOC_FUTURE_TOLERANCE_SECONDS``' default; callers pass the setting) after ``received_at`` is
   rejected with kind ``future``, naming both times and the tolerance: a reading dated years ahead
   would move its sensor's windows past every real reading (they would all be late), so it is refused
   where it comes in. The worker applies the same bound against the record's Kafka timestamp, for
   producers that bypass the edge (``ioc.step``).

Idempotency: ``Accepted.dedup_key`` names the event for duplicate detection: the sensor and the
client's ``eventId`` when given (every feed accepts an optional ``eventId``; transit requires it; an id
is unique per source, not across sources), else the natural key of a
reading — the sensor, its event time (as an instant) and, for traffic, the lane. The edge does not
remember anything; the caller marks the key (the API uses Redis ``SET NX EX``).

No clock, no I/O, no logging: the function is pure and runs the same in the API, the MQTT bridge and
``ioc dlq replay``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from ioc.city import City
from ioc.feeds import MODELS, REGISTRY
from ioc.feeds.transit.model import HMAC_SHA256_HEX
from ioc.models import Event
from ioc.models.dead_letter import DeadLetter
from ioc.models.ngsi_ld import ENTITY_MODELS, NgsiLdError, read_entity
from ioc.models.time_range import utc_text
from ioc.privacy import pseudonymise_card
from ioc.settings import DEFAULT_FUTURE_TOLERANCE_SECONDS

INVALID = "invalid"
UNPARSEABLE = "unparseable"
FUTURE = "future"  # an event time beyond the receiving clock + the tolerance
DEFAULT_FUTURE_TOLERANCE = timedelta(seconds=DEFAULT_FUTURE_TOLERANCE_SECONDS)
NGSI_LD_FEED = "ngsi-ld"  # the DLQ feed of an entity whose type names no feed
REDACTED = "[redacted]"

RAW_CARD_FIELD = "cardId"
_HASH_FIELDS = frozenset({"cardIdHash", "card_id_hash"})
_LABEL_FIELDS = frozenset({"cardKeyId", "card_key_id", "cardType", "card_type"})
_CARD_NAME = re.compile(r"card", re.IGNORECASE)
_LONG_NUMBER = re.compile(r"\d{6}")
# In text that is not JSON: a card-named key and the value after it, up to the next separator.
_CARD_IN_TEXT = re.compile(
    r"""(["']?\w*card\w*["']?\s*[:=]\s*)("[^"]*"?|'[^']*'?|[^,;}\s]*)""", re.IGNORECASE
)
# Card numbers are 12 to 19 digits (ISO/IEC 7812); in text that is not JSON of a feed whose events carry
# card ids (``Feed.card_ids``: transit), and in a rejected item of one, every such run is redacted (a
# rejection loses nothing by it).
_CARD_NUMBER = re.compile(r"(?<!\d)\d{12,19}(?!\d)")
# NAPAS, Vietnam's domestic card scheme: 16 or 19 digits from IIN 9704. Counted as a card number with or
# without a valid Luhn check digit (the numbers of the issue and the tests' made-up cards have none).
_NAPAS = re.compile(r"9704(?:\d{12}|\d{15})")
_CARD_HELD = "holds a card number; send the card number only as cardId, where it is pseudonymised"
_MIN_SCRUB = 4  # shorter raw ids are not searched for inside other values (they would match everything)
_MAX_DEPTH = 32  # redaction stops descending here; deeper structures are replaced whole
_MAX_SHOWN = 80  # characters of an offending value quoted in a reason


@dataclass(frozen=True)
class Problem:
    """Why an item was rejected: the wire field (``(event)`` for the whole item) and a sentence."""

    field: str
    reason: str


@dataclass(frozen=True)
class Accepted:
    feed: str
    event: Event
    key: str  # the sensor id: the Kafka key
    value: bytes  # the event's wire JSON, pseudonymised and stamped
    dedup_key: str  # "<feed>:<32 hex digits of a SHA-256>", for duplicate detection (see above)
    dropped: tuple[str, ...] = ()  # an NGSI-LD entity's attributes ioc does not keep (ioc.models.ngsi_ld)

    @property
    def key_bytes(self) -> bytes:
        return self.key.encode()


@dataclass(frozen=True)
class Rejected:
    feed: str
    kind: str  # the DLQ reason code: "invalid", "unparseable" or "future"
    problems: tuple[Problem, ...]
    payload: Any  # the original item with every card id redacted (str when it was not JSON)
    key: str | None  # the item's sensorId when it named one (redacted like the payload)
    source: str
    at: datetime

    @property
    def field(self) -> str:
        return self.problems[0].field

    @property
    def reason(self) -> str:
        return self.problems[0].reason

    @property
    def detail(self) -> str:
        """Every problem on one line: ``field: reason; field: reason``."""
        return "; ".join(f"{p.field}: {p.reason}" for p in self.problems)

    @property
    def dlq_key(self) -> bytes | None:
        return self.key.encode() if self.key else None

    def payload_bytes(self) -> bytes:
        if isinstance(self.payload, str) and self.kind == UNPARSEABLE:
            return self.payload.encode()
        return json.dumps(self.payload, ensure_ascii=False, separators=(",", ":")).encode()

    def dead_letter(self) -> DeadLetter:
        return DeadLetter(
            reason=self.kind,
            detail=self.detail,
            feed=self.feed,
            source=self.source,
            time=self.at,
            key=self.key,
            payload=self.payload_bytes().decode(errors="replace"),
        )


def prepare(
    feed: str,
    item: object,
    *,
    city: City,
    card_key: bytes,
    card_key_id: str,
    source: str,
    received_at: datetime,
    future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE,
) -> Accepted | Rejected:
    """Pseudonymise, stamp, validate and bound one item of ``feed``; see the module docstring."""
    model = MODELS.get(feed)
    if model is None:
        raise ValueError(f"unknown feed {feed!r}; feeds: {', '.join(MODELS)}")
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    return _prepare(model, feed, item, city, card_key, card_key_id, source, received_at, future_tolerance)


def prepare_json(
    feed: str,
    raw: bytes | str,
    *,
    city: City,
    card_key: bytes,
    card_key_id: str,
    source: str,
    received_at: datetime,
    future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE,
) -> Accepted | Rejected:
    """``prepare`` for the bytes of one JSON document; text that is not JSON is rejected (redacted)."""
    parsed = parse_json(raw)
    if isinstance(parsed, Problem):
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        problem = Problem("(event)", parsed.reason)
        text = redact_text(text)
        if carries_cards(feed):
            text = _CARD_NUMBER.sub(REDACTED, text)
        return Rejected(feed, UNPARSEABLE, (problem,), text, None, source, received_at)
    return prepare(
        feed,
        parsed.value,
        city=city,
        card_key=card_key,
        card_key_id=card_key_id,
        source=source,
        received_at=received_at,
        future_tolerance=future_tolerance,
    )


def prepare_ngsi_ld(
    entity: object,
    *,
    city: City,
    card_key: bytes,
    card_key_id: str,
    source: str,
    received_at: datetime,
    future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE,
) -> Accepted | Rejected:
    """``prepare`` for one NGSI-LD entity (normalized or keyValues); its ``type`` picks the feed."""
    entity_type = entity.get("type") if isinstance(entity, dict) else None
    model = ENTITY_MODELS.get(entity_type) if isinstance(entity_type, str) else None
    feed = model.feed if model else NGSI_LD_FEED
    try:
        reading = read_entity(entity, city)  # type: ignore[arg-type]
    except NgsiLdError as error:
        return _reject(feed, INVALID, [ngsi_ld_problem(error)], entity, None, source, received_at)
    except ValueError as error:  # a malformed date in a traffic interval, and the like
        problem = Problem("(entity)", _sentence(str(error)))
        return _reject(feed, INVALID, [problem], entity, None, source, received_at)
    model = reading.model
    outcome = _prepare(
        model,
        model.feed,
        reading.attributes,
        city,
        card_key,
        card_key_id,
        source,
        received_at,
        future_tolerance,
    )
    if not isinstance(outcome, Accepted):
        return outcome
    # The names are reported back: one that is a card number is redacted, as in a rejection.
    return replace(outcome, dropped=tuple(_redact_digits(name) for name in reading.dropped))


@dataclass(frozen=True)
class Parsed:
    value: Any


def parse_json(raw: bytes | str) -> Parsed | Problem:
    """One JSON document, strictly: no NaN or Infinity, no absurd nesting; a ``Problem`` says why not."""
    try:
        return Parsed(json.loads(raw, parse_constant=_no_constants))
    except UnicodeDecodeError:
        return Problem("(body)", "is not UTF-8 text")
    except RecursionError:
        return Problem("(body)", "is nested too deeply to be an event")
    except ValueError as error:  # JSONDecodeError, NaN/Infinity, integers too long to convert
        return Problem("(body)", f"is not JSON: {_sentence(str(error))}")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _prepare(
    model: type[Event],
    feed: str,
    item: object,
    city: City,
    card_key: bytes,
    card_key_id: str,
    source: str,
    received_at: datetime,
    future_tolerance: timedelta,
) -> Accepted | Rejected:
    if not isinstance(item, dict):
        problem = Problem("(event)", f"an event is a JSON object, not {_json_type(item)}")
        if carries_cards(feed):  # a bare value on a card feed may be a card number sent alone
            item = _redact_numbers(item)
        return _reject(feed, INVALID, [problem], item, None, source, received_at)
    item = dict(item)
    raw_card: str | None = None
    if RAW_CARD_FIELD in item:
        raw = item.pop(RAW_CARD_FIELD)
        problem = None
        if isinstance(raw, bool) or not isinstance(raw, str | int) or not str(raw).strip():
            problem = Problem(RAW_CARD_FIELD, "must be the card id as a non-empty string or number")
        elif any(name in item for name in _HASH_FIELDS):
            problem = Problem(RAW_CARD_FIELD, "give either cardId or cardIdHash, not both")
        else:
            raw_card = str(raw).strip()
            item["cardIdHash"], item["cardKeyId"] = pseudonymise_card(raw_card, card_key, card_key_id)
            elsewhere = _fields_containing(item, raw_card) if len(raw_card) >= _MIN_SCRUB else []
            if elsewhere:
                problem = Problem(
                    elsewhere[0],
                    "contains the raw card id; send the card id only as cardId, where it is pseudonymised",
                )
        if problem is not None:
            item[RAW_CARD_FIELD] = REDACTED
            return _reject(feed, INVALID, [problem], item, raw_card, source, received_at)
    if carries_cards(feed):
        # A card number anywhere else (an unknown field, deviceId, a nested key) would reach Kafka, or be
        # echoed by the validation error quoting it: refused before validation, naming only where it was.
        holding = card_number_fields(item)
        if holding:
            problems = [Problem(name, _CARD_HELD) for name in holding]
            return _reject(feed, INVALID, problems, item, raw_card, source, received_at)
    # The payload of a rejection is what the client sent (pseudonymised), without our stamp.
    stamped = {name: value for name, value in item.items() if name != "ingest_time"}
    stamped["ingestTime"] = _isoformat(received_at)
    try:
        event = model.model_validate(stamped, context={"city": city})
    except ValidationError as error:
        problems = [_problem(p) for p in error.errors(include_url=False)]
        return _reject(feed, INVALID, problems, item, raw_card, source, received_at)
    ahead = too_far_ahead(event.date_observed, received_at, future_tolerance, "it was received")
    if ahead is not None:
        problem = Problem("dateObserved", ahead)
        return _reject(feed, FUTURE, [problem], item, raw_card, source, received_at)
    return Accepted(feed, event, event.sensor_id, event.to_json(), dedup_key(event))


def too_far_ahead(
    event_time: datetime, received: datetime, tolerance: timedelta, received_as: str
) -> str | None:
    """Why ``event_time`` is too far ahead of the clock that received it, or None when it is not.

    Shared by the edge (``received`` = the edge's clock) and the worker (the record's Kafka time), so a
    rejection reads the same wherever it happens."""
    ahead = event_time - received
    if ahead <= tolerance:
        return None
    return (
        f"is {event_time.isoformat()}, {_span(ahead)} after {received_as} "
        f"({utc_text(received.replace(microsecond=0))}); an event time may be at most "
        f"{_span(tolerance)} ahead (IOC_FUTURE_TOLERANCE_SECONDS)"
    )


def _span(span: timedelta) -> str:
    """A duration as people read it: ``300 s``, ``2.5 h``, ``9.1 years`` (seconds up to two hours, so a
    time just beyond a tolerance of minutes does not read as equal to it)."""
    seconds = span.total_seconds()
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600)):
        if seconds >= 2 * size:
            return f"{seconds / size:.1f} {unit}".replace(".0 ", " ")
    return f"{round(seconds, 3):g} s"


@lru_cache(maxsize=16)
def _isoformat(moment: datetime) -> str:
    return moment.isoformat()  # once per request, not once per item


def carries_cards(feed: str) -> bool:
    """Whether ``feed``'s events carry card ids (its registry entry says so): the edge pseudonymises them
    and keeps no run of a card number's digits in what it rejects."""
    registered = REGISTRY.get(feed)
    return registered is not None and registered.card_ids


def reading_identity(event: Event) -> bytes:
    """What makes a reading the same reading again: its sensor and eventId (ids are only unique per
    source: two sensors' "1" are two events), else sensor + event time (+ the model's
    ``identity_fields``: a lane). The edge's duplicate marks and the worker's recent readings
    (``ioc.step``) both go by it."""
    if event.event_id is not None:
        parts = ["id", event.sensor_id, event.event_id]
    else:
        parts = ["at", event.sensor_id, utc_text(event.date_observed)]
        for name in event.identity_fields:  # what else tells two readings of a sensor apart (a lane)
            value = getattr(event, name)
            parts.append("" if value is None else str(value))
    return "\x1f".join(parts).encode()


def dedup_key(event: Event) -> str:
    """The event's key among the edge's duplicate marks in Redis."""
    digest = hashlib.sha256(reading_identity(event)).hexdigest()[:32]  # 128 bits
    return f"{event.feed}:{digest}"


def _reject(
    feed: str,
    kind: str,
    problems: list[Problem],
    item: object,
    raw_card: str | None,
    source: str,
    at: datetime,
) -> Rejected:
    payload = redact(item, raw_card)
    problems = [Problem(p.field, _scrub(p.reason, raw_card)) for p in problems]
    if carries_cards(feed) or feed == NGSI_LD_FEED:  # a rejected tap, or an entity of no known feed
        payload = _redact_numbers(payload)
        problems = [Problem(_redact_digits(p.field), _redact_digits(p.reason)) for p in problems]
    key = payload.get("sensorId") if isinstance(payload, dict) else None
    key = key[:128] if isinstance(key, str) and key else None
    return Rejected(feed, kind, tuple(problems), payload, key, source, at)


def redact(value: object, raw_card: str | None = None, depth: int = 0) -> Any:
    """A copy of a JSON value with card ids redacted: card-named fields, and the known raw id anywhere."""
    if depth > _MAX_DEPTH:
        return "[nested too deeply]"
    if isinstance(value, dict):
        return {
            str(name): (
                inner
                if _is_safe_card_value(str(name), inner)
                else REDACTED
                if _CARD_NAME.search(str(name))
                else redact(inner, raw_card, depth + 1)
            )
            for name, inner in value.items()
        }
    if isinstance(value, list):
        return [redact(inner, raw_card, depth + 1) for inner in value]
    if isinstance(value, str):
        return _scrub(value, raw_card)
    return value


def redact_text(text: str, raw_card: str | None = None) -> str:
    """Text that is not JSON, with the value after any card-named key redacted."""
    return _scrub(_CARD_IN_TEXT.sub(lambda m: f'{m.group(1)}"{REDACTED}"', text), raw_card)


def _redact_numbers(value: object, depth: int = 0) -> Any:
    """A JSON value with every card-number-like run of digits redacted: in strings, numbers and keys."""
    if depth > _MAX_DEPTH:
        return "[nested too deeply]"
    if isinstance(value, str):
        return _redact_digits(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and _CARD_NUMBER.search(str(value)):
        return REDACTED
    if isinstance(value, list):
        return [_redact_numbers(v, depth + 1) for v in value]
    if isinstance(value, dict):
        # A well-formed card hash is kept: its 64 hex digits can hold a run of 12 or more decimal ones.
        return {
            _redact_digits(str(k)): v if _is_safe_card_value(str(k), v) else _redact_numbers(v, depth + 1)
            for k, v in value.items()
        }
    return value


def _redact_digits(text: str) -> str:
    return _CARD_NUMBER.sub(REDACTED, text)


def redact_card_numbers(value: object) -> Any:
    """A JSON value with every run of 12 to 19 digits redacted, in keys and values (for a payload that
    may be a tap: a rejected one loses nothing by it)."""
    return _redact_numbers(value)


def scrub_card_numbers(text: str) -> str:
    """``text`` with the runs of digits that are card numbers redacted (an address: an MQTT topic)."""
    return _CARD_NUMBER.sub(lambda m: REDACTED if is_card_number(m.group()) else m.group(), text)


def is_card_number(digits: str) -> bool:
    """Whether a run of 12 to 19 digits is a card number: its Luhn check digit holds (ISO/IEC 7812), or
    it is a NAPAS card's."""
    if not 12 <= len(digits) <= 19 or not digits.isdigit():
        return False
    if _NAPAS.fullmatch(digits):
        return True
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 else 1)  # every second digit from the right, doubled
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def holds_card_number(text: str) -> bool:
    """Whether ``text`` has a run of 12 to 19 digits that is a card number."""
    return any(is_card_number(run) for run in _CARD_NUMBER.findall(text))


def card_number_fields(item: dict[str, Any]) -> list[str]:
    """The item's fields (names with their digits redacted) whose name or value, at any depth, holds a
    card number; a well-formed digest, key id or card type is skipped (a digest's hex can hold a run of
    digits by chance)."""
    found: list[str] = []
    for name, value in item.items():
        if _is_safe_card_value(str(name), value):
            continue
        if holds_card_number(str(name)) or _value_holds_card(value):
            found.append(_redact_digits(str(name)))
    return found


def _value_holds_card(value: object, depth: int = 0) -> bool:
    if depth > _MAX_DEPTH:
        return False  # the model refuses what is nested this deep, and the payload is replaced whole
    if isinstance(value, dict):
        return any(holds_card_number(str(k)) or _value_holds_card(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_value_holds_card(v, depth + 1) for v in value)
    if isinstance(value, bool) or value is None:
        return False
    return holds_card_number(str(value))


def _is_safe_card_value(name: str, value: object) -> bool:
    if name in _HASH_FIELDS:
        return isinstance(value, str) and HMAC_SHA256_HEX.fullmatch(value) is not None
    if name in _LABEL_FIELDS:
        return isinstance(value, str) and len(value) <= 32 and not _LONG_NUMBER.search(value)
    return False


def _scrub(text: str, raw_card: str | None) -> str:
    if raw_card and len(raw_card) >= _MIN_SCRUB:
        return text.replace(raw_card, REDACTED)
    return text


def _fields_containing(item: dict[str, Any], needle: str) -> list[str]:
    found = []
    for name, value in item.items():
        if name in _HASH_FIELDS or name in _LABEL_FIELDS:
            continue
        if needle in str(name) or needle in _flat_text(value):
            found.append(str(name))
    return found


def _flat_text(value: object, depth: int = 0) -> str:
    if depth > _MAX_DEPTH:
        return ""
    if isinstance(value, dict):
        return " ".join(f"{k} {_flat_text(v, depth + 1)}" for k, v in value.items())
    if isinstance(value, list):
        return " ".join(_flat_text(v, depth + 1) for v in value)
    return str(value)


def _problem(error: Any) -> Problem:
    """A pydantic error as (wire field, sentence), quoting the offending value unless it names a card."""
    location = [str(part) for part in error["loc"]]
    field = ".".join(location) or "(event)"
    message = _sentence(str(error["msg"]).removeprefix("Value error, "))
    if not location:
        return Problem(field, message)
    value = error.get("input")
    if error["type"] == "missing" or isinstance(value, dict | list):
        return Problem(field, message)
    if any(_CARD_NAME.search(part) for part in location) and not _is_safe_card_value(location[-1], value):
        return Problem(field, f"{message} (value redacted)")
    shown = json.dumps(value, ensure_ascii=False, default=str)
    if len(shown) > _MAX_SHOWN:
        shown = shown[: _MAX_SHOWN - 1] + "…"
    return Problem(field, f"{message} (got {shown})")


def ngsi_ld_problem(error: NgsiLdError) -> Problem:
    """An envelope error as (attribute, sentence): the attribute the error names (``(entity)`` when it
    names none) and its reason, quoting the value when it is a scalar and naming its JSON type when it is
    an object or an array (their text would bury the reason)."""
    if error.attribute is None:
        return Problem("(entity)", _sentence(error.reason))
    if not error.has_value:
        return Problem(error.attribute, _sentence(error.reason))
    if _CARD_NAME.search(error.attribute):
        shown = REDACTED
    elif isinstance(error.value, dict | list):
        shown = "an object" if isinstance(error.value, dict) else "an array"
    else:
        shown = json.dumps(error.value, ensure_ascii=False, default=str)
        if len(shown) > _MAX_SHOWN:
            shown = shown[: _MAX_SHOWN - 1] + "…"
    return Problem(error.attribute, _sentence(f"{error.reason} (got {shown})"))


def _sentence(text: str) -> str:
    return " ".join(text.split()) or "invalid"


def _json_type(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
