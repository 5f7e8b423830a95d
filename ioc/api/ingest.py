"""Ingestion for integrators: ``POST /v1/ingest/{feed}`` (batches) and ``POST /v1/ngsi-ld/notify``.

Every item goes through the pure edge (``ioc.ingest.edge``): card ids pseudonymised, ``ingestTime``
stamped, validated against the feed model and the city registry, its ``dateObserved`` at most
``IOC_FUTURE_TOLERANCE_SECONDS`` ahead of the request's arrival. What this module adds is the I/O:

- **Kafka.** Accepted events go to ``<prefix>.<feed>.raw`` (key = sensor id), rejected items to
  ``<prefix>.dlq``, through one idempotent ``acks=all`` aiokafka producer per API process (started on the
  first ingest request, replaced after any failure). The response is written only after Kafka
  acknowledged every record of the request. If it did not within ``IOC_INGEST_KAFKA_TIMEOUT_SECONDS``,
  the answer is 503 with ``Retry-After`` and nothing is reported accepted.
- **Idempotency** (Redis). Each accepted event's dedup key (its ``eventId``, else sensor + event time
  [+ lane]) is marked ``pending`` with ``SET NX EX IOC_INGEST_DEDUP_SECONDS`` before producing and
  ``done`` once Kafka acknowledged it; a mark that was ours and whose record failed is removed again.
  A key already ``done`` is a duplicate: not produced, counted in ``duplicates``. A key ``pending`` in
  another request still in flight is produced anyway: a possible duplicate downstream beats a loss.
  The marks (``ioc.ingest.dedup``) are shared with the MQTT bridge: an event either edge sent is a
  duplicate at the other.
- **Rate limit** (Redis, shared by every API replica): a token bucket per API key, refilled at
  ``IOC_INGEST_RATE_PER_KEY`` events per second up to ``max(IOC_INGEST_BURST_PER_KEY,
  IOC_INGEST_MAX_ITEMS)``; a request takes one token per item, all or nothing (429 with Retry-After).

Redis unreachable is a 503 as well: without it neither duplicates nor rates can be checked.
Logs name the endpoint, the key's name (``IOC_API_KEYS``) and counts, never a key, a payload or a card id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable, Coroutine
from copy import deepcopy
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import Field, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ioc.api.auth import Caller, Integrator
from ioc.api.publisher import ReplaceableProducer, Unavailable
from ioc.api.responses import CamelModel, problem
from ioc.city import City, load_city
from ioc.feeds import FEEDS, MODELS, REGISTRY
from ioc.feeds.air.model import AirQualityObserved
from ioc.ingest.body import BodyError, RawLine, decode, parse_object, split_items
from ioc.ingest.dedup import NEW, SEEN, DedupMarks
from ioc.ingest.edge import Accepted, Rejected, carries_cards, prepare, prepare_json, prepare_ngsi_ld
from ioc.models.base import Instant
from ioc.models.ngsi_ld import ENTITY_MODELS, to_ngsi_ld
from ioc.privacy import require_card_key
from ioc.settings import Settings

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["ingest"])

# Token bucket: ARGV rate (tokens/s), capacity, tokens wanted. Returns {1, 0} or {0, seconds to wait}.
_TAKE = """
local rate, capacity, wanted = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then tokens, at = capacity, now end
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local granted = 0
if tokens >= wanted then tokens = tokens - wanted; granted = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
if granted == 1 then return {1, '0'} end
return {0, tostring((wanted - tokens) / rate)}
"""


class ItemProblem(CamelModel):
    field: str = Field(description="Wire name of the field, or (event), (entity), (body) for the whole item.")
    reason: str = Field(description="What is wrong, naming the rule (values of card fields are redacted).")


class RejectedItem(CamelModel):
    index: int = Field(description="0-based position of the item in the batch (NDJSON: non-blank line).")
    field: str = Field(description="The first problem's field.")
    reason: str = Field(description="The first problem's reason.")
    problems: list[ItemProblem] = Field(description="Every problem of the item (the first one included).")


class IngestResult(CamelModel):
    received: int = Field(description="Items in the request.")
    accepted: int = Field(description="Items acknowledged by Kafka on <prefix>.<feed>.raw.")
    duplicates: int = Field(
        description="Items seen before within IOC_INGEST_DEDUP_SECONDS: already accepted, not produced again."
    )
    duplicate_indexes: list[int] = Field(description="Positions of the duplicates.")
    rejected: list[RejectedItem] = Field(description="Every rejected item; each is on <prefix>.dlq too.")
    accepted_by_feed: dict[str, int] = Field(description="Accepted items per feed.")
    dropped_attributes: dict[str, int] = Field(
        default_factory=dict,
        description="NGSI-LD entities only: attributes ioc does not keep (not in the feed model nor "
        "descriptive), each with the number of accepted entities it was dropped from; empty otherwise.",
    )


# ---------------------------------------------------------------------------------------------------
# The service: producer, dedup marks and rate limits, one per API process.


class IngestService:
    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis
        self.city: City = load_city(settings.city)
        self.card_key = require_card_key(settings)
        self._kafka = ReplaceableProducer(
            settings,
            topics=[*(settings.raw_topic(feed) for feed in FEEDS), settings.dlq_topic],
            timeout=self.timeout,
            client_id="ioc-api-ingest",
            linger_ms=5,
            max_batch_size=512 * 1024,
        )
        self.marks = DedupMarks(settings, redis)
        self._take = redis.register_script(_TAKE)

    @property
    def timeout(self) -> float:
        return self.settings.ingest_kafka_timeout_seconds

    async def take(self, key_name: str, count: int) -> float:
        """Take ``count`` tokens from the key's bucket: 0 when granted, else seconds to wait."""
        settings = self.settings
        capacity = max(settings.ingest_burst_per_key, settings.ingest_max_items)
        granted, wait = await self._redis(
            self._take(
                keys=[settings.redis_key("ingest", "rate", key_name)],
                args=[settings.ingest_rate_per_key, capacity, count],
            )
        )
        return 0.0 if int(granted) == 1 else float(wait)

    async def mark(self, dedup_keys: list[str]) -> list[int]:
        return await self._redis(self.marks.mark(dedup_keys))

    async def confirm(self, dedup_keys: list[str]) -> None:
        await self._redis(self.marks.confirm(dedup_keys))

    async def unmark(self, dedup_keys: list[str]) -> None:
        await self._redis(self.marks.unmark(dedup_keys))

    async def _redis(self, call: Coroutine[Any, Any, Any]) -> Any:
        try:
            return await asyncio.wait_for(call, self.timeout)
        except (RedisError, OSError, TimeoutError) as error:
            log.warning("ingest: Redis unreachable (%s)", type(error).__name__)
            raise Unavailable("Redis is unreachable") from None

    async def produce(self, records: list[tuple[str, str | None, bytes]]) -> list[bool]:
        """Send every record; True for each one Kafka acknowledged. Raises Unavailable if none could go."""
        if not records:
            return []
        producer = await self._kafka.started()
        try:
            # send() itself may wait up to the timeout (metadata, full buffer); the second one is a backstop.
            outcomes = await asyncio.wait_for(
                producer.send_each(records, timeout=self.timeout), 2 * self.timeout + 5
            )
        except TimeoutError:
            outcomes = [TimeoutError()] * len(records)
        written = [outcome is None for outcome in outcomes]
        if not all(written):
            errors = {type(o).__name__ for o in outcomes if o is not None}
            log.warning(
                "ingest: Kafka acknowledged %d of %d records (%s); replacing the producer",
                sum(written),
                len(records),
                ", ".join(sorted(errors)),
            )
            await self._kafka.discard(producer)
        return written

    async def close(self) -> None:
        await self._kafka.close()


