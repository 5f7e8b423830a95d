"""The NGSI-LD API an IoT Agent or a context broker calls (issue 18): ``/ngsi-ld/v1``.

Writes go through the ingest edge exactly like ``POST /v1/ngsi-ld/notify`` (the same entity forms, ids,
validation, dead letters to ``<prefix>.dlq``, duplicates, rate limit and integrator key; a 2xx means the
accepted observations are acknowledged by Kafka):

- ``POST /ngsi-ld/v1/entityOperations/upsert``: an array of entities. 204 when every one was accepted
  (or was a duplicate); 207 with NGSI-LD's BatchOperationResult (``success`` ids, ``errors`` with a
  problem each) when some were not; 400 BadRequestData when none was.
- ``PATCH /ngsi-ld/v1/entities/{entityId}/attrs``: some attributes of one entity, whose type comes from
  the id (``urn:ngsi-ld:<Type>:…``) or from the registry sensor the id names. 204, or a problem.

Reads (ioc as a context source) come from the live picture: ``GET /ngsi-ld/v1/entities?type=…`` and
``GET /ngsi-ld/v1/entities/{entityId}``, each sensor's newest value of each measure, normalized or
keyValues, the ``@context`` in a Link header (or the body, for ``Accept: application/ld+json``); and
from the history store: ``GET /ngsi-ld/v1/temporal/entities`` (by type) and ``…/temporal/entities/{id}``.
The queries take ``q`` and geo-queries (``ioc.ngsi_ld``: the parsing and evaluation are pure there), a
page (``limit``, ``offset``) and ``count``. They need the operator role, as the picture does.

ioc keeps observations, not entities: an upsert or a patch is a new reading of a sensor, its attributes
read as ``ioc.models.ngsi_ld`` says (unknown ones dropped). Errors are NGSI-LD problem details
(``type`` ``https://uri.etsi.org/ngsi-ld/errors/<Kind>``, ``title``, ``status``, ``detail``); an auth
error, which NGSI-LD has no type for, is ``about:blank`` with its HTTP status.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from connectors.sinks.redis_picture import RedisPicture
from ioc.api.auth import Caller, api_key_header, require_caller
from ioc.api.database import on_database
from ioc.api.ingest import IngestResult, ingest_items, over_rate, read_body, service_of
from ioc.api.publisher import Unavailable
from ioc.api.responses import VALIDATION_RESPONSES
from ioc.city import City
from ioc.feeds.air.model import AirQualityObserved
from ioc.feeds.traffic.model import TrafficFlowObserved
from ioc.history.store import HistoryStore
from ioc.ingest.body import JSON_TYPES, BodyError, decode, media_type
from ioc.ingest.edge import Accepted, Parsed, Rejected, parse_json, prepare_ngsi_ld
from ioc.models.base import IsoDateTime
from ioc.models.ngsi_ld import (
    CONTEXTS,
    ENTITY_MODELS,
    current_entity,
    entity_id,
    sensor_named,
    temporal_entity,
    to_ngsi_ld,
)
from ioc.ngsi_ld.geo import GeoQuery, GeoQueryError, geo_matches, parse_geo_query
from ioc.ngsi_ld.query import Query as QueryTree
from ioc.ngsi_ld.query import QueryError, matches, parse_query
from ioc.ngsi_ld.temporal import (
    TooManyWindows,
    WindowSpan,
    matching_sensors,
    measure_series,
    sensors_with_windows,
    windows_of,
)
from ioc.settings import Role

log = logging.getLogger(__name__)

router = APIRouter(prefix="/ngsi-ld/v1", tags=["ngsi-ld"])

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
TITLES = {
    "InvalidRequest": "The request is syntactically invalid",
    "BadRequestData": "The request's data does not meet the operation's requirements",
    "ResourceNotFound": "The entity is not one ioc knows",
    "InternalError": "ioc could not complete the operation",
}
# The fields of a rejection that say the entity names no sensor ioc knows (a 404 for a PATCH).
_UNKNOWN_ENTITY_FIELDS = frozenset({"id", "sensorId"})


class ProblemDetails(BaseModel):
    """RFC 7807 problem details, as NGSI-LD uses them."""

    type: str = Field(description="https://uri.etsi.org/ngsi-ld/errors/<Kind>, or about:blank.")
    title: str
    status: int
    detail: str = Field(description="What went wrong, naming the attribute and the rule.")


class BatchEntityError(BaseModel):
    entityId: str = Field(description="The entity's id as sent (or (entity <index>) when it had none).")  # noqa: N815
    error: ProblemDetails


class BatchOperationResult(BaseModel):
    success: list[str] = Field(description="Ids of the entities accepted (or duplicates of accepted ones).")
    errors: list[BatchEntityError] = Field(description="Every entity not accepted; each is on <prefix>.dlq.")


def problem(status: int, kind: str, detail: str, retry_after: float | None = None) -> JSONResponse:
    """An NGSI-LD error response; ``kind`` is the error type's name (``BadRequestData`` …)."""
    body = ProblemDetails(
        type=ERRORS + kind if kind in TITLES else "about:blank",
        title=TITLES.get(kind, kind),
        status=status,
        detail=detail,
    )
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else None
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


_check_integrator = require_caller(Role.integrator)


