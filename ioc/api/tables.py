"""CSV answers: the same rows as the JSON, for spreadsheets and open-data portals (``Accept: text/csv``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import Request, Response

CSV = "text/csv"


def wants_csv(request: Request) -> bool:
    """The client asked for CSV before JSON (``Accept: text/csv``; ``?format=csv`` is not offered)."""
    accept = request.headers.get("accept", "")
    return CSV in accept and "application/json" not in accept.split(CSV)[0]


def csv_response(columns: Sequence[str], rows: Iterable[Sequence[Any]], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(["" if value is None else value for value in row] for row in rows)
    return Response(
        out.getvalue(),
        media_type=f"{CSV}; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )


def csv_content(example: str) -> dict[str, Any]:
    """The OpenAPI ``content`` entry of a CSV answer."""
    return {CSV: {"schema": {"type": "string"}, "example": example}}