def service_of(request: Request) -> IngestService:
    app = request.app
    service = getattr(app.state, "ingest", None)
    if service is None:  # an app built without the lifespan's help (should not happen)
        service = app.state.ingest = IngestService(app.state.settings, app.state.redis)
    return service


# ---------------------------------------------------------------------------------------------------
# The shared request path.


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, refusing (413) past ``max_bytes`` without reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BodyError(413, f"the body is larger than {max_bytes} bytes (IOC_INGEST_MAX_BODY_BYTES)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyError(413, f"the body is larger than {max_bytes} bytes (IOC_INGEST_MAX_BODY_BYTES)")
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, detail: str, retry_after: float | None = None) -> JSONResponse:
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else None
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def _run(
    request: Request,
    caller: Caller,
    endpoint: str,
    items_of: Callable[[bytes], list[object]],
    prepare_item: Callable[..., Accepted | Rejected],
) -> JSONResponse:
    settings: Settings = request.app.state.settings
    service = service_of(request)
    try:
        raw = await read_body(request, settings.ingest_max_body_bytes)
        body = decode(raw, request.headers.get("content-encoding"), max_bytes=settings.ingest_max_body_bytes)
        items = items_of(body)
    except BodyError as error:
        log.info("ingest %s key=%s: %d %s", endpoint, caller.name, error.status, error.detail)
        return _error(error.status, error.detail)
    try:
        wait = await service.take(caller.name, len(items))
        if wait > 0:
            log.info("ingest %s key=%s: 429 for %d items", endpoint, caller.name, len(items))
            return _error(
                429,
                over_rate(caller.name, settings),
                wait,
            )
        result = await ingest_items(service, caller, endpoint, items, prepare_item)
    except Unavailable as error:
        return _error(
            503,
            f"{error}; nothing of this request was accepted, send it again (already written items "
            "will be reported as duplicates)",
            settings.ingest_retry_after_seconds,
        )
    status = 422 if result.received and len(result.rejected) == result.received else 200
    log.info(
        "ingest %s key=%s: %d received, %d accepted, %d duplicates, %d rejected",
        endpoint,
        caller.name,
        result.received,
        result.accepted,
        result.duplicates,
        len(result.rejected),
    )
    return JSONResponse(result.model_dump(mode="json", by_alias=True), status_code=status)