REFUSAL_TITLES = {401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests"}


def refusal_problem(error: HTTPException) -> JSONResponse:
    """The key check's refusal (401, 403, or 429 after too many wrong keys) as problem details."""
    retry_after = (error.headers or {}).get("Retry-After")
    title = REFUSAL_TITLES.get(error.status_code, "Forbidden")
    return problem(error.status_code, title, str(error.detail), float(retry_after) if retry_after else None)


def ngsi_ld_caller(request: Request, key: str | None = Depends(api_key_header)) -> Caller | JSONResponse:
    """The integrator's key, as on ``/v1/ingest``; a refusal is answered as problem details, so the
    handler returns it (a raised HTTPException would get the API's own error body)."""
    try:
        return _check_integrator(request, key)
    except HTTPException as error:
        return refusal_problem(error)


NgsiLdCaller = Annotated[Caller | JSONResponse, Depends(ngsi_ld_caller)]


# ---------------------------------------------------------------------------------------------------
# The shared path: body, rate limit, edge, Kafka.


async def _entities_of(request: Request, expect: type) -> list[Any] | dict[str, Any]:
    """The body as JSON of type ``expect`` (list or dict); raises BodyError with the status to answer."""
    kind = media_type(request.headers.get("content-type"))
    if kind and kind not in JSON_TYPES:
        raise BodyError(
            415, f"Content-Type {kind!r} is not supported; send application/json or application/ld+json"
        )
    settings = request.app.state.settings
    raw = await read_body(request, settings.ingest_max_body_bytes)
    body = decode(raw, request.headers.get("content-encoding"), max_bytes=settings.ingest_max_body_bytes)
    parsed = parse_json(body)
    if not isinstance(parsed, Parsed):
        raise BodyError(400, f"the body {parsed.reason}")
    if not isinstance(parsed.value, expect):
        wanted = "an array of entities" if expect is list else "a JSON object of attributes"
        raise BodyError(400, f"the body must be {wanted}")
    if isinstance(parsed.value, list) and len(parsed.value) > settings.ingest_max_items:
        raise BodyError(
            413,
            f"{len(parsed.value)} entities in one request; at most {settings.ingest_max_items} allowed "
            "(IOC_INGEST_MAX_ITEMS)",
        )
    return parsed.value


async def _ingest(
    request: Request, caller: Caller, endpoint: str, entities: list[Any]
) -> IngestResult | JSONResponse:
    """The entities through the edge into Kafka; a problem response when the rate limit or Kafka/Redis
    refuse the whole request (then nothing counts as accepted)."""
    service = service_of(request)
    settings = service.settings

    def prepare_item(entity: object, **options: Any) -> Accepted | Rejected:
        return prepare_ngsi_ld(entity, **options)

    try:
        wait = await service.take(caller.name, len(entities))
        if wait > 0:
            return problem(
                429,
                "TooManyRequests",
                over_rate(caller.name, settings),
                wait,
            )
        result = await ingest_items(service, caller, endpoint, entities, prepare_item)
    except Unavailable as error:
        return problem(
            503,
            "InternalError",
            f"{error}; nothing of this request was accepted, send it again",
            settings.ingest_retry_after_seconds,
        )
    log.info(
        "ngsi-ld %s key=%s: %d received, %d accepted, %d duplicates, %d rejected",
        endpoint,
        caller.name,
        result.received,
        result.accepted,
        result.duplicates,
        len(result.rejected),
    )
    return result


def _body_problem(error: BodyError) -> JSONResponse:
    kind = "BadRequestData" if error.status == 400 and "must be" in error.detail else "InvalidRequest"
    return problem(error.status, kind, error.detail)


def _detail(problems: list[Any]) -> str:
    return "; ".join(f"{p.field}: {p.reason}" for p in problems)


def _entity_id(entity: Any, index: int) -> str:
    ident = entity.get("id") if isinstance(entity, dict) else None
    return ident if isinstance(ident, str) else f"(entity {index})"


def batch_result(entities: list[Any], result: IngestResult) -> BatchOperationResult:
    """NGSI-LD's BatchOperationResult of an ingest result: the rejected entities as errors."""
    rejected = {r.index: r for r in result.rejected}
    return BatchOperationResult(
        success=[_entity_id(e, i) for i, e in enumerate(entities) if i not in rejected],
        errors=[
            BatchEntityError(
                entityId=_entity_id(entities[i], i),
                error=ProblemDetails(
                    type=ERRORS + "BadRequestData",
                    title=TITLES["BadRequestData"],
                    status=400,
                    detail=_detail(r.problems),
                ),
            )
            for i, r in sorted(rejected.items())
        ],
    )


# ---------------------------------------------------------------------------------------------------
# OpenAPI.

_AIR = AirQualityObserved.model_validate(
    {"sensorId": "air-kim-lien", "dateObserved": "2026-01-15T08:00:00+07:00", "pm25": 80.5, "no2": 41.0}
)
_TRAFFIC = TrafficFlowObserved.model_validate(
    {
        "sensorId": "traffic-nga-tu-so",
        "dateObserved": "2026-01-15T08:00:00+07:00",
        "intervalSeconds": 60,
        "intensity": 42,
        "averageVehicleSpeed": 21.5,
    }
)
UPSERT_EXAMPLE = [
    to_ngsi_ld(_AIR) | {"windSpeed": {"type": "Property", "value": 0.6, "unitCode": "MTS"}},
    to_ngsi_ld(_TRAFFIC, key_values=True),
]
PATCH_EXAMPLE = {
    "pm25": {"type": "Property", "value": 80.5, "unitCode": "GQ", "observedAt": "2026-01-15T01:00:00Z"},
    "no2": {"type": "Property", "value": 0.041, "unitCode": "GP", "observedAt": "2026-01-15T01:00:00Z"},
    "airQualityLevel": {"type": "Property", "value": "unhealthy"},
}
ENTITY_SCHEMA = {
    "type": "object",
    "description": "An entity; one ioc cannot read is the batch's per-entity error, not the request's.",
    "required": ["id", "type"],
    "properties": {
        "id": {
            "type": "string",
            "description": "urn:ngsi-ld:<type>:<sensorId>, or an id in a registry sensor's external_ids.",
        },
        "type": {"type": "string", "description": "ioc reads " + ", ".join(ENTITY_MODELS) + "."},
    },
    "additionalProperties": True,
}
_BATCH_PARTIAL = BatchOperationResult(
    success=[UPSERT_EXAMPLE[1]["id"]],
    errors=[
        BatchEntityError(
            entityId=UPSERT_EXAMPLE[0]["id"],
            error=ProblemDetails(
                type=ERRORS + "BadRequestData",
                title=TITLES["BadRequestData"],
                status=400,
                detail="pm25: Input should be greater than or equal to 0 (got -3)",
            ),
        )
    ],
).model_dump()


def _problem_response(description: str, status: int, kind: str, detail: str) -> dict[str, Any]:
    example = ProblemDetails(
        type=ERRORS + kind if kind in TITLES else "about:blank",
        title=TITLES.get(kind, kind),
        status=status,
        detail=detail,
    ).model_dump()
    return {
        "description": description,
        "model": ProblemDetails,
        "content": {"application/json": {"example": example}},
    }


# FastAPI's own validation of a query parameter (limit=0) answers in the API's one error shape.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    **VALIDATION_RESPONSES,
    400: _problem_response(
        "The body is not JSON or not of the operation's shape; for an upsert, also: every entity refused.",
        400,
        "InvalidRequest",
        "the body is not JSON: …",
    ),
    401: _problem_response(
        "No API key, or an unknown one.", 401, "Unauthorized", "The API key is not one of IOC_API_KEYS."
    ),
    403: _problem_response(
        "The key's role may not write.",
        403,
        "Forbidden",
        "This endpoint needs the admin or integrator role; your key has operator.",
    ),
    413: _problem_response(
        "Body or entity count over the limits.",
        413,
        "InvalidRequest",
        "5001 entities in one request; at most 5000 allowed (IOC_INGEST_MAX_ITEMS)",
    ),
    415: _problem_response(
        "Another Content-Type.",
        415,
        "InvalidRequest",
        "Content-Type 'text/csv' is not supported; send application/json or application/ld+json",
    ),
    429: _problem_response(
        "The key is over its rate limit (wait Retry-After seconds).",
        429,
        "TooManyRequests",
        "key integrator-7c01e2 is over its rate of 5000 events/s …",
    ),
    503: _problem_response(
        "Kafka or Redis did not answer in time: nothing was accepted (retry after Retry-After seconds).",
        503,
        "InternalError",
        "Kafka is unreachable; nothing of this request was accepted, send it again",
    ),
}


