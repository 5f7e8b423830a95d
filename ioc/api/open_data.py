"""``GET /open-data/…``: the files ``ioc export`` wrote, to anyone (no key: aggregates of fixed stations)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from ioc.api.responses import problem
from ioc.kpis.export import DAILY_COLUMNS

router = APIRouter(tags=["open data"])

MEDIA_TYPES = {".csv": "text/csv", ".json": "application/json", ".geojson": "application/geo+json"}


@router.get(
    "/open-data/{name:path}",
    summary="An open-data file: the index, or a period's KPIs, daily values and stations",
    description=(
        "What `ioc export` wrote under `IOC_OPEN_DATA_DIR`: `index.json` lists the periods and their files; "
        "each period `<from>_<to>/` has `kpis.json`, `kpis.csv` (one row per KPI value), `air-daily.csv` "
        "(daily VN_AQI per station) and `stations.geojson`. No key needed: no personal data is exported."
    ),
    response_class=FileResponse,
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {"periods": [{"period": "2026-12-01_2026-12-31", "files": []}]}
                },
                "text/csv": {"example": ",".join(DAILY_COLUMNS) + "\n"},
                "application/geo+json": {"example": {"type": "FeatureCollection", "features": []}},
            }
        },
        404: problem("No such file.", "No open-data file 'x.csv'; see /open-data/index.json."),
    },
)
async def open_data(name: str, request: Request) -> FileResponse:
    root = request.app.state.settings.open_data_path.resolve()
    try:
        path = (root / name).resolve()
    except (ValueError, OSError):  # a NUL byte, a name too long
        path = None
    if path is None or not path.is_relative_to(root) or not path.is_file() or path.suffix not in MEDIA_TYPES:
        raise HTTPException(404, f"No open-data file {name!r}; see /open-data/index.json.")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix])
