"""``GET /v1/kpis``: the city's air KPIs and the centre's own (MTTA, MTTR) over local days, per area and
for the city, from the history store (``ioc.kpis``); a district-scoped key's cut down to its districts
(``ioc.kpis.scope``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request, Response

from ioc.api.auth import OperatorCaller
from ioc.api.database import read_store
from ioc.api.responses import AUTH_RESPONSES, problem
from ioc.api.tables import csv_content, csv_response, wants_csv
from ioc.city import load_city
from ioc.kpis.report import (
    CSV_COLUMNS,
    MAX_DAYS,
    PERIOD_CSV_COLUMNS,
    KpiPeriods,
    Kpis,
    Period,
    csv_rows,
    period_csv_rows,
    period_spans,
    read_periods,
    read_report,
)
from ioc.kpis.scope import DistrictKpiPeriods, DistrictKpis, for_districts, periods_for_districts
from ioc.kpis.store import local_span
from ioc.settings import Settings

router = APIRouter(prefix="/v1", tags=["kpis"])

# One of each kind of scope, shortened: a month's answer lists every area, station, detector, zone and day.
KPIS_EXAMPLE = {
    "firstDay": "2026-12-01",
    "lastDay": "2026-12-31",
    "timezone": "Asia/Ho_Chi_Minh",
    "standard": "VN_AQI QĐ 1459/QĐ-TCMT; QCVN 05:2023/BTNMT",
    "air": [
        {"scope": "city", "stations": 12, "daysExpected": 372, "daysValid": 351, "completeness": 0.944,
         "bandDays": {"tot": 12, "trung_binh": 140, "kem": 151, "xau": 44, "rat_xau": 4, "nguy_hai": 0},
         "exceedanceDays": {"pm25": 96, "pm10": 3}, "pm25Mean": 41.3, "pm10Mean": 66.0},
    ],
    "airDays": [
        {"station": "air-hoan-kiem", "area": "hoan-kiem", "day": "2026-12-01", "valid": True,
         "completeness": 1.0, "dailyAqi": 132, "band": "kem", "exceeded": ["pm25"], "dailyUsAqi": 152,
         "usBand": "unhealthy"},
    ],
    "traffic": [
        {"scope": "city", "detectors": 24, "peakIntervals": 15840, "ttiPeak": 1.62, "congestedHours": 412,
         "completeness": 0.97},
    ],
    "water": [
        {"scope": "city", "stations": 6, "samples": 17856, "withWqi": 17790,
         "wqiClassShare": {"rat_tot": 0.05, "tot": 0.31, "trung_binh": 0.42, "xau": 0.2, "kem": 0.02},
         "judged": 17800, "compliance": 0.64, "lowDoHours": 37, "completeness": 0.99},
    ],
    "operations": [
        {"severity": "critical", "feed": "air", "alerts": 9, "acknowledged": 9, "resolved": 8,
         "resolvedByOperator": 3, "mttaMinutes": {"median": 4.5, "p90": 12.0},
         "mttrMinutes": {"median": 95.0, "p90": 240.0}, "acknowledgedWithin15Min": 0.889},
    ],
    "dataCompleteness": [
        {"feed": "air", "scope": "city", "sensors": 12, "received": 521000, "expected": 535680,
         "completeness": 0.973, "daily": {"2026-12-01": 0.981}},
    ],
    "transit": {
        "k": 10,
        "scopes": [
            {"scope": "metro-2a-cat-linh", "kind": "station", "stations": 1, "boardings": 40300,
             "dailyBoardings": {"2026-12-01": 1300}, "peak15Min": 96, "completeness": 0.998},
        ],
        "odFlows": [
            {"day": "2026-12-01", "trips": 15600, "suppressedTrips": 41, "suppressedCells": 6,
             "unmatchedEntries": 12, "unmatchedExits": 9,
             "cells": [{"origin": "metro-2a-cat-linh", "destination": "metro-2a-lang", "trips": 118}]},
        ],
    },
    "crowd": [
        {"scope": "city", "zones": 5, "visitors": 310000, "dailyVisitors": {"2026-12-01": 10000},
         "peakShare": 86.0, "hoursOver80": 7.5, "dailyHoursOver80": {"2026-12-01": 0.5},
         "completeness": 0.99},
    ],
}  # fmt: skip

# ?period=month: each period the days touch, each a whole report of its days with what says how far it is.
KPI_PERIODS_EXAMPLE = {
    "period": "month",
    "firstDay": "2026-12-01",
    "lastDay": "2026-12-31",
    "timezone": "Asia/Ho_Chi_Minh",
    "standard": "VN_AQI QĐ 1459/QĐ-TCMT; QCVN 05:2023/BTNMT",
    "periods": [
        {**KPIS_EXAMPLE, "period": "2026-12", "partial": False, "days": 31, "daysElapsed": 31,
         "completeness": 0.973, "kpiVersion": 3},
    ],
}  # fmt: skip


@router.get(
    "/kpis",
    response_model=Kpis | KpiPeriods | DistrictKpis | DistrictKpiPeriods,
    response_model_by_alias=True,
    summary="The KPI set over local days, weeks, months or years: air, traffic, water, transit and crowds, "
    "and how fast alerts were handled",
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
        "`Accept: text/csv`. Needs the operator or admin role.\n\n"
        "**District-scoped keys** (`operator@hoan-kiem+dong-da`) get their districts' rows only, in JSON "
        "and CSV: each district's area row and the rows of the stations, detectors, sensors and zones the "
        "registry places in them, their station-days, a transit line only when all its stations are in "
        "them; MTTA and MTTR from their districts' alerts; a period's `completeness` is theirs. No `city` "
        "row and no metro origin–destination flows (their daily totals are the whole network's); "
        "`districts` and `withheld` say so.\n\n"
        "**Periods.** `period=day` (the default) answers the days `[from, to]` as one report (its "
        "station-day values per day). `period=week|month|year` widens them to the whole ISO weeks (Monday "
        "to Sunday), "
        "calendar months or years they touch, in the city's time zone, and answers one report per period "
        "(`periods`), each exactly what `period=day` gives over that period's days: band and exceedance days "
        "are counts of valid station-days; PM means are means of the valid daily means, null unless 75 % of "
        "the period's station-days are valid; the TTI is flow-weighted over the period's peak intervals and "
        "congested hours a sum; WQI class shares and compliance are recomputed from the period's samples; "
        "MTTA and MTTR are the median and 90th percentile of the alerts opened in the period; boardings and "
        "hours are sums. Each period says `partial` (still under way: its figures and completeness are of "
        "its days until now), `days`, `daysElapsed`, the city's data `completeness`, the `standard` and the "
        "`kpiVersion`. CSV: the same rows per period, with `period` and `partial` columns."
    ),
    responses={
        200: {
            "content": {
                "application/json": {
                    "examples": {
                        "days": {"summary": "period=day: the days as one report", "value": KPIS_EXAMPLE},
                        "month": {"summary": "period=month", "value": KPI_PERIODS_EXAMPLE},
                    }
                },
                **csv_content(
                    ",".join(CSV_COLUMNS)
                    + "\nair.pm25_mean,city,2026-12-01,2026-12-31,41.3,µg/m³,0.91,12,VN_AQI …\n"
                ),
            }
        },
        422: problem("An impossible period.", "`from` must not be after `to`."),
        503: problem("The history store does not answer.", "The history store is not reachable."),
        **AUTH_RESPONSES,
    },
)
async def kpis(
    request: Request,
    caller: OperatorCaller,
    first: Annotated[date, Query(alias="from", description="First local day, e.g. 2026-12-01.")],
    last: Annotated[date, Query(alias="to", description="Last local day, included.")],
    period: Annotated[
        Period,
        Query(description="day: the days as one report; week (ISO), month or year: one report per period."),
    ] = "day",
) -> Kpis | KpiPeriods:
    # A scoped key: its districts' rows only, MTTA/MTTR from their alerts (least privilege, ioc.kpis.scope).
    districts = caller.districts
    settings: Settings = request.app.state.settings
    city = load_city(settings.city)
    if first > last:
        raise HTTPException(422, "`from` must not be after `to`.")
    period_days = (last - first).days + 1
    if period_days > MAX_DAYS:
        raise HTTPException(422, f"At most {MAX_DAYS} days.")
    try:
        local_span(first, last, ZoneInfo(city.timezone))
        if period != "day":
            spans = period_spans(first, last, period)  # widened to whole periods
            local_span(spans[0][0], spans[-1][1], ZoneInfo(city.timezone))
    except (OverflowError, ValueError):
        raise HTTPException(422, "`from` or `to` is beyond the calendar.") from None

    if period != "day":
        periods = await read_store(
            request,
            lambda connection: read_periods(
                connection, city, first, last, period, settings.reading_interval_seconds, districts=districts
            ),
        )
        if districts is not None:
            periods = periods_for_districts(periods, city, districts, operations_of_districts=True)
        if wants_csv(request):
            return csv_response(  # type: ignore[return-value]
                PERIOD_CSV_COLUMNS, period_csv_rows(periods), f"kpis-{period}-{first}-{last}.csv"
            )
        return Response(periods.model_dump_json(by_alias=True), media_type="application/json")  # type: ignore[return-value]

    answer = await read_store(
        request,
        lambda connection: read_report(
            connection, city, first, last, settings.reading_interval_seconds, districts=districts
        ),
    )
    if districts is not None:
        answer = for_districts(answer, city, districts, operations_of_districts=True)

    if wants_csv(request):
        return csv_response(CSV_COLUMNS, csv_rows(answer), f"kpis-{first}-{last}.csv")  # type: ignore[return-value]
    # Already a Kpis: serialized once, not dumped, validated again and dumped by the response model (the
    # same bytes; a month's answer is half a megabyte).
    return Response(answer.model_dump_json(by_alias=True), media_type="application/json")  # type: ignore[return-value]
