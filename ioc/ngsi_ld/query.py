"""NGSI-LD's query language (ETSI GS CIM 009 §4.9): the ``q`` of ``GET /ngsi-ld/v1/entities`` parsed into a
small tree, and the tree evaluated on an entity (normalized or keyValues).

What is read (§4.9's grammar, without whitespace rules: spaces between terms are skipped):

- **Terms**: ``attr`` (the attribute exists), ``attr==v``, ``!=``, ``>``, ``>=``, ``<``, ``<=``, and
  ``~=`` / ``!~=`` (a regular expression, searched in a text value).
- **Attributes**: ``attr``, a sub-attribute ``attr.sub`` (``pm25.observedAt``, ``pm25.unitCode``), a
  member of a compound value ``attr[key][key]``.
- **Values**: numbers, ``"quoted text"`` (JSON escapes), ``true``/``false``, date-times
  (``2026-01-15T01:00:00Z``; without an offset, UTC), dates and times unquoted; with ``==`` and ``!=``
  also a list ``v1,v2`` (any of them), a range ``v1..v2`` (both ends included) and an unquoted URI.
- **Logic**: ``;`` and, ``|`` or, parentheses; ``;`` binds tighter than ``|``.

How a term holds (§4.9): the attribute's value is its Property's ``value`` (the default instance of a
multi-instance one; a typed literal's ``@value``) or its Relationship's ``object``; a term on an attribute
the entity lacks is false, ``!=`` and ``!~=`` included; a value that is a list matches when one of its
members does (``!=``: when none equals); a value compares only with a literal of its kind (a number with
a number, text with text, a date-time text with a date-time …), else the term is false.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from ioc.models.ngsi_ld_values import pick_instance, read_attribute

MAX_QUERY_LENGTH = 4096
MAX_DEPTH = 32  # nested parentheses: deeper is refused, not a RecursionError
MAX_PATTERN_LENGTH = 256  # a regular expression is an operator's, but bounded all the same

Literal = int | float | str | bool | datetime | date | time


class QueryError(ValueError):
    """``q`` is not a query ioc reads; the message says where and why."""


@dataclass(frozen=True)
class Attribute:
    """``name.sub.sub[key][key]``: an attribute, its sub-attributes, keys into its compound value."""

    name: str
    subs: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()

    def __str__(self) -> str:
        return ".".join((self.name, *self.subs)) + "".join(f"[{key}]" for key in self.keys)


@dataclass(frozen=True)
class Range:
    low: Literal
    high: Literal


@dataclass(frozen=True)
class Term:
    """One comparison; ``op`` None means the attribute exists. ``value`` is a literal, a tuple of them
    (a list: any of them) or a Range for ``==`` and ``!=``, a compiled pattern for ``~=`` and ``!~=``."""

    attribute: Attribute
    op: str | None = None
    value: Any = None


@dataclass(frozen=True)
class And:
    terms: tuple[Query, ...]


@dataclass(frozen=True)
class Or:
    terms: tuple[Query, ...]


Query = Term | And | Or

# Longest first: "!~=" before "!=", ">=" before ">".
OPERATORS = ("!~=", "~=", "==", "!=", ">=", "<=", ">", "<")
_NAME = re.compile(r"[A-Za-z0-9_@#:/\-]+")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_INTEGER = re.compile(r"-?\d+")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s\"]+")
# A '+' left unencoded in a URL arrives as a space: "…T08:00:00 07:00" is "…T08:00:00+07:00".
_SPACED_OFFSET = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


def parse_query(text: str) -> Query:
    """The query tree of a ``q``; raises ``QueryError`` naming the position and what was expected."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"q is {len(text)} characters long; at most {MAX_QUERY_LENGTH}")
    parser = _Parser(text)
    query = parser.disjunction(0)
    parser.skip_spaces()
    if not parser.at_end():
        raise parser.error("expected ';', '|' or the end of the query")
    return query


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, reason: str) -> QueryError:
        shown = self.text[self.pos : self.pos + 20] or "the end"
        return QueryError(f"q: {reason} at position {self.pos} ({shown!r})")

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def skip_spaces(self) -> None:
        while not self.at_end() and self.text[self.pos].isspace():
            self.pos += 1

    def take(self, token: str) -> bool:
        self.skip_spaces()
        if self.text.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def disjunction(self, depth: int) -> Query:
        terms = [self.conjunction(depth)]
        while self.take("|"):
            terms.append(self.conjunction(depth))
        return terms[0] if len(terms) == 1 else Or(tuple(terms))

    def conjunction(self, depth: int) -> Query:
        terms = [self.operand(depth)]
        while self.take(";"):
            terms.append(self.operand(depth))
        return terms[0] if len(terms) == 1 else And(tuple(terms))

    def operand(self, depth: int) -> Query:
        if self.take("("):
            if depth >= MAX_DEPTH:
                raise self.error(f"more than {MAX_DEPTH} nested parentheses")
            inner = self.disjunction(depth + 1)
            if not self.take(")"):
                raise self.error("expected ')'")
            return inner
        return self.term()

    def term(self) -> Term:
        attribute = self.attribute()
        self.skip_spaces()
        op = next((op for op in OPERATORS if self.text.startswith(op, self.pos)), None)
        if op is None:
            return Term(attribute)
        self.pos += len(op)
        start = self.pos
        text = self.value_text()
        try:
            return Term(attribute, op, _value(op, text))
        except QueryError as error:
            self.pos = start
            raise self.error(str(error)) from None

    def attribute(self) -> Attribute:
        self.skip_spaces()
        name = self.name("an attribute name")
        subs, keys = [], []
        while self.text.startswith(".", self.pos):
            self.pos += 1
            subs.append(self.name("a sub-attribute name after '.'"))
        while self.text.startswith("[", self.pos):
            self.pos += 1
            keys.append(self.name("a key after '['"))
            if not self.text.startswith("]", self.pos):
                raise self.error("expected ']'")
            self.pos += 1
        return Attribute(name, tuple(subs), tuple(keys))

    def name(self, what: str) -> str:
        found = _NAME.match(self.text, self.pos)
        if not found:
            raise self.error(f"expected {what}")
        self.pos = found.end()
        return found.group()

    def value_text(self) -> str:
        """The text up to the next ';', '|' or ')' outside quotes."""
        start, quoted = self.pos, False
        while not self.at_end():
            char = self.text[self.pos]
            if quoted and char == "\\":
                self.pos += 2
                continue
            if char == '"':
                quoted = not quoted
            elif not quoted and char in ";|)":
                break
            self.pos += 1
        if quoted:
            self.pos = start
            raise self.error("a quoted value is not closed")
        return self.text[start : self.pos].strip()


