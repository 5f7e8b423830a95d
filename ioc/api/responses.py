"""What the operators' endpoints share: error bodies and their OpenAPI entries, cursors, the clock."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from connectors.sinks.redis_picture import SCAN_BUDGET, Position
from ioc.city import load_city
from ioc.settings import Settings


class CamelModel(BaseModel):
    """Fields in snake_case here, camelCase on the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Problem(BaseModel):
    detail: str


def problem(description: str, example: str, *, retry_after: bool = False) -> dict[str, Any]:
    """An OpenAPI response entry for an error with a ``detail`` sentence."""
    response: dict[str, Any] = {
        "description": description,
        "model": Problem,
        "content": {"application/json": {"example": {"detail": example}}},
    }
    if retry_after:
        response["headers"] = {
            "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}
        }
    return response


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: problem("No API key, or an unknown one.", "This endpoint needs an API key in the X-API-Key header."),
    403: problem(
        "The key's role may not use this endpoint (integrator keys may not).",
        "This endpoint needs the admin or operator role; your key has integrator.",
    ),
}

PAGING = f"""
**Paging.** Newest first. `limit` items at most (default 50, at most 500); when `nextCursor` is not
null, pass it as `cursor` for the next page (with the same filters). A cursor is a position (the last
entry looked at), not an offset, so items arriving meanwhile do not shift the pages; there is no total
count. A page may hold fewer than `limit` items (with selective filters at most {SCAN_BUDGET:,} entries
are looked at per request) and a non-null `nextCursor` may lead to an empty page: page until
`nextCursor` is null.
Write the `+` of a UTC offset in a query as `%2B` (or use `Z`).
"""

CURSOR_RESPONSE = problem("The cursor is not one this API gave.", "the cursor is not one this API gave")


def position(cursor: str | None) -> Position | None:
    """The position a cursor names (400 if it is not a cursor)."""
    if cursor is None:
        return None
    try:
        return Position.parse(cursor)
    except ValueError as error:
        raise HTTPException(400, str(error)) from None


def cursor(after: Position | None) -> str | None:
    return after.token() if after is not None else None


def check_range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise HTTPException(
            422,
            f"since ({since.isoformat()}) must be before until ({until.isoformat()})",
        )


def now(settings: Settings) -> datetime:
    """Wall-clock time in the city's time zone: when an operator acted."""
    return datetime.now(ZoneInfo(load_city(settings.city).timezone))


def error(code: int, detail: str, retry_after: float | None = None) -> JSONResponse:
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else None
    return JSONResponse({"detail": detail}, status_code=code, headers=headers)