async def ingest_items(
    service: IngestService,
    caller: Caller,
    endpoint: str,
    items: list[object],
    prepare_item: Callable[..., Accepted | Rejected],
) -> IngestResult:
    """Prepare every item at the edge, drop duplicates, produce accepted ones and dead letters and wait
    for Kafka's acknowledgement; raises Unavailable when Kafka or Redis did not answer (shared with the
    NGSI-LD API, ``ioc.api.ngsi_ld``)."""
    settings = service.settings
    received_at = datetime.now(UTC)
    options = {
        "city": service.city,
        "card_key": service.card_key,
        "card_key_id": settings.card_hmac_key_id,
        "source": f"http POST {endpoint} key={caller.name}",
        "received_at": received_at,
        "future_tolerance": timedelta(seconds=settings.future_tolerance_seconds),
    }
    outcomes = [prepare_item(item, **options) for item in items]
    accepted = [(i, o) for i, o in enumerate(outcomes) if isinstance(o, Accepted)]
    rejected = [(i, o) for i, o in enumerate(outcomes) if isinstance(o, Rejected)]

    # The same event twice in one request: the later ones are duplicates of the first.
    first: dict[str, tuple[int, Accepted]] = {}
    repeated: list[int] = []
    for i, o in accepted:
        if o.dedup_key in first:
            repeated.append(i)
        else:
            first[o.dedup_key] = (i, o)
    unique = list(first.values())
    states = await service.mark([o.dedup_key for _, o in unique])
    duplicates = [i for (i, _), state in zip(unique, states, strict=True) if state == SEEN]
    duplicates = sorted(duplicates + repeated)
    sending = [(o, state) for (_, o), state in zip(unique, states, strict=True) if state != SEEN]
    topics = {feed: settings.raw_topic(feed) for feed in FEEDS}
    records = [(topics[o.feed], o.key, o.value) for o, _ in sending]
    records += [(settings.dlq_topic, r.key, r.dead_letter().to_json()) for _, r in rejected]

    try:
        written = await service.produce(records)
    except Unavailable:
        await service.unmark([o.dedup_key for o, state in sending if state == NEW])
        raise
    events_written = written[: len(sending)]
    if not all(written):
        # Those Kafka has stay marked (a retry reports them as duplicates); the others are unmarked.
        await service.confirm([o.dedup_key for (o, _), ok in zip(sending, events_written, strict=True) if ok])
        await service.unmark(
            [
                o.dedup_key
                for (o, state), ok in zip(sending, events_written, strict=True)
                if not ok and state == NEW
            ]
        )
        raise Unavailable(f"Kafka acknowledged {sum(written)} of {len(records)} records in time")
    await service.confirm([o.dedup_key for o, _ in sending])

    by_feed: dict[str, int] = {}
    for o, _ in sending:
        by_feed[o.feed] = by_feed.get(o.feed, 0) + 1
    dropped: dict[str, int] = {}
    for _, o in accepted:
        for name in o.dropped:
            dropped[name] = dropped.get(name, 0) + 1
    return IngestResult(
        received=len(items),
        accepted=len(sending),
        duplicates=len(duplicates),
        duplicate_indexes=duplicates,
        rejected=[
            RejectedItem(
                index=i,
                field=r.field,
                reason=r.reason,
                problems=[ItemProblem(field=p.field, reason=p.reason) for p in r.problems],
            )
            for i, r in rejected
        ],
        accepted_by_feed=by_feed,
        dropped_attributes=dropped,
    )