# ---------------------------------------------------------------------------------------------------
# Routes.


@router.post(
    "/entityOperations/upsert",
    summary="Upsert a batch of entities (NGSI-LD batch operation)",
    operation_id="ngsi_ld_upsert",
    status_code=204,
    response_class=Response,
    description=(
        "What an IoT Agent (or a broker forwarding) calls: an array of "
        + ", ".join(f"`{t}`" for t in ENTITY_MODELS)
        + " entities in any form `POST /v1/ngsi-ld/notify` reads (NGSI-LD normalized or keyValues, "
        "Smart Data Models' published examples as they are). Each entity is an observation of the sensor "
        "its id (or `refDevice`, through the registry's `external_ids`) names: validated at the ingest "
        "edge, accepted ones on `<prefix>.<feed>.raw`, rejected ones on `<prefix>.dlq`; attributes ioc "
        "does not keep are dropped. `options=update` or `replace` are accepted and mean the same.\n\n"
        "**204**: every entity accepted (or a duplicate of an accepted one), acknowledged by Kafka. "
        "**207**: NGSI-LD's BatchOperationResult, `errors` naming each entity refused and why. **400** "
        "BadRequestData: every entity refused (each named in `detail`, each on the DLQ). "
        "Errors are NGSI-LD problem details. Needs the integrator or admin role (`X-API-Key`)."
    ),
    responses={
        204: {"description": "Every entity accepted; all are in Kafka."},
        207: {
            "description": "Some entities refused (each is on the DLQ); the others are in Kafka.",
            "model": BatchOperationResult,
            "content": {"application/json": {"example": _BATCH_PARTIAL}},
        },
        **COMMON_RESPONSES,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media: {"schema": {"type": "array", "items": ENTITY_SCHEMA}, "example": UPSERT_EXAMPLE}
                for media in ("application/json", "application/ld+json")
            },
        }
    },
)
async def upsert(
    request: Request,
    caller: NgsiLdCaller,
    options: Annotated[str | None, Query(description="update or replace: the same for observations.")] = None,
) -> Response:
    if isinstance(caller, JSONResponse):
        return caller
    try:
        entities = await _entities_of(request, list)
    except BodyError as error:
        return _body_problem(error)
    result = await _ingest(request, caller, "/ngsi-ld/v1/entityOperations/upsert", entities)  # type: ignore[arg-type]
    if isinstance(result, JSONResponse):
        return result
    if not result.rejected:
        return Response(status_code=204)
    batch = batch_result(entities, result)  # type: ignore[arg-type]
    if not batch.success:  # nothing accepted: the request failed as a whole (each entity is on the DLQ)
        return problem(400, "BadRequestData", _all_refused(batch))
    return JSONResponse(batch.model_dump(), status_code=207)


def _all_refused(batch: BatchOperationResult, shown: int = 10) -> str:
    errors = [f"{e.entityId}: {e.error.detail}" for e in batch.errors[:shown]]
    more = f" (and {len(batch.errors) - shown} more)" if len(batch.errors) > shown else ""
    return "every entity was refused: " + " | ".join(errors) + more


