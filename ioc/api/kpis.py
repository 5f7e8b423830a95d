"""``GET /v1/kpis``: the city's air KPIs and the centre's own (MTTA, MTTR) over local days, per area and
for the city, from the history store (``ioc.kpis``)."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

import psycopg
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import Field

from ioc.api.auth import Operator
from ioc.api.responses import AUTH_RESPONSES, CamelModel, problem
from ioc.api.tables import csv_content, csv_response, wants_csv
from ioc.city import City, load_city
from ioc.kpis import air, ops
from ioc.kpis.store import lifecycles, local_span, station_days
from ioc.settings import Settings

router = APIRouter(prefix="/v1", tags=["kpis"])

MAX_DAYS = 366
# One row per KPI value, as kpis.md asks every value to carry: id, scope, period, value, unit,
# completeness, the stations behind it and the standard.
CSV_COLUMNS = ["kpi", "scope", "from", "to", "value", "unit", "completeness", "stations", "standard"]


class Spread(CamelModel):
    median: float
    p90: float


class AirScope(CamelModel):
    scope: str = Field(description="`city`, an area (district) id, or a station id.")
    stations: int
    days_expected: int = Field(description="Station-days in the period.")
    days_valid: int = Field(description="Station-days with 18 of 24 hourly means.")
    completeness: float
    band_days: dict[str, int] = Field(description="VN_AQI band → valid station-days in it.")
    exceedance_days: dict[str, int] = Field(
        description="Pollutant → station-days above QCVN 05's 24-hour limit."
    )
    pm25_mean: float | None = Field(description="Mean of daily means, µg/m³; null below 75 % of days.")
    pm10_mean: float | None


class StationDayValue(CamelModel):
    station: str
    area: str
    day: date
    valid: bool
    completeness: float
    daily_aqi: int | None
    band: str | None
    exceeded: list[str]


class OpsScope(CamelModel):
    severity: str
    feed: str
    alerts: int
    acknowledged: int
    resolved: int
    resolved_by_operator: int
    mtta_minutes: Spread | None
    mttr_minutes: Spread | None
    acknowledged_within_15_min: float | None


class Kpis(CamelModel):
    first_day: date
    last_day: date
    timezone: str
    standard: str
    air: list[AirScope] = Field(
        description="The city first, then each area with stations, then each station."
    )
    air_days: list[StationDayValue] = Field(description="Each station's daily VN_AQI: the open-data table.")
    operations: list[OpsScope] = Field(description="Alerts opened in the period, per severity and feed.")


@router.get(
    "/kpis",
    response_model=Kpis,
    response_model_by_alias=True,
    summary="The KPI set over local days: air quality, and how fast alerts were handled",
    description=(
        "From the history store (written by `ioc history`), computed when asked, so late data counts: "
        "daily VN_AQI per station, days per VN_AQI band, days above QCVN 05:2023's 24-hour limits, mean "
        "PM2.5 and PM10, each with its completeness, for the city (from station-days, never from area "
        "means), each area and each station; and the alerts opened in the period per severity and feed "
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
        start, end = local_span(first, last, ZoneInfo(city.timezone))
    except OverflowError:
        raise HTTPException(422, "`from` or `to` is beyond the calendar.") from None

    def read() -> tuple[list[air.StationDay], list[ops.Lifecycle]]:
        url = settings.database_address
        return station_days(url, city, first, last), lifecycles(url, start, end)

    try:
        days, alerts = await asyncio.to_thread(read)
    except psycopg.errors.UndefinedTable:
        raise HTTPException(503, "The history store has no schema yet: run `ioc db upgrade`.") from None
    except psycopg.OperationalError:
        raise HTTPException(503, "The history store is not reachable.") from None

    values = [air.day_values(day) for day in days]
    answer = _answer(first, last, period_days, city, values, alerts)
    if wants_csv(request):
        return csv_response(CSV_COLUMNS, csv_rows(answer), f"kpis-{first}-{last}.csv")  # type: ignore[return-value]
    return answer


def _answer(
    first: date,
    last: date,
    period_days: int,
    city: City,
    values: list[air.DayValues],
    alerts: list[ops.Lifecycle],
) -> Kpis:
    stations = [s for s in city.sensors if s.kind == "air"]
    scopes = [air.period_kpis("city", values, len(stations), period_days)]
    for district in sorted({s.district for s in stations}):
        mine = [v for v in values if v.area == district]
        count = sum(s.district == district for s in stations)
        scopes.append(air.period_kpis(district, mine, count, period_days))
    for station in sorted(s.id for s in stations):
        scopes.append(air.period_kpis(station, [v for v in values if v.station == station], 1, period_days))
    return Kpis(
        first_day=first,
        last_day=last,
        timezone=city.timezone,
        standard=air.STANDARD,
        air=[AirScope(**vars(k), completeness=k.completeness) for k in scopes],
        air_days=[
            StationDayValue(
                station=v.station,
                area=v.area,
                day=v.day,
                valid=v.valid,
                completeness=v.completeness,
                daily_aqi=v.aqi,
                band=v.band,
                exceeded=list(v.exceeded),
            )
            for v in values
        ],
        operations=[
            OpsScope(
                **{
                    **vars(k),
                    "mtta_minutes": vars(k.mtta_minutes) if k.mtta_minutes else None,
                    "mttr_minutes": vars(k.mttr_minutes) if k.mttr_minutes else None,
                }
            )
            for k in ops.ops_kpis(alerts)
        ],
    )


def csv_rows(answer: Kpis) -> list[list[object]]:
    period = [answer.first_day.isoformat(), answer.last_day.isoformat()]
    rows: list[list[object]] = []
    for k in answer.air:
        common = [round(k.completeness, 3), k.stations, answer.standard]
        for band, days in k.band_days.items():
            rows.append([f"air.band_days.{band}", k.scope, *period, days, "days", *common])
        for pollutant, days in sorted(k.exceedance_days.items()):
            rows.append([f"air.exceedance_days.{pollutant}", k.scope, *period, days, "days", *common])
        rows.append(["air.pm25_mean", k.scope, *period, k.pm25_mean, "µg/m³", *common])
        rows.append(["air.pm10_mean", k.scope, *period, k.pm10_mean, "µg/m³", *common])
    for d in answer.air_days:
        day = [d.day.isoformat(), d.day.isoformat()]
        rows.append(
            [
                "air.daily_aqi",
                d.station,
                *day,
                d.daily_aqi,
                "index",
                round(d.completeness, 3),
                1,
                answer.standard,
            ]
        )
    for o in answer.operations:
        scope = f"{o.severity}:{o.feed}"
        for kpi, value in (
            ("ops.alerts", o.alerts),
            ("ops.mtta_median", o.mtta_minutes.median if o.mtta_minutes else None),
            ("ops.mtta_p90", o.mtta_minutes.p90 if o.mtta_minutes else None),
            ("ops.mttr_median", o.mttr_minutes.median if o.mttr_minutes else None),
            ("ops.mttr_p90", o.mttr_minutes.p90 if o.mttr_minutes else None),
            ("ops.acknowledged_within_15_min", o.acknowledged_within_15_min),
        ):
            unit = "count" if kpi == "ops.alerts" else "share" if kpi.endswith("15_min") else "min"
            rows.append([kpi, scope, *period, value, unit, None, None, None])
    return rows
