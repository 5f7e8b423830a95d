"""``GET /v1/history``: one sensor's measure over time, from the PostgreSQL history store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

import psycopg
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import Field

from ioc.api.auth import Operator
from ioc.api.responses import AUTH_RESPONSES, CamelModel, problem
from ioc.api.tables import csv_content, csv_response, wants_csv
from ioc.city import UNREGISTERED_PREFIX, load_city
from ioc.history.store import HistoryStore
from ioc.models import MODELS
from ioc.models.base import Instant
from ioc.settings import Settings
from ioc.windows import window_seconds

router = APIRouter(prefix="/v1", tags=["history"])

MAX_POINTS = 10_000  # per answer: a longer span needs a coarser step


class Point(CamelModel):
    start: datetime = Field(description="Start of the window (or of the step).")
    mean: float = Field(description="Mean of the measure over it (weighted by readings over a step).")
    readings: int = Field(description="Readings it counts.")


class History(CamelModel):
    sensor_id: str | None = Field(description="The sensor, when one was asked for.")
    area: str | None = Field(description="The area (district), when one was asked for.")
    sensors: int = Field(description="Sensors the series is over: 1, or the area's of the feed.")
    feed: str
    measure: str
    unit: str
    window: str = Field(description="The windows read: 1m, 15m, 1h …")
    step: str | None = Field(description="The step the windows were averaged over, if one was asked for.")
    start: datetime
    end: datetime
    points: list[Point]


HISTORY_EXAMPLE = {
    "sensorId": "air-hoan-kiem",
    "area": None,
    "sensors": 1,
    "feed": "air",
    "measure": "pm25",
    "unit": "µg/m³",
    "window": "1h",
    "step": None,
    "start": "2026-12-03T00:00:00Z",
    "end": "2026-12-03T03:00:00Z",
    "points": [
        {"start": "2026-12-03T00:00:00Z", "mean": 61.2, "readings": 60},
        {"start": "2026-12-03T01:00:00Z", "mean": 58.9, "readings": 60},
        {"start": "2026-12-03T02:00:00Z", "mean": 64.0, "readings": 59},
    ],
}


@router.get(
    "/history",
    response_model=History,
    response_model_by_alias=True,
    summary="One sensor's measure over time, or an area's",
    description=(
        "The sensor's windows of one length from the history store (PostgreSQL, written by `ioc history`), "
        "in `[from, to)`, oldest first: each window's mean of `measure` and the readings it counts. With "
        f"`step` (a length such as `1d`), the windows are averaged over each step from `from`, weighted by "
        f"readings. At most {MAX_POINTS:,} points. CSV (`start,mean,readings`) with `Accept: text/csv`. "
        "With `area` and `feed` instead of `sensor`: the area's sensors of that feed together, each point "
        "the mean of their windows weighted by readings. Needs the operator or admin role."
    ),
    responses={
        200: {
            "content": {
                "application/json": {"example": HISTORY_EXAMPLE},
                **csv_content("start,mean,readings\n2026-12-03T00:00:00+00:00,61.2,60\n"),
            }
        },
        404: problem("No such sensor.", "No sensor 'air-nowhere' in the city registry."),
        422: problem("A parameter the sensor's feed does not have.", "Measure 'speed' is not one of pm25, …"),
        503: problem("The history store does not answer.", "The history store is not reachable."),
        **AUTH_RESPONSES,
    },
)
async def history(
    request: Request,
    _: Operator,
    measure: Annotated[str, Query(description="A measure of the sensor's feed, e.g. `pm25`, `speed`.")],
    sensor: Annotated[
        str | None, Query(description="A sensor id of the registry, or `unregistered:<id>`.")
    ] = None,
    start: Annotated[
        Instant | None, Query(alias="from", description="Start, with its offset; default `to` − 24 h.")
    ] = None,
    end: Annotated[Instant | None, Query(alias="to", description="End (excluded); default now.")] = None,
    window: Annotated[
        str | None, Query(description="Window length to read; default the longest kept.")
    ] = None,
    step: Annotated[str | None, Query(description="Average the windows over this length, e.g. `1d`.")] = None,
    feed: Annotated[
        str | None, Query(description="The feed: needed with `area`, and for an `unregistered:` sensor.")
    ] = None,
    area: Annotated[
        str | None, Query(description="An area (district) id instead of a sensor: its sensors of `feed`.")
    ] = None,
) -> History:
    settings: Settings = request.app.state.settings
    city = load_city(settings.city)
    if (sensor is None) == (area is None):
        raise HTTPException(422, "Give one of `sensor` and `area` (with `feed`).")
    if area is not None:
        if city.district(area) is None:
            raise HTTPException(404, f"No area {area!r} in the city registry.")
        if feed is None:
            raise HTTPException(422, "Give the `feed` of the area's sensors.")
        kind: str | None = feed
        sensor_ids = [s.id for s in city.sensors if s.district == area and s.kind == feed]
    else:
        registered = city.sensor(sensor)  # type: ignore[arg-type]
        kind = registered.kind if registered is not None else feed
        sensor_ids = [sensor]  # type: ignore[list-item]
        if kind is None:
            if sensor.startswith(UNREGISTERED_PREFIX):  # type: ignore[union-attr]
                raise HTTPException(422, f"Give the feed of {sensor!r} (`feed=`): it is not in the registry.")
            raise HTTPException(404, f"No sensor {sensor!r} in the city registry.")
    if kind not in MODELS:
        raise HTTPException(422, f"Feed {kind!r} is not one of {', '.join(MODELS)}.")
    units = {m.field: m.unit for m in MODELS[kind].measures}
    if measure not in units:
        raise HTTPException(422, f"Measure {measure!r} is not one of {', '.join(units)}.")
    labels = [spec.label for spec in settings.windows_of(kind)]
    window = window or labels[-1]
    if window not in labels:
        raise HTTPException(422, f"Window {window!r} is not one of {', '.join(labels)}.")
    end = end or datetime.now(UTC)
    try:
        start = start or end - timedelta(hours=24)
        step_length = timedelta(seconds=window_seconds(step)) if step else None
    except ValueError as error:
        raise HTTPException(422, f"step: {error}") from None
    except OverflowError:
        raise HTTPException(422, "`from`, `to` or `step` is beyond the calendar.") from None
    if start >= end:
        raise HTTPException(422, "`from` must be before `to`.")
    points_at_most = (end - start) / (step_length or timedelta(seconds=window_seconds(window)))
    if points_at_most > MAX_POINTS:
        raise HTTPException(422, f"At most {MAX_POINTS:,} points: shorten the span or give a longer `step`.")

    def read() -> list[tuple[datetime, float, int]]:
        store = HistoryStore(settings.database_address)
        query = {"window": window, "measure": measure, "start": start, "end": end, "step": step_length}
        try:
            if area is None:
                return store.series(feed=kind, sensor_id=sensor_ids[0], **query)  # type: ignore[arg-type]
            return store.area_series(feed=kind, sensor_ids=sensor_ids, **query)  # type: ignore[arg-type]
        finally:
            store.close()

    try:
        rows = await asyncio.to_thread(read)
    except psycopg.errors.UndefinedTable:
        raise HTTPException(503, "The history store has no schema yet: run `ioc db upgrade`.") from None
    except psycopg.OperationalError:
        raise HTTPException(503, "The history store is not reachable.") from None
    if wants_csv(request):
        return csv_response(  # type: ignore[return-value]
            ["start", "mean", "readings"],
            ((at.isoformat(), mean, readings) for at, mean, readings in rows),
            f"{sensor or area}-{measure}-{window}.csv",
        )
    return History(
        sensor_id=sensor,
        area=area,
        sensors=len(sensor_ids),
        feed=kind,
        measure=measure,
        unit=units[measure],
        window=window,
        step=step,
        start=start,
        end=end,
        points=[Point(start=at, mean=mean, readings=readings) for at, mean, readings in rows],
    )