@router.patch(
    "/entities/{entityId}/attrs",
    summary="Update attributes of an entity (NGSI-LD)",
    operation_id="ngsi_ld_update_attrs",
    status_code=204,
    response_class=Response,
    description=(
        "Some attributes of one entity, as an IoT Agent sends a device's new measures: an observation of "
        "the sensor the id names (`urn:ngsi-ld:<Type>:<sensorId>`, or an id in a registry sensor's "
        "`external_ids`, whose feed gives the type). Without `dateObserved`, the latest `observedAt` of "
        "the attributes is the event time. Same edge, topics, dead letters and key as the upsert.\n\n"
        "**204**: accepted (or a duplicate), acknowledged by Kafka. **400** BadRequestData: refused, "
        "naming each attribute and why (the observation is on the DLQ). **404** ResourceNotFound: the id "
        "names no sensor of the registry (nor `unregistered:<id>`)."
    ),
    responses={
        204: {"description": "Accepted; in Kafka."},
        404: _problem_response(
            "The id names no sensor ioc knows.",
            404,
            "ResourceNotFound",
            "urn:ngsi-ld:Thing:x: the type is not one of AirQualityObserved, …",
        ),
        **COMMON_RESPONSES,
        400: _problem_response(
            "The observation is refused (and on the DLQ), or the body is not a JSON object.",
            400,
            "BadRequestData",
            "pm25: Input should be greater than or equal to 0 (got -3)",
        ),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media: {"schema": {"type": "object", "additionalProperties": True}, "example": PATCH_EXAMPLE}
                for media in ("application/json", "application/ld+json")
            },
        }
    },
)
async def update_attrs(
    request: Request,
    entityId: str,  # noqa: N803 (NGSI-LD's name for it)
    caller: NgsiLdCaller,
) -> Response:
    if isinstance(caller, JSONResponse):
        return caller
    try:
        attributes = await _entities_of(request, dict)
    except BodyError as error:
        return _body_problem(error)
    entity_type = entity_type_of(entityId, service_of(request).city)
    if entity_type is None:
        return problem(
            404,
            "ResourceNotFound",
            f"{entityId}: the type is not one of {', '.join(ENTITY_MODELS)} and no registry sensor lists "
            "it in its external_ids",
        )
    if attributes.get("id", entityId) != entityId:  # type: ignore[union-attr]
        return problem(400, "BadRequestData", f"id: the body's id is not the path's ({entityId})")
    entity = {**attributes, "id": entityId, "type": entity_type}
    result = await _ingest(request, caller, "/ngsi-ld/v1/entities/{entityId}/attrs", [entity])
    if isinstance(result, JSONResponse):
        return result
    if not result.rejected:
        return Response(status_code=204)
    [rejected] = result.rejected
    if rejected.field in _UNKNOWN_ENTITY_FIELDS:
        return problem(404, "ResourceNotFound", _detail(rejected.problems))
    return problem(400, "BadRequestData", _detail(rejected.problems))


def entity_type_of(ident: str, city: City) -> str | None:
    """The entity type of an id: the ``<Type>`` of ``urn:ngsi-ld:<Type>:…`` when ioc reads that type,
    else the type of the feed of the registry sensor whose external_ids hold the id."""
    parts = ident.split(":")
    if len(parts) > 3 and parts[:2] == ["urn", "ngsi-ld"] and parts[2] in ENTITY_MODELS:
        return parts[2]
    sensor = city.sensor_known_as(ident)
    by_feed = {model.feed: name for name, model in ENTITY_MODELS.items()}
    return by_feed.get(sensor.kind) if sensor else None


# ---------------------------------------------------------------------------------------------------
# Read: ioc as a context source, from the live picture.

_check_reader = require_caller(Role.operator)
JSON_LD_CONTEXT = "http://www.w3.org/ns/json-ld#context"


def ngsi_ld_reader(request: Request, key: str | None = Depends(api_key_header)) -> Caller | JSONResponse:
    """An operator's (or admin's) key, as for the live picture; a refusal as problem details."""
    try:
        return _check_reader(request, key)
    except HTTPException as error:
        return refusal_problem(error)


NgsiLdReader = Annotated[Caller | JSONResponse, Depends(ngsi_ld_reader)]
KeyValuesOption = Annotated[
    str | None,
    Query(description="`keyValues` (or `simplified`) for bare values in the Smart Data Models' units."),
]


QParameter = Annotated[
    str | None,
    Query(
        description="NGSI-LD query language (ETSI GS CIM 009 §4.9) on the normalized entity's values, in "
        'ioc\'s units: `pm25>50;no2>40`, `pm25==20..50`, `name=="Kim Liên"|name=="Hàng Đậu"`, '
        "`pm25.observedAt>=2026-01-15T01:00:00Z`; `;` and, `|` or, parentheses."
    ),
]
GeorelParameter = Annotated[
    str | None,
    Query(
        description="`near;maxDistance==<m>`, `near;minDistance==<m>`, `within`, `contains`, `intersects`, "
        "`disjoint`, `equals`, `overlaps`; with `geometry` and `coordinates`."
    ),
]
GeometryParameter = Annotated[str | None, Query(description="`Point` or `Polygon`.")]
CoordinatesParameter = Annotated[
    str | None,
    Query(description="GeoJSON coordinates: `[105.85,21.03]`, `[[[105.84,21.02],[105.86,21.02],…]]`."),
]
GeopropertyParameter = Annotated[
    str | None, Query(description="The GeoProperty the geo-query is on; `location` (the default).")
]
CountParameter = Annotated[
    bool, Query(description="`true`: the number of matching entities in the `NGSILD-Results-Count` header.")
]
RESULTS_COUNT = "NGSILD-Results-Count"
EntityAttrs = Annotated[
    str | None,
    Query(
        description="Attributes to give (NGSI-LD names, comma-separated), with `id` and `type`; a query "
        "leaves out an entity that has none of them."
    ),
]


def _key_values(options: str | None) -> bool:
    return bool(options) and bool({"keyValues", "simplified"} & set(options.split(",")))  # type: ignore[union-attr]


