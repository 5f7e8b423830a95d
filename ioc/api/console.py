"""The operators' console: one static page at ``/`` and its assets under ``/console/``.

The page holds no data (it asks for an operator key and reads everything through ``/v1``), so serving it
needs no key. Neither route is part of the API's contract: both stay out of the OpenAPI document.

Both answer with security headers: the page runs no inline script or style and loads nothing from
elsewhere, so its Content-Security-Policy allows only its own files (an injected script or style does
not run), and it may not be framed by another site (an acknowledge button clicked through a frame).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ASSETS = Path(__file__).parent / "console"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",  # styles set through the CSSOM (element.style) are not affected
        "img-src 'self' data:",  # the empty data: favicon
        "connect-src 'self'",  # fetch /v1, the stream included
        "base-uri 'none'",
        "form-action 'none'",  # the key form is handled by the script, never submitted
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def index() -> HTMLResponse:
    # Read per request: tiny, and an edited asset shows on the next reload without a restart.
    return HTMLResponse(
        (ASSETS / "index.html").read_text(encoding="utf-8"),
        headers={"Cache-Control": "no-cache", **SECURITY_HEADERS},
    )


class WithHeaders:
    """Adds ``headers`` to every response of ``app`` (the static files')."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [(name.lower().encode(), value.encode()) for name, value in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = message | {"headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mount(app: FastAPI) -> None:
    """Add the page and its assets to ``app``."""
    app.include_router(router)
    app.mount("/console", WithHeaders(StaticFiles(directory=ASSETS), SECURITY_HEADERS), name="console")
