"""Every request body is limited while it is read: before the API key is checked, before it is parsed.

FastAPI reads and parses a route's body before it runs the route's dependencies (the key check among
them), so without this an anonymous client could make the API read a body of any size. This pure ASGI
middleware, outside FastAPI, refuses with 413 (and closes the connection):

* at once, without reading a byte of the body, when ``Content-Length`` is over the limit;
* as soon as the bytes read so far are over it, for a chunked body (no ``Content-Length``).

The ingest endpoints take batches (``IOC_INGEST_MAX_BODY_BYTES``); every other route takes small
control bodies (``IOC_API_MAX_BODY_BYTES``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ioc.settings import Settings

INGEST_PREFIXES = ("/v1/ingest/", "/v1/ngsi-ld/", "/ngsi-ld/")  # batches and entities


def body_limit(settings: Settings, path: str) -> tuple[int, str]:
    """The largest body ``path`` takes, in bytes, and the setting that says so."""
    if path.startswith(INGEST_PREFIXES):
        return settings.ingest_max_body_bytes, "IOC_INGEST_MAX_BODY_BYTES"
    return settings.api_max_body_bytes, "IOC_API_MAX_BODY_BYTES"


def declared_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The body's ``Content-Length``, or None when there is none (a chunked body) or it is no number."""
    for name, value in headers:
        if name.lower() == b"content-length" and value.strip().isdigit():
            return int(value)
    return None


def too_large_detail(limit: int, setting: str) -> str:
    return f"the body is larger than {limit} bytes ({setting})"


class BodyTooLarge(Exception):
    """Raised into the application by ``receive``: it stops reading (the 413 replaces its answer)."""


class BodyLimit:
    def __init__(self, app: ASGIApp, limit_of: Callable[[str], tuple[int, str]]) -> None:
        self.app = app
        self.limit_of = limit_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = self.limit_of(scope["path"])
        declared = declared_length(scope["headers"])
        if declared is not None and declared > limit:
            await _refuse(send, too_large_detail(limit, setting))
            return

        received = 0
        over = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise BodyTooLarge
            return message

        async def send_unless_over(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # whatever the application made of the BodyTooLarge (FastAPI: a 400), the 413 says it
            started = started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(BodyTooLarge):  # the application let it through: the 413 below answers
            await self.app(scope, limited_receive, send_unless_over)
        if over and not started:
            await _refuse(send, too_large_detail(limit, setting))


async def _refuse(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    # Connection: close, so the server reads no more of the body it was sent (a keep-alive connection
    # would have to read it all to find the next request).
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def document_413(openapi: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The OpenAPI document with a 413 on every operation that takes a body (the middleware's answer)."""
    has_problem = "Problem" in openapi.get("components", {}).get("schemas", {})
    for path, operations in openapi.get("paths", {}).items():
        limit, setting = body_limit(settings, path)
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                entry = _problem_413(limit, setting, has_problem)
                operation.setdefault("responses", {}).setdefault("413", entry)
    return openapi


def _problem_413(limit: int, setting: str, has_problem: bool) -> dict[str, Any]:
    content: dict[str, Any] = {"example": {"detail": too_large_detail(limit, setting)}}
    if has_problem:
        content["schema"] = {"$ref": "#/components/schemas/Problem"}
    return {
        "description": f"The body is larger than {setting} ({limit} bytes by this server's settings); "
        "refused while it is read, before the key is checked.",
        "content": {"application/json": content},
    }