def _value(op: str, text: str) -> Any:
    if not text:
        raise QueryError(f"expected a value after {op!r}")
    if op in ("~=", "!~="):
        pattern = _literal(text) if text.startswith('"') else text
        if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN_LENGTH:
            raise QueryError(f"a pattern is text of at most {MAX_PATTERN_LENGTH} characters")
        try:
            return re.compile(pattern)
        except re.error as error:
            raise QueryError(f"{pattern!r} is not a regular expression: {error}") from None
    equality = op in ("==", "!=")
    items = _split_outside_quotes(text, ",")
    if len(items) > 1:
        if not equality:
            raise QueryError(f"a list of values goes with '==' or '!=', not {op!r}")
        return tuple(_literal(item, uri=True) for item in items)
    ends = _split_outside_quotes(text, "..")
    if len(ends) == 2:
        if not equality:
            raise QueryError(f"a range goes with '==' or '!=', not {op!r}")
        low, high = (_literal(end) for end in ends)
        if isinstance(low, bool) or isinstance(high, bool) or _kind(low) != _kind(high):
            raise QueryError(f"a range's ends are two numbers, texts, date-times, dates or times: {text!r}")
        return Range(low, high)
    value = _literal(text, uri=equality)
    if not equality and isinstance(value, bool):
        raise QueryError(f"true and false compare with '==' or '!=', not {op!r}")
    return value


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts, start, quoted, i = [], 0, False, 0
    while i < len(text):
        if quoted and text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            quoted = not quoted
        elif not quoted and text.startswith(separator, i):
            parts.append(text[start:i].strip())
            i += len(separator)
            start = i
            continue
        i += 1
    parts.append(text[start:].strip())
    return parts