async def _current(request: Request, entity_type: str, caller: Caller) -> list[tuple[dict[str, Any], Any]]:
    """Every sensor of the type's feed with a window in the live picture (of the caller's districts, for a
    scoped key), as a normalized entity with what it is made of (for its keyValues form): the newest
    window of the feed's shortest length, each measure's newest value."""
    settings = request.app.state.settings
    city = service_of(request).city
    feed = ENTITY_MODELS[entity_type].feed
    window = settings.windows_of(feed)[0].label
    aggregates = await RedisPicture(settings, request.app.state.redis).latest_aggregates(feed, window)
    entities = []
    for aggregate in aggregates:
        sensor = city.sensor(aggregate.sensor_id)
        if not caller.sees(sensor.district if sensor else None):
            continue
        parts = {
            "entity_type": entity_type,
            "sensor_id": aggregate.sensor_id,
            "observed_at": aggregate.last_event_time,
            "values": {name: stats.last for name, stats in aggregate.fields.items()},
            "location": (sensor.lat, sensor.lon) if sensor else None,
            "name": sensor.name if sensor else None,
        }
        entities.append((current_entity(**parts), parts))
    return entities


def _in_form(
    found: list[tuple[dict[str, Any], Any]], key_values: bool, attrs: set[str] | None = None
) -> list[dict[str, Any]]:
    """The entities as asked: keyValues or normalized, with only ``attrs`` (and id, type) when given."""
    shown = [current_entity(**parts, key_values=True) if key_values else entity for entity, parts in found]
    if attrs is None:
        return shown
    return [{name: value for name, value in e.items() if name in attrs | {"id", "type"}} for e in shown]


def _attribute_names(attrs: str | None) -> set[str] | None:
    return set(attrs.split(",")) if attrs else None


@dataclass(frozen=True)
class Selection:
    """Which entities a query asks for and which page of them: ``type``, ``id``, ``q``, the geo-query,
    ``limit``, ``offset`` and ``count``, as both queries (current and temporal) read them."""

    type: str
    ids: str | None
    query: QueryTree | None
    geo: GeoQuery | None
    limit: int
    offset: int
    count: bool

    def counted(self, response: JSONResponse, total: int) -> JSONResponse:
        """The response, with NGSI-LD's count header when ``count=true`` asked for it."""
        if self.count:
            response.headers[RESULTS_COUNT] = str(total)
        return response


def entity_selection(
    type: Annotated[str | None, Query(description="One of " + ", ".join(ENTITY_MODELS) + ".")] = None,  # noqa: A002
    id: Annotated[str | None, Query(description="Entity ids, comma-separated.")] = None,  # noqa: A002
    q: QParameter = None,
    georel: GeorelParameter = None,
    geometry: GeometryParameter = None,
    coordinates: CoordinatesParameter = None,
    geoproperty: GeopropertyParameter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    count: CountParameter = False,
) -> Selection | JSONResponse:
    """The query's selection; a 400 BadRequestData without a type, or with a bad q or geo-query (returned
    for the handler to answer, after the key is checked)."""
    if not type:
        return problem(400, "BadRequestData", "type: required (one of " + ", ".join(ENTITY_MODELS) + ")")
    try:
        query = parse_query(q) if q is not None else None
        geo = parse_geo_query(georel, geometry, coordinates, geoproperty)
    except (QueryError, GeoQueryError) as error:
        return problem(400, "BadRequestData", str(error))
    return Selection(type, id, query, geo, limit, offset, count)


EntitySelection = Annotated[Selection | JSONResponse, Depends(entity_selection)]


def passes(entity: dict[str, Any], query: QueryTree | None, geo: GeoQuery | None) -> bool:
    """Whether a normalized entity satisfies the request's ``q`` and geo-query (each when given)."""
    return (query is None or matches(query, entity)) and (geo is None or geo_matches(geo, entity))


def _entity_response(request: Request, body: Any, entity_type: str) -> JSONResponse:
    """JSON-LD's ``@context`` in the body when the client accepts application/ld+json, else in a Link
    header (NGSI-LD's two ways); one context per response, the type's Smart Data Models one."""
    context = CONTEXTS[entity_type]
    if "application/ld+json" in (request.headers.get("accept") or ""):
        if isinstance(body, list):
            body = [entity | {"@context": context} for entity in body]
        else:
            body = body | {"@context": context}
        return JSONResponse(body, media_type="application/ld+json")
    link = f'<{context[0]}>; rel="{JSON_LD_CONTEXT}"; type="application/ld+json"'
    return JSONResponse(body, headers={"Link": link})


_READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    **VALIDATION_RESPONSES,
    401: COMMON_RESPONSES[401],
    403: _problem_response(
        "The key's role may not read the picture.",
        403,
        "Forbidden",
        "This endpoint needs the admin or operator role; your key has integrator.",
    ),
}
_CURRENT_EXAMPLE = current_entity(
    "AirQualityObserved",
    "air-kim-lien",
    datetime.fromisoformat("2026-01-15T08:00:50+07:00"),
    {"pm25": 80.5, "no2": 41.0},
    location=(21.008, 105.839),
    name="Kim Liên",
)