# ---------------------------------------------------------------------------------------------------
# OpenAPI: schemas and examples.

STATUS_CONVENTION = """
**Status convention.** `200`: the body was read and at least one item was accepted or was a duplicate
(or the batch was empty); the result lists every rejected item, and each of those is on `<prefix>.dlq`
(an item whose `dateObserved` is more than `IOC_FUTURE_TOLERANCE_SECONDS`, default 300, ahead of the
request's arrival is rejected too, with reason `future`).
`422`: the body was read but every item was rejected (all of them are on `<prefix>.dlq`; same result
shape). `400`: the body itself could not be read (not JSON, not an array, bad gzip, not UTF-8): nothing
was written anywhere. `413`: over `IOC_INGEST_MAX_BODY_BYTES` or `IOC_INGEST_MAX_ITEMS`. `415`: another
Content-Type or Content-Encoding. `429`: the key is over `IOC_INGEST_RATE_PER_KEY` (wait `Retry-After`
seconds). `503`: Kafka (or Redis) did not acknowledge in time: **nothing** of the request counts as
accepted; send the same request again after `Retry-After` seconds (items that did reach Kafka are then
reported as duplicates, not written twice).

A 2xx means every accepted item is acknowledged by Kafka (idempotent producer, `acks=all`).
"""

EXAMPLES: dict[str, list[dict[str, Any]]] = {name: list(feed.example) for name, feed in REGISTRY.items()}
RESULT_EXAMPLE = {
    "received": 2,
    "accepted": 1,
    "duplicates": 0,
    "duplicateIndexes": [],
    "rejected": [
        {
            "index": 1,
            "field": "pm25",
            "reason": "Input should be greater than or equal to 0 (got -3)",
            "problems": [{"field": "pm25", "reason": "Input should be greater than or equal to 0 (got -3)"}],
        }
    ],
    "acceptedByFeed": {"air": 1},
    "droppedAttributes": {},
}
ALL_REJECTED_EXAMPLE = {
    "received": 1,
    "accepted": 0,
    "duplicates": 0,
    "duplicateIndexes": [],
    "rejected": [
        {
            "index": 0,
            "field": "sensorId",
            "reason": "is not in the Hanoi registry; register it, or send it as 'unregistered:air-x' "
            '(got "air-x")',
            "problems": [{"field": "sensorId", "reason": "is not in the Hanoi registry; …"}],
        }
    ],
    "acceptedByFeed": {},
    "droppedAttributes": {},
}


RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "At least one item accepted or a duplicate; every rejected one listed and on the DLQ.",
        "content": {"application/json": {"example": RESULT_EXAMPLE}},
    },
    400: problem("The body could not be read; nothing was written.", "the body is not JSON: …"),
    401: problem("No API key, or an unknown one.", "The API key is not one of IOC_API_KEYS."),
    403: problem(
        "The key's role may not ingest.",
        "This endpoint needs the admin or integrator role; your key has operator.",
    ),
    413: problem(
        "Body or item count over the limits.",
        "5001 items in one request; at most 5000 are allowed (IOC_INGEST_MAX_ITEMS)",
    ),
    415: problem(
        "Unsupported Content-Type or Content-Encoding.",
        "Content-Type 'text/csv' is not supported; send application/json … or application/x-ndjson …",
    ),
    422: {
        "description": "Every item was rejected (each is on the DLQ); same shape as 200.",
        "model": IngestResult,
        "content": {"application/json": {"example": ALL_REJECTED_EXAMPLE}},
    },
    429: problem(
        "The key is over its rate limit.",
        "key integrator-7c01e2 is over its rate of 5000 events/s (IOC_INGEST_RATE_PER_KEY); retry after …",
        retry_after=True,
    ),
    503: problem(
        "Kafka or Redis did not answer in time: nothing of this request was accepted.",
        "Kafka is unreachable; nothing of this request was accepted, send it again …",
        retry_after=True,
    ),
}


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its ``$defs`` inlined (OpenAPI resolves ``$ref`` from the root)."""
    schema = deepcopy(schema)
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(deepcopy(defs[ref.removeprefix("#/$defs/")]))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def item_schema(feed: str) -> dict[str, Any]:
    """The JSON schema of one item of ``feed`` as an integrator sends it."""
    schema = _inline_refs(MODELS[feed].model_json_schema(by_alias=True))
    properties = schema["properties"]
    properties.pop("ingestTime", None)  # stamped by ioc
    if carries_cards(feed):
        properties["cardId"] = {
            "type": "string",
            "description": "The raw card id: ioc replaces it by cardIdHash and cardKeyId at once. "
            "Alternatively send cardIdHash and cardKeyId yourself.",
        }
        required = [r for r in schema.get("required", []) if r not in ("cardIdHash", "cardKeyId")]
        schema["required"] = required
        schema["anyOf"] = [{"required": ["cardId"]}, {"required": ["cardIdHash", "cardKeyId"]}]
    return schema


def _batch_request(feed: str) -> dict[str, Any]:
    example = EXAMPLES[feed]
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "array", "items": item_schema(feed)},
                "example": example,
            },
            "application/x-ndjson": {
                "schema": {"type": "string", "description": "One JSON event per line."},
                "example": "\n".join(json.dumps(item, ensure_ascii=False) for item in example) + "\n",
            },
        },
    }


def _batch_endpoint(feed: str) -> Callable[..., Coroutine[Any, Any, JSONResponse]]:
    endpoint = f"/v1/ingest/{feed}"

    async def ingest(request: Request, caller: Integrator) -> JSONResponse:
        def items_of(body: bytes) -> list[object]:
            return split_items(
                body,
                request.headers.get("content-type"),
                max_items=request.app.state.settings.ingest_max_items,
            )

        def prepare_item(item: object, **options: Any) -> Accepted | Rejected:
            if isinstance(item, RawLine):
                return prepare_json(feed, item.text, **options)
            return prepare(feed, item, **options)

        return await _run(request, caller, endpoint, items_of, prepare_item)

    ingest.__name__ = f"ingest_{feed}"
    return ingest


for _feed in FEEDS:
    router.add_api_route(
        f"/ingest/{_feed}",
        _batch_endpoint(_feed),
        methods=["POST"],
        response_model=IngestResult,
        summary=f"Push a batch of {_feed} events",
        operation_id=f"ingest_{_feed}",
        description=(
            f"A batch of `{_feed}` events ({MODELS[_feed].__name__}, FIWARE field names) as a JSON array "
            "(`Content-Type: application/json`) or one event per line (`application/x-ndjson`), optionally "
            "gzip-compressed (`Content-Encoding: gzip`). Each item is validated on its own against the feed "
            "model and the city registry; accepted ones go to `<prefix>."
            f"{_feed}.raw` keyed by `sensorId`, rejected ones to `<prefix>.dlq` with the reason, the "
            "key's name and this endpoint. An item whose `eventId` (or, without one, sensor + `dateObserved`"
            + "".join(f" + `{to_camel(name)}`" for name in MODELS[_feed].identity_fields)
            + ") was accepted within `IOC_INGEST_DEDUP_SECONDS` is a duplicate: not written again."
            + (
                " A raw `cardId` is replaced by `cardIdHash` (HMAC-SHA256) and `cardKeyId` before anything "
                "is stored or logged."
                if carries_cards(_feed)
                else ""
            )
            + "\n\nNeeds the integrator or admin role.\n"
            + STATUS_CONVENTION
        ),
        responses=RESPONSES,
        openapi_extra={"requestBody": _batch_request(_feed)},
    )


# ---------------------------------------------------------------------------------------------------
# NGSI-LD notifications.

NGSI_LD_EXAMPLE = {
    "id": "urn:ngsi-ld:Notification:5fd0fa684eb81930c97005f3",
    "type": "Notification",
    "subscriptionId": "urn:ngsi-ld:Subscription:ioc-air",
    "notifiedAt": "2026-01-15T01:00:05.000Z",
    "data": [
        to_ngsi_ld(
            AirQualityObserved.model_validate(
                {"sensorId": "air-kim-lien", "dateObserved": "2026-01-15T08:00:00+07:00", "pm25": 80.5}
            )
        ),
        to_ngsi_ld(
            AirQualityObserved.model_validate(
                {"sensorId": "air-hoan-kiem", "dateObserved": "2026-01-15T08:00:00+07:00", "pm25": 61.0}
            ),
            key_values=True,
        ),
    ],
}
NOTIFICATION_SCHEMA = {
    "type": "object",
    "required": ["type", "data"],
    "properties": {
        "id": {"type": "string", "description": "Notification id (urn:ngsi-ld:Notification:…)."},
        "type": {"type": "string", "enum": ["Notification"]},
        "subscriptionId": {"type": "string"},
        "notifiedAt": {"type": "string", "format": "date-time"},
        "data": {
            "type": "array",
            "description": "Entities of type " + ", ".join(ENTITY_MODELS) + ", normalized or keyValues.",
            "items": {
                "type": "object",
                "required": ["id", "type"],
                "properties": {
                    "id": {
                        "type": "string",
                        "description": "urn:ngsi-ld:<type>:<sensorId>, or an id in a sensor's external_ids",
                    },
                    "type": {"type": "string", "enum": list(ENTITY_MODELS)},
                },
                "additionalProperties": True,
            },
        },
    },
}


def _notification_items(body: bytes, max_items: int) -> list[object]:
    notification = parse_object(body)
    if notification.get("type") != "Notification":
        raise BodyError(
            400, f"type={notification.get('type')!r}: an NGSI-LD notification has type 'Notification'"
        )
    envelope = _envelope_problem(notification)
    if envelope is not None:
        raise BodyError(400, envelope)
    data = notification.get("data")
    if not isinstance(data, list):
        raise BodyError(400, "data: an NGSI-LD notification carries a list of entities in 'data'")
    if len(data) > max_items:
        raise BodyError(
            413,
            f"{len(data)} entities in one notification; at most {max_items} allowed (IOC_INGEST_MAX_ITEMS)",
        )
    return data


_INSTANT = TypeAdapter(Instant)


def _envelope_problem(notification: dict[str, Any]) -> str | None:
    """What is wrong with the notification's own fields, as NOTIFICATION_SCHEMA states them; None if
    nothing. ioc reads only ``type`` and ``data``, but a notification is held to the schema it is sent."""
    for name in ("id", "subscriptionId", "notifiedAt"):
        if name in notification and not isinstance(notification[name], str):
            return f"{name}={notification[name]!r}: a string"
    notified_at = notification.get("notifiedAt")
    if notified_at is not None:
        try:
            _INSTANT.validate_python(notified_at)
        except ValidationError:
            return f"notifiedAt={notified_at!r}: an ISO 8601 date-time with its offset"
    return None


@router.post(
    "/ngsi-ld/notify",
    response_model=IngestResult,
    summary="Receive an NGSI-LD notification",
    operation_id="ngsi_ld_notify",
    description=(
        "The endpoint of an NGSI-LD subscription (Orion-LD, Scorpio): a notification (`id`, `type: "
        "Notification`, `subscriptionId`, `notifiedAt`, `data`) whose entities are "
        + ", ".join(f"`{t}`" for t in ENTITY_MODELS)
        + ", in any form the Smart Data Models publish (NGSI-LD or v2, normalized or keyValues). The entity "
        "`type` picks the feed (air, water, traffic) and its id `urn:ngsi-ld:<type>:<sensorId>` the sensor "
        "(or an id or `refDevice` a sensor lists in the registry's `external_ids`). Measures are converted "
        "to ioc's units by their `unitCode`; attributes ioc does not keep are dropped and counted in "
        "`droppedAttributes`, never a rejection. Each entity is validated like an item of "
        "`/v1/ingest/{feed}` and ends up in the same topics; `index` in the result is the entity's "
        "position in `data`. Without an `eventId` attribute, the natural key (sensor + `dateObserved`) "
        "makes a repeated notification of the same observation a duplicate. Send the key in the "
        "subscription's `notification.endpoint.receiverInfo` as `X-API-Key`. Content-Type "
        "`application/json` or `application/ld+json`, gzip accepted.\n\nNeeds the integrator or admin role.\n"
        + STATUS_CONVENTION
    ),
    responses=RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": NOTIFICATION_SCHEMA, "example": NGSI_LD_EXAMPLE},
                "application/ld+json": {"schema": NOTIFICATION_SCHEMA, "example": NGSI_LD_EXAMPLE},
            },
        }
    },
)
async def ngsi_ld_notify(request: Request, caller: Integrator) -> JSONResponse:
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type and content_type not in ("application/json", "application/ld+json"):
        raise HTTPException(415, f"Content-Type {content_type!r} is not supported; send application/json")

    def items_of(body: bytes) -> list[object]:
        return _notification_items(body, request.app.state.settings.ingest_max_items)

    def prepare_item(entity: object, **options: Any) -> Accepted | Rejected:
        return prepare_ngsi_ld(entity, **options)

    return await _run(request, caller, "/v1/ngsi-ld/notify", items_of, prepare_item)


def over_rate(key_name: str, settings: Settings) -> str:
    """Why a key's request was refused with 429 (the ingest routes and NGSI-LD's share the limit)."""
    return (
        f"key {key_name} is over its rate of {settings.ingest_rate_per_key:g} events/s "
        "(IOC_INGEST_RATE_PER_KEY); retry after the time in Retry-After"
    )
