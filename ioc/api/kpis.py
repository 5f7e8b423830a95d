"""``GET /v1/kpis``: the city's air KPIs and the centre's own (MTTA, MTTR) over local days, per area and
for the city, from the history store (``ioc.kpis``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request, Response

from ioc.api.auth import Operator
from ioc.api.database import read_store
from ioc.api.responses import AUTH_RESPONSES, problem
from ioc.api.tables import csv_content, csv_response, wants_csv
from ioc.city import load_city
from ioc.kpis.report import CSV_COLUMNS, MAX_DAYS, Kpis, csv_rows, read_report
from ioc.kpis.store import local_span
from ioc.settings import Settings

router = APIRouter(prefix="/v1", tags=["kpis"])


@router.get(
    "/kpis",
    response_model=Kpis,
    response_model_by_alias=True,
    summary="The KPI set over local days: air, traffic, water, transit and crowds, and how fast alerts were "
    "handled",
    description=(
        "From the history store (written by `ioc history`): closed days as kept, computed again when late "
        "data came, today computed when asked: "
        "daily VN_AQI per station, days per VN_AQI band, days above QCVN 05:2023's 24-hour limits, mean "
        "PM2.5 and PM10, each with its completeness, for the city (from station-days, never from area "
        "means), each area and each station; traffic's Travel Time Index at the weekday peaks and congested "
        "detector-hours; water's VN_WQI class shares, QCVN 08 compliance and low-oxygen hours; crowds' daily "
        "visitors per zone (its peak of people at once: the counters report people present, not entries) and "
        "the zone-hours at or over 80 % of the safe capacity; and the alerts opened in the period per "
        "severity and feed "
        f"with MTTA and MTTR (median, 90th percentile). Days are the city's local days; at most {MAX_DAYS}. "
        "One row per KPI value in CSV (`kpi,scope,from,to,value,unit,completeness,stations,standard`) with "
        "`Accept: text/csv`. Needs the operator or admin role."
    ),
    responses={
        200: {
            "content": csv_content(
                ",".join(CSV_COLUMNS)
                + "\nair.pm25_mean,city,2026-12-01,2026-12-31,41.3,µg/m³,0.91,12,VN_AQI …\n"
            )
        },
        422: problem("An impossible period.", "`from` must not be after `to`."),
        503: problem("The history store does not answer.", "The history store is not reachable."),
        **AUTH_RESPONSES,
    },
)
async def kpis(
    request: Request,
    _: Operator,
    first: Annotated[date, Query(alias="from", description="First local day, e.g. 2026-12-01.")],
    last: Annotated[date, Query(alias="to", description="Last local day, included.")],
) -> Kpis:
    settings: Settings = request.app.state.settings
    city = load_city(settings.city)
    if first > last:
        raise HTTPException(422, "`from` must not be after `to`.")
    period_days = (last - first).days + 1
    if period_days > MAX_DAYS:
        raise HTTPException(422, f"At most {MAX_DAYS} days.")
    try:
        local_span(first, last, ZoneInfo(city.timezone))
    except OverflowError:
        raise HTTPException(422, "`from` or `to` is beyond the calendar.") from None

    answer = await read_store(
        request,
        lambda connection: read_report(connection, city, first, last, settings.reading_interval_seconds),
    )

    if wants_csv(request):
        return csv_response(CSV_COLUMNS, csv_rows(answer), f"kpis-{first}-{last}.csv")  # type: ignore[return-value]
    # Already a Kpis: serialized once, not dumped, validated again and dumped by the response model (the
    # same bytes; a month's answer is half a megabyte).
    return Response(answer.model_dump_json(by_alias=True), media_type="application/json")  # type: ignore[return-value]
