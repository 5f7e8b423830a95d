"""What the operators' endpoints share: error bodies and their OpenAPI entries, cursors, the clock."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from connectors.sinks.redis_picture import SCAN_BUDGET, Position
from ioc.city import load_city
from ioc.feeds import FEEDS
from ioc.settings import Settings

Feed = Literal[FEEDS]  # type: ignore[valid-type]  # a feed the settings know: an enum in the OpenAPI


class CamelModel(BaseModel):
    """Fields in snake_case here, camelCase on the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class FieldError(BaseModel):
    field: str = Field(description="Where: `query.<name>`, `path.<name>`, `header.<name>` or `body.<path>`.")
    reason: str = Field(description="What is wrong with its value.")


class Problem(BaseModel):
    """The one error body of the API: every 4xx and 5xx but the ingest endpoints' per-item results."""

    detail: str = Field(description="What went wrong, as a sentence.")
    errors: list[FieldError] | None = Field(
        None, description="For values that failed validation (422): each field and why; else absent."
    )


def problem(
    description: str,
    example: str,
    *,
    retry_after: bool = False,
    errors: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """An OpenAPI response entry for an error with a ``detail`` sentence."""
    body: dict[str, Any] = {"detail": example} | ({"errors": errors} if errors else {})
    response: dict[str, Any] = {
        "description": description,
        "model": Problem,
        "content": {"application/json": {"example": body}},
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

INVALID = problem(
    "A query, path, header or body value is not valid: `detail` says why, `errors` names each field.",
    "query.limit: Input should be greater than or equal to 1",
    errors=[{"field": "query.limit", "reason": "Input should be greater than or equal to 1"}],
)
UNREADABLE_BODY = problem(
    "The body could not be read: not JSON, or not UTF-8.", "the body is not JSON: Expecting value"
)
# Every route of /v1 with a parameter or a body: FastAPI's own validation answers in the same shape.
VALIDATION_RESPONSES: dict[int | str, dict[str, Any]] = {422: INVALID}
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {400: UNREADABLE_BODY, 422: INVALID}

CURSOR_RESPONSE = problem("The cursor is not one this API gave.", "the cursor is not one this API gave")


def position(cursor: str | None) -> Position | None:
    """The position a cursor names (400 if it is not a cursor); an empty one is no cursor (the first page),
    as a form that leaves the field blank sends it."""
    if not cursor:
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


def validation_problem(errors: Sequence[Any]) -> JSONResponse:
    """FastAPI's validation errors in the one error shape: a sentence, and each field with its reason. A
    body that is not JSON is a 400, as the ingest endpoints answer it: the body could not be read."""
    fields = [FieldError(field=_where(error.get("loc", ())), reason=_reason(error)) for error in errors]
    if any(error.get("type") == "json_invalid" for error in errors):
        reasons = "; ".join(_reason(error) for error in errors if error.get("type") == "json_invalid")
        return error(400, f"the body is not JSON: {reasons}")
    detail = "; ".join(f"{field.field}: {field.reason}" for field in fields) or "the request is not valid"
    body = Problem(detail=detail, errors=fields).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=422)


def _where(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc) or "request"


def _reason(error: Any) -> str:
    message = str(error.get("msg", "not valid")).removeprefix("Value error, ")
    context = error.get("ctx") or {}
    if error.get("type") == "json_invalid" and "error" in context:
        # FastAPI puts the character position where a field name would be: say it as one.
        where = f" (at character {error['loc'][-1]})" if error.get("loc") else ""
        return f"{context['error']}{where}"
    return message
