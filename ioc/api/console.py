"""The operators' console: one static page at ``/`` and its assets under ``/console/``.

The page holds no data (it asks for an operator key and reads everything through ``/v1``), so serving it
needs no key. Neither route is part of the API's contract: both stay out of the OpenAPI document.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "console"

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def index() -> HTMLResponse:
    # Read per request: tiny, and an edited asset shows on the next reload without a restart.
    return HTMLResponse(
        (ASSETS / "index.html").read_text(encoding="utf-8"), headers={"Cache-Control": "no-cache"}
    )


def mount(app: FastAPI) -> None:
    """Add the page and its assets to ``app``."""
    app.include_router(router)
    app.mount("/console", StaticFiles(directory=ASSETS), name="console")
