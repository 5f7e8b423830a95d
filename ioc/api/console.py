"""The operators' console: one static page at ``/`` and its assets under ``/console/``.

The page holds no data (it asks for an operator key and reads everything through ``/v1``), so serving it
needs no key. Neither route is part of the API's contract: both stay out of the OpenAPI document.

Both answer with security headers: the page runs no inline script or style and loads nothing from
elsewhere, so its Content-Security-Policy allows only its own files (an injected script or style does
not run), and it may not be framed by another site (an acknowledge button clicked through a frame).

What the console knows of the feeds — their names, indices, bands and how each is drawn — comes from the
feed registry (``/console/feeds.json``), so a new feed package brings its tile and map layer with it.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ioc.feeds import REGISTRY, Feed

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


def _bilingual(pair: tuple[str, str]) -> dict[str, str]:
    return {"vi": pair[0], "en": pair[1]}


def feed_view(feed: Feed) -> dict[str, Any]:
    """What the console needs of one feed: its label, its index (name, bands, which is worst) and its
    console view (``ioc.feeds.ConsoleView``); a feed without one shows under its label and index name."""
    view = feed.console
    tally = view.tally if view else None
    return {
        "name": feed.name,
        "label": _bilingual(view.name if view else feed.label),
        "metric": _bilingual(view.metric if view else feed.label),
        "index": {
            "name": feed.index.name,
            "shortName": _bilingual(view.index_name if view else (feed.index.name, feed.index.name)),
            "unit": _bilingual(view.unit if view else ("", "")),
            "worst": feed.index.worst,
            "bands": [asdict(band) for band in feed.index.bands],
        },
        "headline": view.headline if view else "value",
        "marker": view.marker if view else "circle",
        "valueOnMap": view.value_on_map if view else None,
        "tally": (
            {"field": tally.field, "unit": _bilingual(tally.unit), "sensors": _bilingual(tally.sensors)}
            if tally
            else None
        ),
    }


@router.get("/console/feeds.json")
async def feeds() -> JSONResponse:
    """The registry's feeds in canonical order, as the console draws them (no data: no key needed)."""
    return JSONResponse(
        {"feeds": [feed_view(feed) for feed in REGISTRY.values()]},
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