@router.get(
    "/entities",
    summary="Query the current entities of a type (NGSI-LD)",
    operation_id="ngsi_ld_query_entities",
    description=(
        "ioc as a context source: the current state of every sensor of the type's feed that has a window "
        "in the live picture, one entity each (`urn:ngsi-ld:<type>:<sensorId>`): each measure's newest "
        "value with its `observedAt` and `unitCode`, `dateObserved`, and the registry's `location` and "
        "`name`. `type` is required (400 BadRequestData without it); `id` filters by entity ids "
        "(comma-separated); `attrs` gives only the attributes named (and leaves out an entity with none "
        "of them); `q` by the NGSI-LD query language on the normalized values (ioc's units, "
        "whatever `options` says); `georel`, `geometry` and `coordinates` by the sensors' registry "
        "locations (Point or Polygon; distances in metres); a bad `q` or geo-query is a 400 "
        "BadRequestData saying where and why. `options=keyValues` gives bare values in the Smart Data "
        "Models' units; `count=true` the number of matches in `NGSILD-Results-Count`. The `@context` is "
        "in the `Link` header, or in the body with `Accept: application/ld+json`. Needs the operator or "
        "admin role; a key scoped to districts gets their sensors only."
    ),
    responses={
        200: {
            "description": "The entities, sorted by id.",
            "content": {"application/json": {"example": [_CURRENT_EXAMPLE]}},
            "headers": {"Link": {"description": "The @context.", "schema": {"type": "string"}}},
        },
        400: _problem_response("No type, or a bad parameter.", 400, "BadRequestData", "type: required"),
        **_READ_RESPONSES,
    },
)
async def query_entities(
    request: Request,
    caller: NgsiLdReader,
    selection: EntitySelection,
    attrs: EntityAttrs = None,
    options: KeyValuesOption = None,
) -> JSONResponse:
    if isinstance(caller, JSONResponse):
        return caller
    if isinstance(selection, JSONResponse):
        return selection
    type_ = selection.type
    found = await _current(request, type_, caller) if type_ in ENTITY_MODELS else []  # another type: nothing
    wanted = set(selection.ids.split(",")) if selection.ids else None
    names = _attribute_names(attrs)
    found = [
        (entity, parts)
        for entity, parts in found
        if (wanted is None or entity["id"] in wanted)
        and (names is None or not names.isdisjoint(entity))
        and passes(entity, selection.query, selection.geo)
    ]
    page = _in_form(found[selection.offset : selection.offset + selection.limit], _key_values(options), names)
    response = _entity_response(request, page, type_) if type_ in ENTITY_MODELS else JSONResponse([])
    return selection.counted(response, len(found))


@router.get(
    "/entities/{entityId}",
    summary="Retrieve an entity's current state (NGSI-LD)",
    operation_id="ngsi_ld_retrieve_entity",
    description=(
        "One sensor's current state from the live picture, as `GET /ngsi-ld/v1/entities` gives it. The id "
        "is `urn:ngsi-ld:<type>:<sensorId>` or one a registry sensor lists in its `external_ids` (the "
        "answer carries ioc's own id). 404 ResourceNotFound when no such sensor has a window in the "
        "picture (or is outside a scoped key's districts). Needs the operator or admin role."
    ),
    responses={
        200: {
            "description": "The entity.",
            "content": {"application/json": {"example": _CURRENT_EXAMPLE}},
            "headers": {"Link": {"description": "The @context.", "schema": {"type": "string"}}},
        },
        404: _problem_response(
            "No such sensor, or none of its windows in the picture.",
            404,
            "ResourceNotFound",
            "urn:ngsi-ld:AirQualityObserved:air-nowhere: no sensor of that id has a window in the picture",
        ),
        **_READ_RESPONSES,
    },
)
async def retrieve_entity(
    request: Request,
    entityId: str,  # noqa: N803 (NGSI-LD's name for it)
    caller: NgsiLdReader,
    attrs: EntityAttrs = None,
    options: KeyValuesOption = None,
) -> JSONResponse:
    if isinstance(caller, JSONResponse):
        return caller
    city = service_of(request).city
    entity_type = entity_type_of(entityId, city)
    sensor_id = sensor_named(city, entity_type, entityId) if entity_type else None
    found = []
    if entity_type is not None and sensor_id is not None:
        own_id = entity_id(entity_type, sensor_id)
        current = [(e, p) for e, p in await _current(request, entity_type, caller) if e["id"] == own_id]
        found = _in_form(current, _key_values(options), _attribute_names(attrs))
    if not found:
        return problem(
            404, "ResourceNotFound", f"{entityId}: no sensor of that id has a window in the live picture"
        )
    return _entity_response(request, found[0], entity_type)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------
# Temporal: a sensor's history from the history store (``ioc history``).

TEMPORAL_MAX_POINTS = 10_000  # per attribute in one answer: a longer span needs lastN or a narrower one
_TEMPORAL_EXAMPLE = {
    "id": "urn:ngsi-ld:AirQualityObserved:air-kim-lien",
    "type": "AirQualityObserved",
    "pm25": [
        {"type": "Property", "value": 80.5, "observedAt": "2026-01-15T01:00:00Z", "unitCode": "GQ"},
        {"type": "Property", "value": 78.1, "observedAt": "2026-01-15T01:01:00Z", "unitCode": "GQ"},
    ],
}


TimerelParameter = Annotated[
    Literal["before", "after", "between"] | None, Query(description="The time relation.")
]
TimeAtParameter = Annotated[IsoDateTime | None, Query(description="With its offset (UTC without one).")]
EndTimeAtParameter = Annotated[IsoDateTime | None, Query(description="The end of `between`.")]
AttrsParameter = Annotated[str | None, Query(description="Measures to give, comma-separated.")]
LastNParameter = Annotated[int | None, Query(ge=1, le=TEMPORAL_MAX_POINTS)]
TemporalOptions = Annotated[str | None, Query(description="`temporalValues` for the simplified form.")]
TEMPORAL_MAX_WINDOWS = 100_000  # windows read for one answer (a q is evaluated at each)
_TEMPORAL_QUERY_EXAMPLE = [_TEMPORAL_EXAMPLE]


