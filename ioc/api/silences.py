"""Operators' silences: ``GET``/``POST /v1/silences``, ``GET``/``DELETE /v1/silences/{id}``.

A silence is written to *every* partition of ``<prefix>.silences`` (``EventProducer.broadcast``): each
alert-manager partition keeps its own book of them. The worker also writes it to the Redis picture
(``<prefix>:silence:<id>``), which these endpoints read. Ending one early (``DELETE``) publishes it again
with ``endsAt`` = now and ``endedBy`` = the caller. A silence is judged at *event time* by the alert
manager: a new one mutes the matching open alerts at once; an ended one lets them go when the event time
of their partition passes its new end (the next readings do that).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal
from uuid import uuid4

from fastapi import APIRouter, Body, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field, ValidationError

from connectors.sinks.redis_picture import RedisPicture
from ioc.alerts.rules import load_rules
from ioc.alerts.silence import Matchers, Silence, refusal
from ioc.api import responses
from ioc.api.alerts import publisher_of
from ioc.api.auth import Caller, OperatorCaller
from ioc.api.examples import EXAMPLES
from ioc.api.publisher import Unavailable
from ioc.api.responses import AUTH_RESPONSES, CamelModel, problem
from ioc.api.scope import ROLE_403, silence_confined, silence_visible
from ioc.city import load_city
from ioc.models.base import Instant
from ioc.settings import Settings

router = APIRouter(prefix="/v1", tags=["silences"])

POLL_SECONDS = 0.1
NOT_AFTER_START = timedelta(milliseconds=1)  # a future silence ended now: it starts just before its end


class SilenceView(Silence):
    status: Literal["active", "pending", "expired"] = Field(
        description="At the time of the request (wall clock): pending before startsAt, active until endsAt."
    )


class SilenceList(CamelModel):
    items: list[SilenceView]


class NewSilence(CamelModel):
    matchers: Matchers = Field(
        description="What to mute: rule, district and/or entity, each an exact id or a glob with *; every "
        "matcher given must match."
    )
    starts_at: Instant | None = Field(
        None,
        description="Default: now less the allowed lateness (IOC_ALLOWED_LATENESS_SECONDS), so readings "
        "still arriving for the current windows are covered and open alerts are muted at once.",
    )
    ends_at: Instant | None = Field(None, description="Give endsAt or duration.")
    duration: timedelta | None = Field(None, description="ISO 8601 duration (PT2H) or seconds.")
    comment: str = Field(description="Why: operators read it when an alert is muted.")


def _view(silence: Silence, at: datetime) -> SilenceView:
    state = "pending" if at < silence.starts_at else "active" if at < silence.ends_at else "expired"
    return SilenceView.model_validate(silence.model_dump() | {"status": state})


def _views(example: dict[str, Any], state: str) -> dict[str, Any]:
    return example | {"status": state}


def _store(request: Request) -> RedisPicture:
    return RedisPicture(request.app.state.settings, request.app.state.redis)


UNAVAILABLE = problem(
    "Kafka did not acknowledge the silence on every partition in time.",
    "Kafka did not acknowledge in time; send the request again (the silence may have reached some "
    "partitions: if it is listed, delete it or let it be).",
    retry_after=True,
)
NOT_FOUND = problem(
    "No silence with this id (for a key scoped to districts: none that may mute its districts' alerts).",
    "No silence 0c6f1d0e-5b7a-4f0e-9a51-2f4b8f0f6a11.",
)
BEYOND_SCOPE = problem(
    f"{ROLE_403} Or: the key is scoped to districts, and the silence would mute (or mutes) alerts of "
    "other districts too: a scoped key's silences need a `district` matcher within its districts.",
    "Key alice is scoped to dong-da: a silence it makes or ends must mute alerts of those districts only "
    '(a district matcher of them, e.g. {"district": "dong-da"}).',
)


@router.get(
    "/silences",
    response_model=SilenceList,
    summary="List silences",
    description=(
        "The silences that are active or start later, newest start first; `?all=true` adds the expired "
        "ones (ended on time or early). Each has its matchers, start and end, who created it and why, "
        "who ended it early (`endedBy`), and its `status` now.\n\nNeeds the operator or admin role. A "
        "key scoped to districts lists the silences that may mute its districts' alerts (those whose "
        "`district` matcher matches one of them, and those without one)."
    ),
    responses={
        200: {
            "content": {"application/json": {"example": {"items": [_views(EXAMPLES["silence"], "active")]}}}
        },
        **AUTH_RESPONSES,
    },
)
async def list_silences(
    request: Request,
    caller: OperatorCaller,
    all: Annotated[bool, Query(description="Include expired silences.")] = False,
) -> SilenceList:
    settings: Settings = request.app.state.settings
    now = responses.now(settings)
    silences = await _store(request).silences(ending_after=None if all else now)
    districts = known_ids(settings.rules, settings.city)["district"]
    return SilenceList(
        items=[_view(s, now) for s in silences if silence_visible(caller, s.matchers, districts)]
    )


@router.get(
    "/silences/{silence_id}",
    response_model=SilenceView,
    summary="One silence",
    description="The silence as its latest version says. Needs the operator or admin role; a key scoped "
    "to districts gets a 404 for a silence that mutes none of its districts' alerts.",
    responses={
        200: {"content": {"application/json": {"example": _views(EXAMPLES["silence"], "active")}}},
        404: NOT_FOUND,
        **AUTH_RESPONSES,
    },
)
async def get_silence(request: Request, caller: OperatorCaller, silence_id: str) -> SilenceView:
    silence = await _known(_store(request), silence_id, caller)
    return _view(silence, responses.now(request.app.state.settings))


@router.post(
    "/silences",
    response_model=SilenceView,
    status_code=201,
    summary="Silence alerts for a while",
    description=(
        "Mutes the alerts that match, from `startsAt` (default: now, less the allowed lateness) until "
        "`endsAt` or for `duration` (from `startsAt` if given, else from now): they are still tracked but "
        "marked `suppressedBy.silence` "
        "and left out of incidents. Matchers: `rule`, "
        "`district`, `entity`, each an exact id or a glob where `*` stands for any text (`air.*`; `?` and "
        "every other character match themselves); at least one. Each must match a rule of the rules "
        "file, a district of the city or a sensor of the registry (an entity pattern may name "
        "`unregistered:` sensors instead), and together they must not match every alert (`*`, `*.*` for "
        "the rules, `*-*` for the sensors). A silence lasts at most `IOC_SILENCE_MAX_DURATION_SECONDS` "
        "(30 days). The id is generated; `createdBy` is the caller's key's name. The silence is "
        "written to every partition of `<prefix>.silences` and acknowledged by Kafka before the answer; "
        "the request then waits up to `IOC_COMMAND_WAIT_SECONDS` for the worker to list it. Silences are "
        "judged at event time (the readings' time), so a replay mutes exactly what the live run did.\n\n"
        "`201`: created. `422`: the silence is not valid (the sentence says why). `503`: Kafka did not "
        "acknowledge in time (`Retry-After`).\n\nNeeds the operator or admin role. A key scoped to "
        "districts (`operator@dong-da`) may only silence alerts of its districts: the silence needs a "
        "`district` matcher that matches none but them (403 otherwise)."
    ),
    responses={
        201: {"content": {"application/json": {"example": _views(EXAMPLES["silence"], "active")}}},
        400: responses.UNREADABLE_BODY,
        422: problem(
            "The silence is not valid: `detail` says why; for a malformed field, `errors` names each one.",
            "endsAt must be after startsAt",
        ),
        503: UNAVAILABLE,
        **AUTH_RESPONSES,
        403: BEYOND_SCOPE,
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "examples": {
                        "for a duration": {
                            "value": {
                                "matchers": {"rule": "air.*", "entity": "air-kim-lien"},
                                "duration": "PT3H",
                                "comment": EXAMPLES["silence"]["comment"],
                            }
                        },
                        # Its dates are tonight's, set whenever the document is served.
                        "until a time": {"value": {}},
                    }
                }
            }
        }
    },
)
async def create_silence(
    request: Request, caller: OperatorCaller, body: Annotated[NewSilence, Body()]
) -> Any:
    settings: Settings = request.app.state.settings
    now = responses.now(settings)
    if (body.ends_at is None) == (body.duration is None):
        raise HTTPException(422, "give either endsAt or duration")
    if body.duration is not None and body.duration <= timedelta(0):
        raise HTTPException(422, "duration must be positive")
    longest = timedelta(seconds=settings.silence_max_duration_seconds)
    if body.duration is not None and body.duration > longest:
        raise HTTPException(422, _too_long(body.duration, longest))
    # "From now on" also covers the readings still arriving for the current windows (the allowed
    # lateness): the manager judges silences at event time, which runs a little behind the wall clock, so
    # a silence starting at the wall clock's now would wait for the next anomaly to mute anything.
    starts_at = body.starts_at or now - timedelta(seconds=settings.allowed_lateness_seconds)
    try:
        ends_at = body.ends_at or (body.starts_at or now) + body.duration  # type: ignore[operator]
    except OverflowError:
        raise HTTPException(422, "startsAt plus duration is beyond the year 9999") from None
    try:
        silence = Silence(
            id=str(uuid4()),
            matchers=body.matchers,
            starts_at=starts_at,
            ends_at=ends_at,
            created_by=caller.name,
            created_at=now,
            comment=body.comment,
        )
    except ValidationError as error:
        raise HTTPException(422, _sentence(error)) from None
    # From the start asked for: the default start's allowed lateness is not the operator's to count.
    if ends_at - (body.starts_at or now) > longest:
        raise HTTPException(422, _too_long(ends_at - (body.starts_at or now), longest))
    known = known_ids(settings.rules, settings.city)
    refused = refusal(silence.matchers, known)
    if refused is not None:
        raise HTTPException(422, refused)
    if not silence_confined(caller, silence.matchers, known["district"]):
        raise HTTPException(403, _beyond_scope(caller))
    if ends_at <= now:
        raise HTTPException(422, f"endsAt ({ends_at.isoformat()}) is past: the silence would mute nothing")
    failed = await _publish(request, silence)
    if failed is not None:
        return failed
    await _listed(_store(request), silence, settings.command_wait_seconds)
    view = _view(silence, now)
    return JSONResponse(view.model_dump(mode="json", by_alias=True), status_code=201)


@router.delete(
    "/silences/{silence_id}",
    response_model=SilenceView,
    summary="End a silence now",
    description=(
        "Ends the silence now: it is published again (to every partition) with `endsAt` = now and "
        "`endedBy` = the caller's key's name; a silence that had not started yet is cancelled the same way. "
        "The alerts it muted are shown again once event time passes the new end (their next readings). "
        "The request waits up to `IOC_COMMAND_WAIT_SECONDS` for the worker to show the new end.\n\n"
        "`200`: ended; the body is the silence as it is now. `404`: no such silence. `409`: it has ended "
        "already. `503`: Kafka did not acknowledge in time (`Retry-After`): send it again.\n\n"
        "Needs the operator or admin role. A key scoped to districts ends only silences confined to its "
        "districts (403 for one it sees that mutes other districts too, 404 for one it does not see)."
    ),
    responses={
        200: {"content": {"application/json": {"example": _views(EXAMPLES["ended_silence"], "expired")}}},
        404: NOT_FOUND,
        409: problem(
            "The silence has ended already.",
            "Silence 0c6f1d0e-5b7a-4f0e-9a51-2f4b8f0f6a11 has ended already, at 2026-11-23T08:35:00+07:00 "
            "(ended by duty-admin).",
        ),
        503: UNAVAILABLE,
        **AUTH_RESPONSES,
        403: BEYOND_SCOPE,
    },
)
async def end_silence(request: Request, caller: OperatorCaller, silence_id: str) -> Any:
    settings: Settings = request.app.state.settings
    store = _store(request)
    silence = await _known(store, silence_id, caller)
    if not silence_confined(caller, silence.matchers, known_ids(settings.rules, settings.city)["district"]):
        raise HTTPException(403, _beyond_scope(caller))
    now = responses.now(settings)
    if silence.ends_at <= now:
        by = f" (ended by {silence.ended_by})" if silence.ended_by else ""
        raise HTTPException(
            409, f"Silence {silence.id} has ended already, at {silence.ends_at.isoformat()}{by}."
        )
    ended = Silence.model_validate(
        silence.model_dump()
        | {
            "starts_at": min(silence.starts_at, now - NOT_AFTER_START),
            "ends_at": now,
            "ended_by": caller.name,
        }
    )
    failed = await _publish(request, ended)
    if failed is not None:
        return failed
    await _listed(store, ended, settings.command_wait_seconds)
    return _view(ended, now)


@lru_cache(maxsize=4)
def known_ids(rules: str, city: str) -> dict[str, frozenset[str]]:
    """The ids a silence's matchers are judged against: the rules file's rules, the city's districts and
    the registry's sensors (every alert names one of each, or an ``unregistered:`` sensor)."""
    registry = load_city(city)
    return {
        "rule": frozenset(rule.id for rule in load_rules(rules).rules),
        "district": frozenset(district.id for district in registry.districts),
        "entity": frozenset(sensor.id for sensor in registry.sensors),
    }


def _beyond_scope(caller: Caller) -> str:
    return (
        f"Key {caller.name} is scoped to {', '.join(sorted(caller.districts or ()))}: a silence it makes or "
        "ends must mute alerts of those districts only (a district matcher of them, e.g. "
        f'{{"district": "{min(caller.districts or {"dong-da"})}"}}).'
    )


def _too_long(length: timedelta, longest: timedelta) -> str:
    return (
        f"a silence lasts at most {_days(longest)} (IOC_SILENCE_MAX_DURATION_SECONDS); this one would last "
        f"{_days(length)}: silence for a while, then again if it is still needed"
    )


def _days(length: timedelta) -> str:
    return f"{length.total_seconds() / 86_400:,.4g} days"


def with_timed_examples(document: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The OpenAPI document with the "until a time" silence example set to the coming night (22:00 to
    05:00, local): an example with fixed dates would be refused once they are past."""
    tonight = now.replace(hour=22, minute=0, second=0, microsecond=0)
    if tonight <= now:
        tonight += timedelta(days=1)
    examples = document["paths"]["/v1/silences"]["post"]["requestBody"]["content"]["application/json"]
    examples["examples"]["until a time"]["value"] = {
        "matchers": {"rule": "traffic.incident", "district": "dong-da"},
        "startsAt": tonight.isoformat(),
        "endsAt": (tonight + timedelta(hours=7)).isoformat(),
        "comment": "Thi công đường sắt đô thị ban đêm / night works on the metro",
    }
    return document


async def _known(store: RedisPicture, silence_id: str, caller: Caller) -> Silence:
    silence = await store.silence(silence_id)
    settings = store.settings
    # One a scoped key does not see (it mutes none of its districts' alerts) is answered as unknown.
    if silence is None or not silence_visible(
        caller, silence.matchers, known_ids(settings.rules, settings.city)["district"]
    ):
        raise HTTPException(404, f"No silence {silence_id}.")
    return silence


async def _publish(request: Request, silence: Silence) -> JSONResponse | None:
    settings: Settings = request.app.state.settings
    try:
        await publisher_of(request).broadcast(settings.silences_topic, silence.id, silence.to_json())
    except Unavailable as error:
        return responses.error(
            503,
            f"{error}; send the request again (the silence may have reached some partitions: if it is "
            "listed, delete it or let it be).",
            settings.command_retry_after_seconds,
        )
    return None


async def _listed(store: RedisPicture, silence: Silence, wait: float) -> bool:
    """Wait until the picture holds this version of the silence (or a later one)."""
    deadline = time.monotonic() + wait
    while True:
        shown = await store.silence(silence.id)
        if shown is not None and shown.ends_at <= silence.ends_at:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL_SECONDS)


def _sentence(error: ValidationError) -> str:
    """The model's own sentences, without pydantic's 'Value error, ' prefix."""
    parts = []
    for problem_ in error.errors():
        message = str(problem_["msg"]).removeprefix("Value error, ")
        where = ".".join(str(part) for part in problem_["loc"])
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