def _literal(text: str, *, uri: bool = False) -> Literal:
    """A value of the query language: quoted text, a boolean, a number, a date-time, a date, a time, or
    (with ``uri``) an unquoted URI."""
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise QueryError(f"{text} is not a quoted text (JSON escapes)") from None
        return value
    if text in ("true", "false"):
        return text == "true"
    if _NUMBER.fullmatch(text):
        return int(text) if _INTEGER.fullmatch(text) else float(text)
    text = _SPACED_OFFSET.sub(r"\1+\2", text)
    try:
        if _DATETIME.fullmatch(text):
            return _utc(datetime.fromisoformat(text))
        if _DATE.fullmatch(text):
            return date.fromisoformat(text)
        if _TIME.fullmatch(text):
            return time.fromisoformat(text)
    except ValueError as error:
        raise QueryError(f"{text!r}: {error}") from None
    if uri and _URI.fullmatch(text):
        return text
    raise QueryError(
        f"{text!r} is not a value: quote text (\"…\"); numbers, true, false, date-times and, with '==' "
        "or '!=', URIs go unquoted"
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _kind(value: Any) -> type:
    """The kind a value compares within: numbers together, else its own type."""
    if isinstance(value, bool):
        return bool
    if isinstance(value, int | float):
        return float
    return type(value)


# ---------------------------------------------------------------------------------------------------
# Evaluation.

_MISSING = object()


def matches(query: Query, entity: dict[str, Any]) -> bool:
    """Whether ``entity`` (an NGSI-LD entity, normalized or keyValues) satisfies ``query``."""
    if isinstance(query, And):
        return all(matches(term, entity) for term in query.terms)
    if isinstance(query, Or):
        return any(matches(term, entity) for term in query.terms)
    return _holds(query, entity)


def target_value(entity: dict[str, Any], attribute: Attribute) -> Any:
    """The value a term on ``attribute`` compares, or ``_MISSING``."""
    if attribute.name not in entity:
        return _MISSING
    node = pick_instance(entity[attribute.name])
    for sub in attribute.subs:
        if not isinstance(node, dict) or sub not in node:
            return _MISSING
        node = pick_instance(node[sub])
    value = read_attribute(node).value
    for key in attribute.keys:
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _holds(term: Term, entity: dict[str, Any]) -> bool:
    value = target_value(entity, term.attribute)
    if value is _MISSING:
        return False
    if term.op is None:
        return True
    candidates = value if isinstance(value, list) else [value]
    if term.op in ("~=", "!~="):
        found = any(isinstance(c, str) and term.value.search(c) for c in candidates)
        texts = any(isinstance(c, str) for c in candidates)
        return found if term.op == "~=" else texts and not found
    if term.op in ("==", "!="):
        equal = any(_equals(c, term.value) for c in candidates)
        return equal if term.op == "==" else not equal and _any_comparable(candidates, term.value)
    return any(_ordered(c, term.op, term.value) for c in candidates)


def _any_comparable(candidates: list[Any], wanted: Any) -> bool:
    """``!=`` holds on a value of the literal's kind only: ``pm25!="high"`` is false for a number."""
    if isinstance(wanted, Range):
        literals: tuple[Any, ...] = (wanted.low,)
    else:
        literals = wanted if isinstance(wanted, tuple) else (wanted,)
    return any(_comparable(c, literal) is not None for c in candidates for literal in literals)


def _equals(candidate: Any, wanted: Any) -> bool:
    if isinstance(wanted, tuple):
        return any(_equals(candidate, item) for item in wanted)
    if isinstance(wanted, Range):
        low, high = _comparable(candidate, wanted.low), _comparable(candidate, wanted.high)
        return low is not None and high is not None and low[1] <= low[0] <= high[1]
    pair = _comparable(candidate, wanted)
    return pair is not None and pair[0] == pair[1]


def _ordered(candidate: Any, op: str, wanted: Any) -> bool:
    pair = _comparable(candidate, wanted)
    if pair is None:
        return False
    left, right = pair
    try:
        return {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[op]
    except TypeError:  # a time with an offset against one without
        return False


def _comparable(candidate: Any, literal: Literal) -> tuple[Any, Any] | None:
    """(the candidate, the literal) as two values of one kind, or None when they do not compare."""
    if isinstance(literal, bool):
        return (candidate, literal) if isinstance(candidate, bool) else None
    if isinstance(literal, int | float):
        numeric = isinstance(candidate, int | float) and not isinstance(candidate, bool)
        return (candidate, literal) if numeric else None
    if not isinstance(candidate, str):
        return None
    if isinstance(literal, str):
        return candidate, literal
    parse = {datetime: datetime.fromisoformat, date: date.fromisoformat, time: time.fromisoformat}
    try:
        parsed = parse[type(literal)](candidate)
    except ValueError:
        return None
    if isinstance(parsed, datetime) != isinstance(literal, datetime):
        return None
    return (_utc(parsed) if isinstance(parsed, datetime) else parsed), literal
