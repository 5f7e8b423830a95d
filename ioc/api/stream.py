"""``GET /v1/stream``: the live picture's changes as Server-Sent Events, for the operators' console.

The worker appends every change it stores in the picture (an alert or incident event, an aggregate's
delta) to the Redis stream ``<prefix>:stream`` in the same Lua script as the write, trimmed to
``IOC_STREAM_HISTORY`` entries. A stream id only grows, so it is the event's SSE ``id``:

* a new client (no ``Last-Event-ID``) gets a ``snapshot`` event first, carrying the newest stream id,
  then every change after that id;
* a client that reconnects with ``Last-Event-ID`` gets every change after it, in order, when all of
  them are still kept; otherwise (trimmed, or not an id of this stream) a ``reset`` event, a snapshot
  like a new client's, so it knows it missed changes.

The blocking reads (``XREAD BLOCK``) use a Redis client of their own, so open streams never take the
connections the other endpoints need; each open stream holds one of its connections while it waits.

One key holds at most ``IOC_STREAM_MAX_PER_KEY`` streams open in one process (a 429 beyond). A stream
ends as soon as the server is told to stop (``ioc api`` sets ``stopping`` on SIGTERM or
SIGINT): the server waits for open connections to close, and a stream would otherwise never close.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, FastAPI, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from connectors.sinks.redis_picture import UNRESOLVED, RedisPicture
from ioc.api.auth import OperatorCaller
from ioc.api.examples import EXAMPLES
from ioc.api.responses import AUTH_RESPONSES, error, problem
from ioc.city import City, load_city

router = APIRouter(prefix="/v1")

FULL_RETRY_AFTER_SECONDS = 30  # a client over its key's stream cap: about when one of its streams may end
HEARTBEAT_SECONDS = 15  # a comment line after this long without a change keeps proxies from closing
RETRY_MS = 3000  # how soon an EventSource reconnects after the connection dropped
SNAPSHOT_LIMIT = 500  # unresolved alerts (newest first) and open incidents in a snapshot, each

_SNAPSHOT_EXAMPLE = {"alerts": [EXAMPLES["open_alert"]], "incidents": [EXAMPLES["incident"]]}
_EXAMPLE = (
    "retry: 3000\n\n"
    f"id: 1795000000000-0\nevent: snapshot\ndata: {json.dumps(_SNAPSHOT_EXAMPLE, ensure_ascii=False)}\n\n"
    ": keep-alive\n\n"
    "id: 1795000004211-0\nevent: alert\ndata: "
    + json.dumps(
        {
            "change": "opened",
            "revision": 1,
            "at": EXAMPLES["open_alert"]["lastSeen"],
            "alert": EXAMPLES["open_alert"],
        },
        ensure_ascii=False,
    )  # fmt: skip
    + "\n\n"
)

DESCRIPTION = f"""
The live picture's changes as [Server-Sent Events](https://html.spec.whatwg.org/multipage/server-sent-events.html)
(`text/event-stream`), each with an increasing `id`:

* `snapshot` (first, for a new client): `{{"alerts": [...], "incidents": [...]}}`, the unresolved alerts
  (newest episode first) and the open incidents, at most {SNAPSHOT_LIMIT} of each;
* `alert`: an alert event as published on `<prefix>.alerts` (`change`, `revision`, `at`, the full
  `alert`); `incident`: an incident event (`change`, `revision`, `incident`, `mergedInto`);
