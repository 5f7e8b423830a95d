"""``GET /v1/history``: one sensor's measure over time; ``GET /v1/history/alerts`` and ``/incidents``: the
alerts and incidents of any past range. All from the PostgreSQL history store."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import Field

from ioc.api import database
from ioc.api.alerts import AlertPage, IncidentPage
from ioc.api.auth import OperatorCaller
from ioc.api.examples import EXAMPLES
from ioc.api.responses import AUTH_RESPONSES, CamelModel, problem
from ioc.api.scope import districts_for
from ioc.api.tables import csv_content, csv_response, wants_csv
from ioc.city import UNREGISTERED_PREFIX, load_city
from ioc.feeds import FEEDS, MODELS
from ioc.history.bands import measure_bands
from ioc.history.store import HistoryStore
from ioc.indices.current import Label
from ioc.models.alert import Alert, AlertStatus, Incident, IncidentStatus
from ioc.models.anomaly import Severity
from ioc.models.base import Instant
from ioc.settings import Settings
from ioc.windows import window_seconds

router = APIRouter(prefix="/v1", tags=["history"])

T = TypeVar("T")
MAX_POINTS = 10_000  # per answer: a longer span needs a coarser step


class Point(CamelModel):
    start: datetime = Field(description="Start of the window (or of the step).")
    mean: float = Field(description="Mean of the measure over it (weighted by readings over a step).")
    readings: int = Field(description="Readings it counts.")


class Band(CamelModel):
    lower: float = Field(description="Lowest value of the band, in the measure's unit.")
    upper: float | None = Field(description="Its upper end; null: none.")
    key: str
    label: Label = Field(description="The band's name, in Vietnamese and English.")
    colour: str = Field(description="#rrggbb, as the standard gives it.")


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
    standard: str | None = Field(None, description="The standard whose bands `bands` are, if any.")
    bands: list[Band] = Field(
        default_factory=list,
        description="The standard's bands of the measure (VN_AQI breakpoints of an air pollutant, levels of "
        "service of a detector's speed, QCVN 08 classes of a water parameter, the occupancy bands of a crowd "
        "zone's people from its safe capacity), lowest first: a chart's background.",
    )


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
    "standard": "VN_AQI QĐ 1459/QĐ-TCMT",
    "bands": [
        {"lower": 0, "upper": 25, "key": "tot", "label": {"vi": "Tốt", "en": "Good"}, "colour": "#00e400"},
        {"lower": 25, "upper": 50, "key": "trung_binh", "label": {"vi": "Trung bình", "en": "Moderate"},
         "colour": "#ffff00"},
    ],
}  # fmt: skip


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
    caller: OperatorCaller,
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
    districts_for(caller, [area] if area else None)  # a scoped key: 403 for an area outside its districts
    if sensor is not None and not caller.sees(s.district if (s := city.sensor(sensor)) else None):
        raise HTTPException(404, f"No sensor {sensor!r} in the key's districts.")  # as if unknown
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

    query = {"window": window, "measure": measure, "start": start, "end": end, "step": step_length}

    def read(store: HistoryStore) -> list[tuple[datetime, float, int]]:
        if area is None:
            return store.series(feed=kind, sensor_id=sensor_ids[0], **query)  # type: ignore[arg-type]
        return store.area_series(feed=kind, sensor_ids=sensor_ids, **query)  # type: ignore[arg-type]

    rows = await read_store(request, read)
    standard, bands = measure_bands(kind, measure, city.sensor(sensor) if sensor else None)  # type: ignore[arg-type]
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
        standard=standard,
        bands=[Band(**vars(band)) for band in bands],
    )


# --- alerts and incidents over any past range ---------------------------------------------------------

PAST_DAYS = 30  # the default span of the past lists: `to` − 30 days
Limit = Annotated[int, Query(ge=1, le=500, description="Most items in the page.")]
Cursor = Annotated[str | None, Query(description="nextCursor of the previous page.")]
From = Annotated[
    Instant | None,
    Query(alias="from", description=f"First event at or after this; default `to` − {PAST_DAYS} days."),
]
To = Annotated[Instant | None, Query(alias="to", description="First event before this; default now.")]
Area = Annotated[list[str] | None, Query(description="Area (district) id, e.g. dong-da; repeat for several.")]
ALERT_COLUMNS = [
    "id", "rule", "feed", "area", "entity", "severity", "status", "episode_start", "acknowledged_at",
    "resolved_at", "resolved_by", "title_vi", "title_en",
]  # fmt: skip
INCIDENT_COLUMNS = [
    "id", "area", "status", "severity", "started_at", "last_seen", "feeds", "members", "title_vi", "title_en",
]  # fmt: skip
PAST_PAGING = (
    "**Paging.** Newest first by first event. `limit` items at most (default 50, at most 500); when "
    "`nextCursor` is not null, pass it as `cursor` for the next page with the same filters. CSV (one row "
    "per item, the page's items) with `Accept: text/csv`; the cursor of the next page is then in the "
    "`Link` header (`rel=next`). Needs the operator or admin role."
)


def page_token(at: datetime, item_id: str) -> str:
    """The opaque cursor of a page that ended at (``at``, ``item_id``)."""
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{item_id}".encode()).decode().rstrip("=")


def page_position(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        at, _, item_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition("|")
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise HTTPException(400, "the cursor is not one this API gave") from None
    if moment.utcoffset() is None or not item_id:
        raise HTTPException(400, "the cursor is not one this API gave")
    return moment, item_id


def past_span(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = end or datetime.now(UTC)
    try:
        start = start or end - timedelta(days=PAST_DAYS)
    except OverflowError:
        raise HTTPException(422, "`to` is too early to go back from.") from None
    if start >= end:
        raise HTTPException(422, "`from` must be before `to`.")
    return start, end


async def read_store(request: Request, query: Callable[[HistoryStore], T]) -> T:
    """``query`` on a connection of the API's pool (``ioc.api.database``), off the event loop; 503 when
    the store does not answer."""
    return await database.read_store(request, lambda connection: query(HistoryStore(connection)))


def _page(
    request: Request,
    rows: list[tuple[datetime, str, dict]],
    limit: int,
    columns: list[str],
    csv_row,
    name: str,
) -> tuple[list[dict], str | None, Response | None]:
    """The items, the next cursor, and the CSV answer when CSV was asked for."""
    items = [item for _, _, item in rows]
    next_cursor = page_token(rows[-1][0], rows[-1][1]) if len(rows) == limit else None
    if not wants_csv(request):
        return items, next_cursor, None
    answer = csv_response(columns, (csv_row(item) for item in items), f"{name}.csv")
    if next_cursor:
        answer.headers["Link"] = f'<{request.url.include_query_params(cursor=next_cursor)}>; rel="next"'
    return items, next_cursor, answer


@router.get(
    "/history/alerts",
    response_model=AlertPage,
    response_model_by_alias=True,
    summary="Alerts over any past range, resolved ones included",
    description=(
        "The alerts whose first event is in `[from, to)`, from the history store (every alert event "
        "`ioc history` wrote), each as its latest event tells it: lifecycle, evidence, bilingual title and "
        "text. The live picture's `GET /v1/alerts` keeps what Redis holds; this one goes back as far as "
        "the store. Filters combine with AND; a repeated filter means any of its values.\n\n" + PAST_PAGING
    ),
    responses={
        200: {
            "content": {
                "application/json": {"example": {"items": [EXAMPLES["alert"]], "nextCursor": None}},
                **csv_content(",".join(ALERT_COLUMNS) + "\n"),
            }
        },
        400: problem("The cursor is not one this API gave.", "the cursor is not one this API gave"),
        422: problem("An impossible range.", "`from` must be before `to`."),
        503: problem("The history store does not answer.", "The history store is not reachable."),
        **AUTH_RESPONSES,
    },
)
async def past_alerts(
    request: Request,
    caller: OperatorCaller,
    start: From = None,
    end: To = None,
    state: Annotated[list[AlertStatus] | None, Query(description="open, acknowledged, resolved.")] = None,
    area: Area = None,
    severity: Annotated[list[Severity] | None, Query(description="info, warning, critical.")] = None,
    feed: Annotated[list[str] | None, Query(description=", ".join(FEEDS) + ".")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> AlertPage:
    area = list(districts_for(caller, area)) or None  # a scoped key: its districts only
    start, end = past_span(start, end)
    after = page_position(cursor)
    rows = await read_store(
        request,
        lambda store: store.alerts_opened(
            start=start, end=end, states=[str(s) for s in state or ()], areas=area,
            severities=[str(s) for s in severity or ()], feeds=feed, after=after, limit=limit,
        ),
    )  # fmt: skip
    items, next_cursor, table = _page(request, rows, limit, ALERT_COLUMNS, _alert_row, "alerts")
    if table is not None:
        return table  # type: ignore[return-value]
    return AlertPage(items=[Alert.model_validate(item) for item in items], next_cursor=next_cursor)


@router.get(
    "/history/incidents",
    response_model=IncidentPage,
    response_model_by_alias=True,
    summary="Incidents over any past range, resolved ones included",
    description=(
        "The incidents whose first event is in `[from, to)`, from the history store, each as its latest "
        "event tells it (members, highest severity, bilingual title and text); merged or dissolved ones "
        "are not listed.\n\n" + PAST_PAGING
    ),
    responses={
        200: {
            "content": {
                "application/json": {"example": {"items": [EXAMPLES["incident"]], "nextCursor": None}},
                **csv_content(",".join(INCIDENT_COLUMNS) + "\n"),
            }
        },
        400: problem("The cursor is not one this API gave.", "the cursor is not one this API gave"),
        422: problem("An impossible range.", "`from` must be before `to`."),
        503: problem("The history store does not answer.", "The history store is not reachable."),
        **AUTH_RESPONSES,
    },
)
async def past_incidents(
    request: Request,
    caller: OperatorCaller,
    start: From = None,
    end: To = None,
    state: Annotated[list[IncidentStatus] | None, Query(description="open, resolved.")] = None,
    area: Area = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> IncidentPage:
    area = list(districts_for(caller, area)) or None  # a scoped key: its districts only
    start, end = past_span(start, end)
    after = page_position(cursor)
    rows = await read_store(
        request,
        lambda store: store.incidents_started(
            start=start, end=end, states=[str(s) for s in state or ()], areas=area, after=after, limit=limit
        ),
    )
    items, next_cursor, table = _page(request, rows, limit, INCIDENT_COLUMNS, _incident_row, "incidents")
    if table is not None:
        return table  # type: ignore[return-value]
    return IncidentPage(items=[Incident.model_validate(item) for item in items], next_cursor=next_cursor)


def _alert_row(alert: dict) -> list[object]:
    return [
        alert["id"], alert["rule"], alert["feed"], alert["district"], alert["entity"], alert["severity"],
        alert["status"], alert["episodeStart"], alert.get("acknowledgedAt"), alert.get("resolvedAt"),
        alert.get("resolvedBy"), alert["title"]["vi"], alert["title"]["en"],
    ]  # fmt: skip


def _incident_row(incident: dict) -> list[object]:
    return [
        incident["id"], incident["district"], incident["status"], incident["severity"],
        incident["startedAt"], incident["lastSeen"], " ".join(incident["feeds"]),
        " ".join(m["alertId"] for m in incident["members"]), incident["title"]["vi"], incident["title"]["en"],
    ]  # fmt: skip
