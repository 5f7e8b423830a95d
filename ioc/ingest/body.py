"""Request bodies of the ingest endpoints: decoding, limits and splitting into items. Pure, no I/O.

- ``Content-Encoding``: absent or ``identity``, or ``gzip`` (decoded with a cap, so a small compressed
  body cannot expand beyond the size limit). Anything else is a ``BodyError`` with status 415.
- ``Content-Type``: ``application/json`` (or ``application/ld+json``, or absent) — a JSON array of items;
  a single JSON object counts as a batch of one. ``application/x-ndjson`` (also ``application/ndjson``,
  ``application/jsonl``, ``application/x-jsonlines``) — one JSON document per line; blank lines are
  skipped and do not count as items; a line that is not JSON is an item of its own, rejected as
  ``unparseable``. Anything else is 415.
- Limits: more than ``max_bytes`` (before or after decoding) or more than ``max_items`` items is 413.
- A body that cannot be read at all (bad gzip, not UTF-8, not JSON, a JSON array expected but something
  else found) is 400.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from ioc.ingest.edge import Parsed, Problem, parse_json

JSON_TYPES = frozenset({"application/json", "application/ld+json"})
NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"}
)


class BodyError(Exception):
    """The request body as a whole is refused: ``status`` (400, 413, 415) and a sentence."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class RawLine:
    """One NDJSON line, not parsed yet (the edge parses it, so a bad line is rejected like any item)."""

    text: bytes


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode(raw: bytes, content_encoding: str | None, *, max_bytes: int) -> bytes:
    """The body with its content encoding removed, at most ``max_bytes`` long."""
    if len(raw) > max_bytes:
        raise BodyError(413, f"the body is larger than {max_bytes} bytes (IOC_INGEST_MAX_BODY_BYTES)")
    encodings = [e.strip().lower() for e in (content_encoding or "").split(",") if e.strip()]
    encodings = [e for e in encodings if e != "identity"]
    if not encodings:
        return raw
    if encodings not in (["gzip"], ["x-gzip"]):
        raise BodyError(415, f"Content-Encoding {content_encoding!r} is not supported; use gzip or none")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, max_bytes + 1)
    except zlib.error as error:
        raise BodyError(400, f"the body is not valid gzip: {error}") from None
    if len(body) > max_bytes or inflater.unconsumed_tail:
        raise BodyError(
            413, f"the body is larger than {max_bytes} bytes once decompressed (IOC_INGEST_MAX_BODY_BYTES)"
        )
    if not inflater.eof:
        raise BodyError(400, "the body is not valid gzip: the compressed stream is truncated")
    return body


def split_items(body: bytes, content_type: str | None, *, max_items: int) -> list[object]:
    """The items of a batch: parsed JSON values, or ``RawLine`` for each NDJSON line."""
    kind = media_type(content_type)
    if kind in NDJSON_TYPES:
        lines = [line for line in body.split(b"\n") if line.strip()]
        _check_count(len(lines), max_items)
        return [RawLine(line.rstrip(b"\r")) for line in lines]
    if kind and kind not in JSON_TYPES:
        raise BodyError(
            415,
            f"Content-Type {kind!r} is not supported; send application/json (an array of events) "
            "or application/x-ndjson (one event per line)",
        )
    parsed = parse_json(body)
    if isinstance(parsed, Problem):
        raise BodyError(400, f"the body {parsed.reason}")
    items = parsed.value
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise BodyError(400, f"the body must be a JSON array of events (or one event), not {_kind(items)}")
    _check_count(len(items), max_items)
    return items


def parse_object(body: bytes) -> dict:
    """A body that must be one JSON object (an NGSI-LD notification)."""
    parsed = parse_json(body)
    if isinstance(parsed, Problem):
        raise BodyError(400, f"the body {parsed.reason}")
    if not isinstance(parsed, Parsed) or not isinstance(parsed.value, dict):
        raise BodyError(400, f"the body must be a JSON object, not {_kind(parsed.value)}")
    return parsed.value


def _check_count(count: int, max_items: int) -> None:
    if count > max_items:
        raise BodyError(
            413, f"{count} items in one request; at most {max_items} are allowed (IOC_INGEST_MAX_ITEMS)"
        )


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}
    return "null" if value is None else names.get(type(value), "an object")
