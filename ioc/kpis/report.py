"""The KPI report over local days: air (per scope and station-day), traffic, water, and the centre's alert
handling, as ``GET /v1/kpis`` answers it and ``ioc export`` publishes it (JSON, and one CSV row per
value). Each domain per scope: the city (from its stations' own values, never from area figures), each
area, each station or detector."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ioc.city import City
from ioc.kpis import air, ops, traffic, water
from ioc.kpis.store import lifecycles, local_span, station_days, traffic_intervals, water_samples

MAX_DAYS = 366
# One row per KPI value, as kpis.md asks every value to carry: id, scope, period, value, unit,
# completeness, the stations behind it and the standard.
CSV_COLUMNS = ["kpi", "scope", "from", "to", "value", "unit", "completeness", "stations", "standard"]


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


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


class TrafficScope(CamelModel):
    scope: str = Field(description="`city`, an area (district) id, or a detector id.")
    detectors: int
    peak_intervals: int = Field(description="5-minute intervals at the weekday peaks with a speed.")
    tti_peak: float | None = Field(
        description="Travel Time Index at the weekday peaks (07:00–09:00, 16:30–19:00): free-flow speed / "
        "observed speed, flow-weighted; null without peak data."
    )
    congested_hours: int = Field(description="Detector-hours at level of service E or F.")


class WaterScope(CamelModel):
    scope: str = Field(description="`city`, an area (district) id, or a station id.")
    stations: int
    samples: int = Field(description="15-minute windows of the stations.")
    with_wqi: int = Field(description="Samples that give a VN_WQI.")
    wqi_class_share: dict[str, float] = Field(description="VN_WQI band → share of the samples with a WQI.")
    judged: int = Field(description="Samples with a target class and at least one QCVN 08 parameter.")
    compliance: float | None = Field(description="Share of those meeting the station's QCVN 08 class.")
    low_do_hours: int = Field(description="Station-hours with dissolved oxygen below 2 mg/L.")


class Kpis(CamelModel):
    first_day: date
    last_day: date
    timezone: str
    standard: str
    air: list[AirScope] = Field(
        description="The city first, then each area with stations, then each station."
    )
    air_days: list[StationDayValue] = Field(description="Each station's daily VN_AQI: the open-data table.")
    traffic: list[TrafficScope] = Field(description="The city first, then each area, then each detector.")
    water: list[WaterScope] = Field(description="The city first, then each area, then each station.")
    operations: list[OpsScope] = Field(description="Alerts opened in the period, per severity and feed.")


def read_report(url: str, city: City, first: date, last: date) -> Kpis:
    """The report of the local days [first, last] from the history store at ``url`` (blocking)."""
    start, end = local_span(first, last, ZoneInfo(city.timezone))
    days, alerts = station_days(url, city, first, last), lifecycles(url, start, end)
    peaks, hours = (traffic_intervals(url, city, first, last, window) for window in ("5m", "1h"))
    samples, water_hours = (water_samples(url, city, first, last, window) for window in ("15m", "1h"))
    return build_report(
        first,
        last,
        city,
        [air.day_values(day) for day in days],
        alerts,
        (peaks, hours),
        (samples, water_hours),
    )


def build_report(
    first: date,
    last: date,
    city: City,
    values: list[air.DayValues],
    alerts: list[ops.Lifecycle],
    intervals: tuple[list[traffic.Interval], list[traffic.Interval]] = ([], []),
    water_windows: tuple[list[water.Sample], list[water.Sample]] = ([], []),
) -> Kpis:
    """The report of the period's station-days, alert lifecycles and traffic intervals (5-minute ones
    for the peaks, hourly ones for congestion) (pure)."""
    period_days = (last - first).days + 1
    stations = [s for s in city.sensors if s.kind == "air"]
    scopes = [air.period_kpis("city", values, len(stations), period_days)]
    for district in sorted({s.district for s in stations}):
        mine = [v for v in values if v.area == district]
        count = sum(s.district == district for s in stations)
        scopes.append(air.period_kpis(district, mine, count, period_days))
    for station in sorted(s.id for s in stations):
        scopes.append(air.period_kpis(station, [v for v in values if v.station == station], 1, period_days))
    peaks, hours = intervals
    traffic_scopes = [traffic.traffic_kpis("city", peaks, hours)]
    for scope in sorted({i.area for i in (*peaks, *hours)}) + sorted({i.detector for i in (*peaks, *hours)}):
        mine = [i for i in peaks if scope in (i.area, i.detector)]
        traffic_scopes.append(
            traffic.traffic_kpis(scope, mine, [i for i in hours if scope in (i.area, i.detector)])
        )
    samples, water_hours = water_windows
    water_scopes = [water.water_kpis("city", samples, water_hours)]
    for scope in sorted({w.area for w in (*samples, *water_hours)}) + sorted(
        {w.station for w in (*samples, *water_hours)}
    ):
        water_scopes.append(
            water.water_kpis(
                scope,
                [w for w in samples if scope in (w.area, w.station)],
                [w for w in water_hours if scope in (w.area, w.station)],
            )
        )
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
        traffic=[TrafficScope(**vars(k)) for k in traffic_scopes],
        water=[WaterScope(**vars(k)) for k in water_scopes],
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
    for t in answer.traffic:
        rows.append(["traffic.tti_peak", t.scope, *period, t.tti_peak, "ratio", None, t.detectors, None])
        rows.append(
            ["traffic.congested_hours", t.scope, *period, t.congested_hours, "h", None, t.detectors, None]
        )
    for w in answer.water:
        for band, share in w.wqi_class_share.items():
            rows.append(
                [f"water.wqi_class_share.{band}", w.scope, *period, share, "share", None, w.stations, None]
            )
        rows.append(
            ["water.compliance", w.scope, *period, w.compliance, "share", None, w.stations, "QCVN 08:2023"]
        )
        rows.append(["water.low_do_hours", w.scope, *period, w.low_do_hours, "h", None, w.stations, None])
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