@router.get(
    "/temporal/entities/{entityId}",
    summary="Retrieve an entity's history (NGSI-LD temporal)",
    operation_id="ngsi_ld_retrieve_temporal_entity",
    description=(
        "One sensor's measures over time from the history store (PostgreSQL, written by `ioc history`): "
        "each measure an array of Property instances, one per window of the feed's shortest length (its "
        "mean, `observedAt` the window's start, `unitCode`), oldest first. `timerel` `before`, `after` or "
        "`between` with `timeAt` (and `endTimeAt` for between; a missing one is now, or a day ago for the "
        "start of `after` and `between`); without `timerel`, the last 24 hours. "
        "`attrs` names measures (comma-separated, NGSI-LD names); `lastN` keeps each one's newest; "
        "`options=temporalValues` gives `[value, time]` pairs in the Smart Data Models' units. At most "
        f"{TEMPORAL_MAX_POINTS:,} instances per measure. Needs the operator or admin role; a key scoped "
        "to districts gets 404 for a sensor outside them."
    ),
    responses={
        200: {
            "description": "The temporal entity.",
            "content": {"application/json": {"example": _TEMPORAL_EXAMPLE}},
            "headers": {"Link": {"description": "The @context.", "schema": {"type": "string"}}},
        },
        400: _problem_response("Too many instances.", 400, "BadRequestData", "more than 10,000 instances"),
        404: _problem_response(
            "No such sensor.", 404, "ResourceNotFound", "urn:ngsi-ld:AirQualityObserved:x"
        ),
        503: _problem_response("The history store does not answer.", 503, "ServiceUnavailable", "…"),
        **_READ_RESPONSES,
    },
)
async def retrieve_temporal_entity(
    request: Request,
    entityId: str,  # noqa: N803 (NGSI-LD's name for it)
    caller: NgsiLdReader,
    timerel: TimerelParameter = None,
    timeAt: TimeAtParameter = None,  # noqa: N803
    endTimeAt: EndTimeAtParameter = None,  # noqa: N803
    attrs: AttrsParameter = None,
    lastN: LastNParameter = None,  # noqa: N803
    options: TemporalOptions = None,
) -> JSONResponse:
    if isinstance(caller, JSONResponse):
        return caller
    settings = request.app.state.settings
    city = service_of(request).city
    entity_type = entity_type_of(entityId, city)
    sensor_id = sensor_named(city, entity_type, entityId) if entity_type else None
    registered = city.sensor(sensor_id) if sensor_id else None
    # A sensor outside a scoped key's districts is answered as an unknown one.
    if (
        entity_type is None
        or sensor_id is None
        or not caller.sees(registered.district if registered else None)
    ):
        return problem(404, "ResourceNotFound", f"{entityId}: no such sensor")
    span = temporal_span(timerel, timeAt, endTimeAt, datetime.now(UTC))
    model = ENTITY_MODELS[entity_type]
    fields = measure_fields(entity_type, attrs)
    window = settings.windows_of(model.feed)[0].label

    def read(connection: psycopg.Connection) -> dict[str, list[tuple[datetime, float]]]:
        store = HistoryStore(connection)
        return {
            field: [
                (at, mean)
                for at, mean, _ in store.series(
                    feed=model.feed,
                    sensor_id=sensor_id,
                    window=window,
                    measure=field,
                    start=span[0],
                    end=span[1],
                )
            ]
            for field in fields
        }

    try:
        series = await on_database(request, read)
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable):
        return problem(503, "ServiceUnavailable", "The history store is not reachable or has no schema yet.")
    if lastN:
        series = {field: points[-lastN:] for field, points in series.items()}
    if any(len(points) > TEMPORAL_MAX_POINTS for points in series.values()):
        return problem(
            400,
            "BadRequestData",
            f"more than {TEMPORAL_MAX_POINTS:,} instances: use lastN or a narrower span",
        )
    temporal_values = bool(options) and "temporalValues" in options.split(",")  # type: ignore[union-attr]
    body = temporal_entity(entity_type, sensor_id, series, temporal_values=temporal_values)
    return _entity_response(request, body, entity_type)


def measure_fields(entity_type: str, attrs: str | None) -> list[str]:
    """The model fields of the measures ``attrs`` names (NGSI-LD names, comma-separated), or all."""
    model = ENTITY_MODELS[entity_type]
    by_wire = {(model.model_fields[m.field].alias or m.field): m.field for m in model.measures}
    wanted = [by_wire.get(name, name) for name in attrs.split(",")] if attrs else list(by_wire.values())
    return [field for field in wanted if field in by_wire.values()]


