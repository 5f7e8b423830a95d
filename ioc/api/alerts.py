"""Operators' alert endpoints: list and read alerts, acknowledge and resolve them, list incidents, read the
audit trail. Reads come from the Redis picture (``RedisPicture``); commands go to Kafka.

**Commands** (``POST /v1/alerts/{id}/ack|resolve``). The alert is looked up in the picture (404 unknown,
409 when the lifecycle forbids the step), then an ``AlertCommand`` (by = the caller's key's name, at = now)
is written to ``<prefix>.alert-commands`` keyed by the alert's entity, acknowledged by Kafka (idempotent,
``acks=all``; 503 with Retry-After otherwise). The alert manager applies it and the picture shows it
moments later, so the request then waits up to ``IOC_COMMAND_WAIT_SECONDS`` for the picture:

* **200** with the alert as the picture shows it, once it shows *this* command applied;
* **409** if it shows another operator's (or the system's) change that came first: the manager refused
  this command;
* **202** with the command when the picture did not change in time (the worker is behind or down): the
  command is safe in Kafka and will be applied, or refused, when the worker gets to it.

So a client reads 200 as done, 202 as accepted, and never needs to send a command twice.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field, TypeAdapter, ValidationError

from connectors.sinks.redis_picture import Position, RedisPicture
from ioc.alerts.audit import AuditEntry
from ioc.api import responses
from ioc.api.auth import Caller, OperatorCaller
from ioc.api.examples import EXAMPLES
from ioc.api.publisher import OperatorPublisher, Unavailable
from ioc.api.responses import (
    AUTH_RESPONSES,
    CURSOR_RESPONSE,
    PAGING,
    UNREADABLE_BODY,
    CamelModel,
    Feed,
    problem,
)
from ioc.api.scope import OUTSIDE_SCOPE, SCOPE_NOTE, audit_visible, districts_for
from ioc.city import load_city
from ioc.feeds import FEEDS
from ioc.models.alert import Alert, AlertCommand, AlertStatus, Incident, IncidentStatus
from ioc.models.anomaly import Severity
from ioc.models.base import Instant
from ioc.settings import Settings

router = APIRouter(prefix="/v1")

POLL_SECONDS = 0.1  # how often a command looks at the picture while it waits


class AlertPage(CamelModel):
    items: list[Alert]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: no more.")


class IncidentPage(CamelModel):
    items: list[Incident]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: no more.")


class AuditPage(CamelModel):
    items: list[AuditEntry]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: no more.")


class CommandBody(CamelModel):
    note: str | None = Field(
        None, max_length=2000, description="Free text kept with the alert and in the audit trail."
    )


class CommandPending(CamelModel):
    detail: str
    command: AlertCommand


def _store(request: Request) -> RedisPicture:
    return RedisPicture(request.app.state.settings, request.app.state.redis)


def _page_example(items: list[dict[str, Any]], next_cursor: str | None = None) -> dict[str, Any]:
    return {"content": {"application/json": {"example": {"items": items, "nextCursor": next_cursor}}}}


_NEXT = Position(
    datetime.fromisoformat(EXAMPLES["alert"]["episodeStart"]).timestamp(), EXAMPLES["alert"]["id"]
).token()


# --- reading alerts ---------------------------------------------------------------------------------

Limit = Annotated[int, Query(ge=1, le=500, description="Most items in the page.")]
Cursor = Annotated[str | None, Query(description="nextCursor of the previous page.")]
Since = Annotated[
    Instant | None, Query(description="Episode start at or after this time (ISO 8601 with offset).")
]
Until = Annotated[Instant | None, Query(description="Episode start before this time (ISO 8601 with offset).")]
PastFrom = Annotated[
    Instant | None,
    Query(
        alias="from",
        description="With or without `to`: answer from the history store, resolved alerts included (as "
        "`GET /v1/history/alerts`): first event at or after this (default `to` − 30 days).",
    ),
]
PastTo = Annotated[
    Instant | None,
    Query(alias="to", description="With or without `from`: from the history store, first event before this "
          "(default now)."),
]  # fmt: skip
PAST_RANGE = (
    "\n\n**Past ranges.** With `from` or `to` (ISO 8601 with offset) the answer comes from the history "
    "store instead of the live picture: every {what} whose first event is in `[from, to)`, resolved ones "
    "included, each as its latest event tells it; the same answer as `GET /v1/history/{what}s` for that "
    "range (its paging and cursors, CSV with `Accept: text/csv`; 503 when the store does not answer). "
    "`since` and `until` are the live picture's and do not combine with them."
)


def _unknown_feed_reason() -> str:
    """The API's own answer to an unregistered feed in a filter (it lists the registry's feeds)."""
    try:
        TypeAdapter(Feed).validate_python("noise")
    except ValidationError as error:
        return error.errors()[0]["msg"]
    raise AssertionError("a feed named noise is registered: the example needs another unknown name")


_UNKNOWN_FEED = _unknown_feed_reason()  # the 422 example of GET /v1/alerts


@router.get(
    "/alerts",
    tags=["alerts"],
    response_model=AlertPage,
    summary="List alerts, newest first",
    description=(
        "The alerts of the live picture, newest episode start first, with their bilingual title and "
        "text, evidence (value, threshold or baseline, window, rule version), lifecycle (who acknowledged "
        "or resolved them, when, with which note) and suppression (`suppressedBy`: a device fault's "
        "inhibition or an operator's silence). Filters combine with AND; a repeated filter "
        "(`?status=open&status=acknowledged`) means any of its values. `since` ≤ episode start < `until`. "
        "Asking only for unresolved statuses reads the smaller index of unresolved alerts.\n\n"
        "Needs the operator or admin role. "
        + SCOPE_NOTE
        + "\n"
        + PAGING
        + PAST_RANGE.format(what="alert")
        + " `rule` is a filter of the live picture only."
    ),
    responses={
        200: _page_example([EXAMPLES["open_alert"], EXAMPLES["alert"]], _NEXT),
        400: CURSOR_RESPONSE,
        422: problem(
            "A filter value is not allowed (`errors` names each), `since` is not before `until` or `from` "
            "not before `to`, or a past range with `since`, `until` or `rule`.",
            f"query.feed.0: {_UNKNOWN_FEED}",
            errors=[{"field": "query.feed.0", "reason": _UNKNOWN_FEED}],
        ),
        503: problem(
            "A past range, and the history store does not answer.", "The history store is not reachable."
        ),
        **AUTH_RESPONSES,
        403: OUTSIDE_SCOPE,
    },
)
async def list_alerts(
    request: Request,
    caller: OperatorCaller,
    status: Annotated[list[AlertStatus] | None, Query(description="open, acknowledged, resolved.")] = None,
    severity: Annotated[list[Severity] | None, Query(description="info, warning, critical.")] = None,
    feed: Annotated[list[Feed] | None, Query(description=", ".join(FEEDS) + ".")] = None,
    district: Annotated[list[str] | None, Query(description="District id, e.g. dong-da.")] = None,
    rule: Annotated[list[str] | None, Query(description="Rule id, e.g. air.aqi_band.")] = None,
    since: Since = None,
    until: Until = None,
    start: PastFrom = None,
    end: PastTo = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> AlertPage:
    if start is not None or end is not None:
        if since is not None or until is not None or rule:
            raise HTTPException(
                422, "A past range (`from`, `to`) does not combine with `since`, `until` or `rule`."
            )
        from ioc.api import history  # it imports this module

        return await history.past_alerts(
            request, caller, start=start, end=end, state=status, area=district, severity=severity,
            feed=[str(f) for f in feed] if feed else None, limit=limit, cursor=cursor,
        )  # fmt: skip
    responses.check_range(since, until)
    page = await _store(request).alerts(
        statuses=status or (),
        severities=severity or (),
        feeds=feed or (),
        districts=districts_for(caller, district),
        rules=rule or (),
        since=since,
        until=until,
        after=responses.position(cursor),
        limit=limit,
    )
    return AlertPage(items=page.items, next_cursor=responses.cursor(page.next))


@router.get(
    "/alerts/{alert_id}",
    tags=["alerts"],
    response_model=Alert,
    summary="One alert",
    description="The alert as the picture holds it (its latest revision). Needs the operator or admin role; "
    "a key scoped to districts gets a 404 for an alert of another district, as for an unknown id.",
    responses={
        200: {"content": {"application/json": {"example": EXAMPLES["alert"]}}},
        404: problem(
            "No alert with this id (or not in the key's districts).",
            "No alert 6283729f9ad589ae8381 in the picture.",
        ),
        **AUTH_RESPONSES,
    },
)
async def get_alert(request: Request, caller: OperatorCaller, alert_id: str) -> Alert:
    return await _known_alert(_store(request), alert_id, caller)


async def _known_alert(store: RedisPicture, alert_id: str, caller: Caller) -> Alert:
    alert = await store.alert(alert_id)
    # Outside a scoped key's districts: the same 404 as an unknown id, so its existence is not revealed.
    if alert is None or not caller.sees(alert.district):
        raise HTTPException(404, f"No alert {alert_id} in the picture.")
    return alert


# --- commands ---------------------------------------------------------------------------------------

COMMAND_STATUS = """
**Status.** `200`: the picture shows this command applied; the body is the alert. `202`: the command is
in Kafka (acknowledged, `acks=all`) but the picture did not show it within `IOC_COMMAND_WAIT_SECONDS`
(the worker is behind or down); it will be applied when the worker reads it — do not send it again.
`404`: no such alert (or, for a key scoped to districts, one of another district). `409`: the
lifecycle forbids it (OPEN → ACKNOWLEDGED → RESOLVED; RESOLVED is final), also when another
operator's change or the condition clearing came first. `503`: Kafka did not acknowledge the command:
nothing was done, send it again after `Retry-After` seconds.

Needs the operator or admin role; the name of the caller's key (`alice` for `alice:operator:…`,
`operator-3f9a1c` for an unnamed `operator:…`) is recorded as who did it, never the key.
"""


def _command_responses(verb: str, conflict: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": f"The alert, {verb}.",
            "content": {"application/json": {"example": EXAMPLES["alert"]}},
        },
        202: {
            "description": "The command is in Kafka; the picture did not show it yet.",
            "model": CommandPending,
            "content": {
                "application/json": {
                    "example": {
                        "detail": "The command is in Kafka; the picture did not show it within 5 s. "
                        "It will be applied when the worker reads it.",
                        "command": EXAMPLES["command"],
                    }
                }
            },
        },
        400: UNREADABLE_BODY,
        404: problem(
            "No alert with this id (or not in the key's districts).",
            "No alert 6283729f9ad589ae8381 in the picture.",
        ),
        409: problem("The lifecycle forbids it.", conflict),
        503: problem(
            "Kafka did not acknowledge the command; nothing was done.",
            "Kafka did not acknowledge in time; nothing was done, send the command again.",
            retry_after=True,
        ),
        **AUTH_RESPONSES,
    }


COMMAND_BODY = {
    "requestBody": {
        "content": {
            "application/json": {
                "example": {"note": "Đã báo Phòng TN-MT quận Đống Đa / Đống Đa environment office informed"}
            }
        }
    }
}


@router.post(
    "/alerts/{alert_id}/ack",
    tags=["alerts"],
    response_model=Alert,
    summary="Acknowledge an alert",
    description="An operator has seen the open alert and is on it: OPEN → ACKNOWLEDGED, with who, when and "
    "an optional note. Suppressed alerts can be acknowledged too.\n" + COMMAND_STATUS,
    responses=_command_responses(
        "acknowledged",
        "Alert 6283729f9ad589ae8381 is already acknowledged by alice at 2026-11-23T07:45:00+07:00; "
        "only an open alert can be acknowledged.",
    ),
    openapi_extra=COMMAND_BODY,
)
async def acknowledge(
    request: Request,
    caller: OperatorCaller,
    alert_id: str,
    body: Annotated[CommandBody | None, Body()] = None,
) -> Any:
    return await _command(request, caller, alert_id, "acknowledge", body)


@router.post(
    "/alerts/{alert_id}/resolve",
    tags=["alerts"],
    response_model=Alert,
    summary="Resolve an alert",
    description="The situation is handled: OPEN or ACKNOWLEDGED → RESOLVED, with who, when and an optional "
    "note. Resolved is final: if the condition still holds, the next episode opens a new alert.\n"
    + COMMAND_STATUS,
    responses=_command_responses(
        "resolved",
        "Alert 6283729f9ad589ae8381 is already resolved by system at 2026-11-23T09:10:00+07:00; "
        "a resolved alert is final.",
    ),
    openapi_extra=COMMAND_BODY,
)
async def resolve(
    request: Request,
    caller: OperatorCaller,
    alert_id: str,
    body: Annotated[CommandBody | None, Body()] = None,
) -> Any:
    return await _command(request, caller, alert_id, "resolve", body)


async def _command(
    request: Request,
    caller: Caller,
    alert_id: str,
    action: Literal["acknowledge", "resolve"],
    body: CommandBody | None,
) -> Any:
    settings: Settings = request.app.state.settings
    store = _store(request)
    alert = await _known_alert(store, alert_id, caller)
    refusal = _refusal(alert, action)
    if refusal is not None:
        raise HTTPException(409, refusal)
    command = AlertCommand(
        action=action,
        alert_id=alert.id,
        entity=alert.entity,
        by=caller.name,
        at=responses.now(settings),
        note=body.note if body else None,
    )
    try:
        await publisher_of(request).send(settings.alert_commands_topic, alert.entity, command.to_json())
    except Unavailable as error:
        return responses.error(
            503, f"{error}; nothing was done, send the command again.", settings.command_retry_after_seconds
        )
    shown = await _changed(store, command, settings.command_wait_seconds)
    if shown is None:
        pending = CommandPending(
            detail=f"The command is in Kafka; the picture did not show it within "
            f"{settings.command_wait_seconds:g} s. It will be applied when the worker reads it.",
            command=command,
        )
        return JSONResponse(pending.model_dump(mode="json", by_alias=True), status_code=202)
    if not _applied(shown, command):
        raise HTTPException(409, _refusal(shown, action) or f"Alert {alert.id} changed meanwhile.")
    return shown


def _refusal(alert: Alert, action: str) -> str | None:
    """Why the lifecycle forbids ``action`` on the alert as it is, or None."""
    if alert.status == AlertStatus.resolved:
        when = alert.resolved_at.isoformat() if alert.resolved_at else "?"
        again = " again" if action == "resolve" else ""
        return (
            f"Alert {alert.id} is already resolved by {alert.resolved_by} at {when}; a resolved alert is "
            f"final and cannot be {'resolved' if action == 'resolve' else 'acknowledged'}{again}."
        )
    if action == "acknowledge" and alert.status == AlertStatus.acknowledged:
        when = alert.acknowledged_at.isoformat() if alert.acknowledged_at else "?"
        return (
            f"Alert {alert.id} is already acknowledged by {alert.acknowledged_by} at {when}; only an open "
            "alert can be acknowledged."
        )
    return None


def _applied(alert: Alert, command: AlertCommand) -> bool:
    if command.action == "acknowledge":
        return (alert.acknowledged_by, alert.acknowledged_at) == (command.by, command.at)
    return (alert.resolved_by, alert.resolved_at) == (command.by, command.at)


async def _changed(store: RedisPicture, command: AlertCommand, wait: float) -> Alert | None:
    """The alert once the picture shows a change the command would make (by it or not), or None."""
    deadline = time.monotonic() + wait
    while True:
        alert = await store.alert(command.alert_id)
        if alert is not None and (
            alert.status == AlertStatus.resolved
            or (command.action == "acknowledge" and alert.status == AlertStatus.acknowledged)
        ):
            return alert
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(POLL_SECONDS)


def publisher_of(request: Request) -> OperatorPublisher:
    app = request.app
    publisher = getattr(app.state, "publisher", None)
    if publisher is None:  # an app built without the lifespan's help (should not happen)
        publisher = app.state.publisher = OperatorPublisher(app.state.settings)
    return publisher


# --- incidents and the audit trail ------------------------------------------------------------------


@router.get(
    "/incidents",
    tags=["incidents"],
    response_model=IncidentPage,
    summary="List incidents, newest first",
    description=(
        "Incidents: the visible alerts of one district whose episodes start close together (30 minutes, "
        "the rules file's `incident_minutes`), across feeds, with their members, the highest severity and "
        "a bilingual title and text. Open ones by default (all of them over a past range); "
        "`?status=resolved` or `?status=all`. "
        "`since` ≤ start < `until`. Incidents merged into another are not listed.\n\n"
        "Needs the operator or admin role. " + SCOPE_NOTE + "\n" + PAGING + PAST_RANGE.format(what="incident")
    ),
    responses={
        200: _page_example([EXAMPLES["incident"]]),
        400: CURSOR_RESPONSE,
        422: problem(
            "`from` is not before `to`, or a past range with `since` or `until`.",
            "`from` must be before `to`.",
        ),
        503: problem(
            "A past range, and the history store does not answer.", "The history store is not reachable."
        ),
        **AUTH_RESPONSES,
        403: OUTSIDE_SCOPE,
    },
)
async def list_incidents(
    request: Request,
    caller: OperatorCaller,
    status: Annotated[
        Literal["open", "resolved", "all"] | None,
        Query(description="open, resolved or all; default open, all over a past range."),
    ] = None,
    district: Annotated[list[str] | None, Query(description="District id, e.g. dong-da.")] = None,
    since: Annotated[Instant | None, Query(description="Start at or after this time.")] = None,
    until: Annotated[Instant | None, Query(description="Start before this time.")] = None,
    start: PastFrom = None,
    end: PastTo = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> IncidentPage:
    if start is not None or end is not None:
        if since is not None or until is not None:
            raise HTTPException(422, "A past range (`from`, `to`) does not combine with `since` or `until`.")
        from ioc.api import history  # it imports this module

        states = [] if status in (None, "all") else [IncidentStatus(status)]
        return await history.past_incidents(
            request, caller, start=start, end=end, state=states, area=district, limit=limit, cursor=cursor
        )
    responses.check_range(since, until)
    page = await _store(request).incidents(
        status=status or "open",
        districts=districts_for(caller, district),
        since=since,
        until=until,
        after=responses.position(cursor),
        limit=limit,
    )
    return IncidentPage(items=page.items, next_cursor=responses.cursor(page.next))


@router.get(
    "/audit",
    tags=["audit"],
    response_model=AuditPage,
    summary="Who did what, newest first",
    description=(
        "The operators' actions: alerts acknowledged and resolved (as the alert manager applied them; a "
        "refused command leaves no entry), silences created and ended, each with who (the API key's "
        "name, `alice` or `operator-3f9a1c`), when, the note or comment, and what it was about. Built by "
        "the worker from Kafka "
        "(`<prefix>.alerts`, `<prefix>.silences`), so it is rebuilt with the rest of the picture if Redis "
        "is lost; entry ids are stable, so a replay adds no duplicate.\n\n"
        "Needs the operator or admin role. A key scoped to districts gets the entries of its districts' "
        "alerts and of the silences that may mute them.\n" + PAGING
    ),
    responses={
        200: _page_example(EXAMPLES["audit"]),
        400: CURSOR_RESPONSE,
        **AUTH_RESPONSES,
    },
)
async def list_audit(
    request: Request, caller: OperatorCaller, limit: Limit = 50, cursor: Cursor = None
) -> AuditPage:
    keep = None
    if caller.districts is not None:
        districts = [d.id for d in load_city(request.app.state.settings.city).districts]
        keep = lambda entry: audit_visible(caller, entry, districts)  # noqa: E731
    page = await _store(request).audit(after=responses.position(cursor), limit=limit, keep=keep)
    return AuditPage(items=page.items, next_cursor=responses.cursor(page.next))