* `aggregate`: a sensor's newest window, `{{"feed", "window", "sensorId", "windowStart", "count",
  "values"}}` (each field's mean);
* `reset`: like `snapshot`, sent instead of the missed changes when a reconnecting client's
  `Last-Event-ID` is older than the history kept (`IOC_STREAM_HISTORY` changes) or not an id of this
  stream: replace everything shown with it.

A client that reconnects with `Last-Event-ID` (an EventSource does so by itself; or `?lastEventId=`)
gets every change after that id, in order, without duplicates. Changes right after a snapshot may repeat
what it already shows: apply an alert or incident only when its `revision` is higher than the one shown.
A `: keep-alive` comment comes after {HEARTBEAT_SECONDS} s without a change; `retry: {RETRY_MS}` asks the
client to reconnect after 3 s.

One key holds at most `IOC_STREAM_MAX_PER_KEY` streams open at once per API process (429 beyond).

A key scoped to districts (`operator@dong-da`) gets the alerts, incidents and aggregates of its
districts only (the snapshot too).

Needs the operator or admin role, its key in the `X-API-Key` header (never in the URL: URLs end up in
logs). A browser's `EventSource` cannot set headers: read the stream with `fetch` and a
`ReadableStream` as the console does (`ioc/api/console/console.js`), or with any SSE client that can.

Example: `curl -N -H "X-API-Key: $KEY" http://127.0.0.1:8000/v1/stream`
"""


@router.get(
    "/stream",
    tags=["alerts"],
    summary="Live alerts, incidents and picture changes (Server-Sent Events)",
    description=DESCRIPTION,
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An endless event stream.",
            "content": {"text/event-stream": {"schema": {"type": "string"}, "example": _EXAMPLE}},
        },
        **AUTH_RESPONSES,
        429: problem(
            "The key already holds IOC_STREAM_MAX_PER_KEY streams open.",
            "key alice already holds 200 open streams (IOC_STREAM_MAX_PER_KEY); close one",
            retry_after=True,
        ),
    },
)
async def stream(
    request: Request,
    caller: OperatorCaller,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", description="The id of the last event received.")
    ] = None,
    query_last_event_id: Annotated[
        str | None,
        Query(alias="lastEventId", description="Like the Last-Event-ID header, for EventSource polyfills."),
    ] = None,
) -> Response:
    settings = request.app.state.settings
    held = open_streams(request.app, settings.stream_max_per_key)
    if not held.admit(caller.name):
        return error(
            429,
            f"key {caller.name} already holds {held.per_key} open streams (IOC_STREAM_MAX_PER_KEY); "
            "close one",
            FULL_RETRY_AFTER_SECONDS,
        )
    store = RedisPicture(settings, request.app.state.stream_redis)
    resume = last_event_id or query_last_event_id
    return HeldStream(
        _events(request, store, resume, stopping_event(request.app), caller.districts),
        release=lambda: held.release(caller.name),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _scope_filter(scope: frozenset[str] | None, city: City) -> Callable[[str, str], bool] | None:
    """For a key scoped to districts: whether a stream entry (kind, JSON data) is of one of them. An alert
    or incident names its district; an aggregate its sensor, whose district the registry knows (an
    ``unregistered:`` sensor has none, so it is in no scope). None for an unscoped key: everything."""
    if scope is None:
        return None

    def within(kind: str, data: str) -> bool:
        event = json.loads(data)
        if kind in ("alert", "incident"):
            return (event.get(kind) or {}).get("district") in scope
        sensor = city.sensor(str(event.get("sensorId")))
        return sensor is not None and sensor.district in scope

    return within


async def _events(
    request: Request,
    store: RedisPicture,
    last_id: str | None,
    stopping: asyncio.Event,
    scope: frozenset[str] | None = None,
) -> AsyncIterator[str]:
    within = _scope_filter(scope, load_city(store.settings.city))
    yield f"retry: {RETRY_MS}\n\n"
    if last_id is not None and await store.stream_resumable(last_id):
        position = last_id
    else:
        # The newest id before the snapshot is read: a change stored meanwhile comes after it again.
        position = await store.stream_newest()
        snapshot = await _snapshot(store, scope)
        yield _event(position, "snapshot" if last_id is None else "reset", snapshot)
    while not await request.is_disconnected():
        read = store.stream_after(position, block_ms=HEARTBEAT_SECONDS * 1000)
        entries = await until_stopped(read, stopping)
        if entries is None:
            return  # the server is stopping: end the response, so its connection closes
        if not entries:
            yield ": keep-alive\n\n"
        for ident, kind, data in entries:
            if within is None or within(kind, data):
                yield _event(ident, kind, data)
            position = ident  # past the entries of other districts too


async def _snapshot(store: RedisPicture, scope: frozenset[str] | None = None) -> str:
    districts = sorted(scope) if scope is not None else ()
    alerts = await store.alerts(statuses=UNRESOLVED, districts=districts, limit=SNAPSHOT_LIMIT)
    incidents = await store.incidents(status="open", districts=districts, limit=SNAPSHOT_LIMIT)
    return json.dumps(
        {
            "alerts": [alert.model_dump(mode="json", by_alias=True) for alert in alerts.items],
            "incidents": [incident.model_dump(mode="json", by_alias=True) for incident in incidents.items],
        },
        ensure_ascii=False,
    )


def _event(ident: str, kind: str, data: str) -> str:
    # The data is one line of JSON (no newline inside), so one data: line carries it.
    return f"id: {ident}\nevent: {kind}\ndata: {data}\n\n"


# --- streams per key -----------------------------------------------------------------------------------


class OpenStreams:
    """How many streams each key holds open in this process."""

    def __init__(self, per_key: int) -> None:
        self.per_key = per_key
        self.counts: Counter[str] = Counter()

    def admit(self, key_name: str) -> bool:
        if self.counts[key_name] >= self.per_key:
            return False
        self.counts[key_name] += 1
        return True

    def release(self, key_name: str) -> None:
        self.counts[key_name] -= 1
        if self.counts[key_name] <= 0:
            del self.counts[key_name]


def open_streams(app: FastAPI, per_key: int) -> OpenStreams:
    if getattr(app.state, "open_streams", None) is None:
        app.state.open_streams = OpenStreams(per_key)
    return app.state.open_streams


class HeldStream(StreamingResponse):
    """A stream that gives its key's place back however it ends: finished, disconnected or cancelled (the
    generator's own ``finally`` would not run when the client leaves before its first event)."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], None], **options: object) -> None:
        super().__init__(content, **options)  # type: ignore[arg-type]
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()


# --- stopping ------------------------------------------------------------------------------------------

T = TypeVar("T")


def stopping_event(app: FastAPI) -> asyncio.Event:
    """The app's "the server is stopping" event, of the loop that serves it (made at first use; a test
    client's new loop gets a new one)."""
    loop = asyncio.get_running_loop()
    if getattr(app.state, "stopping_loop", None) is not loop:
        app.state.stopping = asyncio.Event()
        app.state.stopping_loop = loop
    return app.state.stopping


def stop_streams(app: FastAPI) -> None:
    """End every open stream of ``app``. Safe from a signal handler or another thread."""
    event, loop = getattr(app.state, "stopping", None), getattr(app.state, "stopping_loop", None)
    if event is not None and loop is not None and not loop.is_closed():
        loop.call_soon_threadsafe(event.set)


async def until_stopped(read: Awaitable[T], stopping: asyncio.Event) -> T | None:
    """``read``'s result, or None as soon as ``stopping`` is set (the read is then cancelled)."""
    reading = asyncio.ensure_future(read)
    waiting = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({reading, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
        if not reading.done():
            reading.cancel()
    return reading.result() if reading.done() and not reading.cancelled() else None