@router.get(
    "/temporal/entities",
    summary="Query the history of the entities of a type (NGSI-LD temporal)",
    operation_id="ngsi_ld_query_temporal_entities",
    description=(
        "The history of every sensor of the type's feed that has windows in the span, as "
        "`GET /ngsi-ld/v1/temporal/entities/{entityId}` gives one (same `timerel`, `timeAt`, `endTimeAt`, "
        "`attrs`, `lastN`, `options=temporalValues`), sorted by id. `type` is required; `id` (comma-"
        "separated, ioc's ids or ones the registry maps) and a geo-query (`georel`, `geometry`, "
        "`coordinates`, on the registry's locations) choose sensors; `q` is evaluated at each window of "
        "the span (its means, in ioc's units) and an entity matches when it holds at one of them at least; "
        "a matching entity's measures come whole over the span. `limit` entities from `offset`; "
        "`count=true` gives the number of matching entities in `NGSILD-Results-Count`. At most "
        f"{TEMPORAL_MAX_WINDOWS:,} windows read and {TEMPORAL_MAX_POINTS:,} instances per measure: more is "
        "a 400 saying how to ask for less. Needs the operator or admin role; a key scoped to districts "
        "gets their sensors only."
    ),
    responses={
        200: {
            "description": "The temporal entities.",
            "content": {"application/json": {"example": _TEMPORAL_QUERY_EXAMPLE}},
            "headers": {
                "Link": {"description": "The @context.", "schema": {"type": "string"}},
                RESULTS_COUNT: {"description": "With count=true.", "schema": {"type": "integer"}},
            },
        },
        400: _problem_response(
            "No type, a bad q or geo-query, or too much to read.", 400, "BadRequestData", "type: required"
        ),
        503: _problem_response("The history store does not answer.", 503, "ServiceUnavailable", "…"),
        **_READ_RESPONSES,
    },
)
async def query_temporal_entities(
    request: Request,
    caller: NgsiLdReader,
    selection: EntitySelection,
    timerel: TimerelParameter = None,
    timeAt: TimeAtParameter = None,  # noqa: N803
    endTimeAt: EndTimeAtParameter = None,  # noqa: N803
    attrs: AttrsParameter = None,
    lastN: LastNParameter = None,  # noqa: N803
    options: TemporalOptions = None,
) -> JSONResponse:
    if isinstance(caller, JSONResponse):
        return caller
    if isinstance(selection, JSONResponse):
        return selection
    if selection.type not in ENTITY_MODELS:  # a type nobody has matches nothing
        return selection.counted(JSONResponse([]), 0)
    entity_type, query, geo = selection.type, selection.query, selection.geo
    offset, limit = selection.offset, selection.limit
    settings = request.app.state.settings
    city = service_of(request).city
    model = ENTITY_MODELS[entity_type]
    start, end = temporal_span(timerel, timeAt, endTimeAt, datetime.now(UTC))
    fields = measure_fields(entity_type, attrs)
    span = WindowSpan(
        model.feed,
        settings.windows_of(model.feed)[0].label,
        start,
        end,
        tuple(fields),
        _in_scope(_chosen(city, entity_type, selection.ids, geo), city, model.feed, caller),
    )

    def holds(sensor_id: str, at: datetime, means: dict[str, float]) -> bool:
        sensor = city.sensor(sensor_id)
        state = current_entity(
            entity_type,
            sensor_id,
            at,
            means,
            location=(sensor.lat, sensor.lon) if sensor else None,
            name=sensor.name if sensor else None,
        )
        return matches(query, state)  # type: ignore[arg-type]

    def read(connection: psycopg.Connection) -> tuple[int, list[str], dict[str, list[Any]]]:
        if query is None:  # which sensors, then the windows of one page of them
            sensors = sensors_with_windows(connection, span)
            page = sensors[offset : offset + limit]
            chosen = replace(span, sensor_ids=tuple(page))
            return len(sensors), page, windows_of(connection, chosen, TEMPORAL_MAX_WINDOWS)
        everything = windows_of(connection, span, TEMPORAL_MAX_WINDOWS)
        sensors = matching_sensors(everything, holds)
        page = sensors[offset : offset + limit]
        return len(sensors), page, {sensor: everything[sensor] for sensor in page}

    if span.sensor_ids == () or not fields:
        total, page, windows = 0, [], {}
    else:
        try:
            total, page, windows = await on_database(request, read)
        except TooManyWindows as error:
            return problem(400, "BadRequestData", str(error))
        except (psycopg.OperationalError, psycopg.errors.UndefinedTable):
            return problem(
                503, "ServiceUnavailable", "The history store is not reachable or has no schema yet."
            )
    series = {sensor: measure_series(windows.get(sensor, []), fields, lastN) for sensor in page}
    if any(len(points) > TEMPORAL_MAX_POINTS for by_field in series.values() for points in by_field.values()):
        return problem(
            400,
            "BadRequestData",
            f"more than {TEMPORAL_MAX_POINTS:,} instances of a measure: use lastN or a narrower span",
        )
    temporal_values = bool(options) and "temporalValues" in options.split(",")  # type: ignore[union-attr]
    body = [
        temporal_entity(entity_type, sensor, series[sensor], temporal_values=temporal_values)
        for sensor in page
    ]
    return selection.counted(_entity_response(request, body, entity_type), total)


def _in_scope(
    chosen: tuple[str, ...] | None, city: City, feed: str, caller: Caller
) -> tuple[str, ...] | None:
    """``chosen`` (None: any sensor) limited to the feed's sensors of a scoped caller's districts."""
    if caller.districts is None:
        return chosen
    mine = {sensor.id for sensor in city.sensors_of(feed) if caller.sees(sensor.district)}
    return tuple(sorted(mine if chosen is None else mine.intersection(chosen)))


def _chosen(city: City, entity_type: str, ids: str | None, geo: GeoQuery | None) -> tuple[str, ...] | None:
    """The sensors ``id`` names and the registry's that the geo-query keeps (both, when both are given);
    None when neither is given (any sensor with windows)."""
    chosen: set[str] | None = None
    if ids:
        named = (sensor_named(city, entity_type, ident) for ident in ids.split(","))
        chosen = {sensor_id for sensor_id in named if sensor_id is not None}
    if geo is not None:
        feed = ENTITY_MODELS[entity_type].feed
        near = {
            sensor.id
            for sensor in city.sensors_of(feed)
            if geo_matches(geo, {geo.geoproperty: {"type": "Point", "coordinates": [sensor.lon, sensor.lat]}})
        }
        chosen = near if chosen is None else chosen & near
    return None if chosen is None else tuple(sorted(chosen))


def temporal_span(
    timerel: str | None, time_at: datetime | None, end_time_at: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """[start, end) of an NGSI-LD temporal query. A time without an offset is UTC (NGSI-LD's rule); a
    missing ``timeAt`` is now for ``before``, a day ago otherwise; a missing ``endTimeAt`` is now; a span
    that ends before it starts holds nothing."""
    time_at, end_time_at = (_as_utc(t) for t in (time_at, end_time_at))
    day_ago = _shifted(now, -timedelta(hours=24))
    if timerel == "before":
        end = time_at or now
        return _shifted(end, -timedelta(days=366)), end
    if timerel == "after":
        start = time_at or day_ago
        return start, max(now, _shifted(start, timedelta(seconds=1)))
    if timerel == "between":
        start, end = time_at or day_ago, end_time_at or now
        return start, max(start, end)
    return day_ago, now


def _shifted(moment: datetime, by: timedelta) -> datetime:
    """``moment + by``, held at the calendar's ends."""
    try:
        return moment + by
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC) if by > timedelta(0) else datetime.min.replace(tzinfo=UTC)


def _as_utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment
