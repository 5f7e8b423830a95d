"""The KPI report over local days: air (per scope and station-day), traffic, water, transit, crowds and
the centre's alert handling, as ``GET /v1/kpis`` answers it and ``ioc export`` publishes it (JSON, and one
CSV row per value). Each domain per scope: the city (from its stations' own values, never from area
figures), each area, each station, detector or zone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ioc.city import City
from ioc.indices.transit import DEFAULT_MIN_TRIPS_PER_CELL
from ioc.kpis import air, completeness, crowd, ops, traffic, transit, water
from ioc.kpis.days import KPI_VERSION, KpiDay, kpi_days
from ioc.kpis.store import Store, connected, lifecycles, local_span, metro_trips

MAX_DAYS = 366
# One row per KPI value, as kpis.md asks every value to carry: id, scope, period, value, unit,
# completeness, the stations behind it and the standard.
CSV_COLUMNS = ["kpi", "scope", "from", "to", "value", "unit", "completeness", "stations", "standard"]
# A period's rows (``?period=week|month|year``) also say which period and whether it is still under way.
PERIOD_CSV_COLUMNS = [*CSV_COLUMNS, "period", "partial"]
PERIODS = ("day", "week", "month", "year")
Period = Literal["day", "week", "month", "year"]


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
    daily_us_aqi: int | None = Field(
        None, description="US EPA's daily AQI of the valid day, for comparison (`ioc.kpis.air.daily_us_aqi`)."
    )
    us_band: str | None = Field(None, description="Its US AQI category.")


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
    completeness: float | None = Field(description="The detectors' readings received / expected.")


class WaterScope(CamelModel):
    scope: str = Field(description="`city`, an area (district) id, or a station id.")
    stations: int
    samples: int = Field(description="15-minute windows of the stations.")
    with_wqi: int = Field(description="Samples that give a VN_WQI.")
    wqi_class_share: dict[str, float] = Field(description="VN_WQI band → share of the samples with a WQI.")
    judged: int = Field(description="Samples with a target class and at least one QCVN 08 parameter.")
    compliance: float | None = Field(description="Share of those meeting the station's QCVN 08 class.")
    low_do_hours: int = Field(description="Station-hours with dissolved oxygen below 2 mg/L.")
    completeness: float | None = Field(description="The stations' readings received / expected.")


class CompletenessScope(CamelModel):
    feed: str
    scope: str = Field(description="`city`, an area (district) id, or a sensor id.")
    sensors: int
    received: int = Field(description="Readings received, each sensor-day at most its expected count.")
    expected: int = Field(description="Readings the sensors' reporting interval expects (today: until now).")
    completeness: float | None
    daily: dict[date, float] = Field(description="Local day → completeness.")


class TransitScope(CamelModel):
    scope: str = Field(description="`city`, an area (district) id, a line id, or a station id.")
    kind: str = Field(description="city, area, line or station.")
    stations: int
    boardings: int = Field(description="Entry and boarding taps in the period.")
    daily_boardings: dict[date, int] = Field(description="Local day → entry and boarding taps.")
    peak_15min: int | None = Field(description="A station's most boardings in 15 minutes of the period.")
    completeness: float | None = Field(
        description="Share of the stations' service hours (their lines' timetables) in which they reported a "
        "tap (`transit.gate_availability`; taps have no reading interval); of today, the hours over and the "
        "one under way once it has a tap."
    )


class OdCell(CamelModel):
    origin: str
    destination: str
    trips: int = Field(description="At least k: a smaller cell is never published.")


class OdDay(CamelModel):
    day: date = Field(description="The service day (04:00 to 04:00 local).")
    trips: int = Field(description="Entries matched to an exit of the same card within the day.")
    suppressed_trips: int = Field(description="Trips of the pairs under k, left out.")
    suppressed_cells: int = Field(description="Pairs under k, left out.")
    unmatched_entries: int
    unmatched_exits: int
    cells: list[OdCell]


class Transit(CamelModel):
    k: int = Field(description="Fewest trips a published origin–destination pair has.")
    scopes: list[TransitScope] = Field(description="The city, then each area, line and station.")
    od_flows: list[OdDay] = Field(description="Metro origin–destination trips per service day.")


class CrowdScope(CamelModel):
    scope: str = Field(description="`city`, an area (district) id, or a zone id.")
    zones: int = Field(description="Zones with a count in the period.")
    visitors: int = Field(description="The daily visitors, summed over the period's days.")
    daily_visitors: dict[date, int] = Field(
        description="Local day → the most people in the zone at once (its 5-minute counts' peak), summed "
        "over the scope's zones: the counters report the people present, not entries, so this is a lower "
        "bound of the day's visitors (`ioc.kpis.crowd`)."
    )
    peak_share: float | None = Field(description="The most people at once as % of the zone's safe capacity.")
    hours_over_80: float = Field(
        description="Zone-hours at or over 80 % of the safe capacity (5-minute windows, summed over zones)."
    )
    daily_hours_over_80: dict[date, float] = Field(description="Local day → those zone-hours.")
    completeness: float | None = Field(description="The zones' 5-minute counts received / expected.")


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
    data_completeness: list[CompletenessScope] = Field(
        description="Per feed with a reporting interval: the city, each area, each sensor."
    )
    transit: Transit = Field(
        description="Boardings per city, area, line and station; metro origin–destination flows per day, "
        "pairs under k trips suppressed."
    )
    crowd: list[CrowdScope] = Field(
        description="Daily visitors and hours over 80 % of the safe capacity: the city, each area, each zone."
    )


class KpiPeriod(Kpis):
    """One week's, month's or year's report: what the days report over exactly its days gives."""

    period: str = Field(description="The period: an ISO week (`2026-W49`), a month (`2026-12`) or a year.")
    partial: bool = Field(
        description="The period is still under way (its last day is today or later): its figures are of its "
        "days until now, and its completeness is of the readings expected until now."
    )
    days: int = Field(description="Local days in the period.")
    days_elapsed: int = Field(description="Of them, those begun (until today, included).")
    completeness: float | None = Field(
        description="The city's readings received / expected over every feed with a reporting interval, of "
        "the period until now (each scope's own completeness is beside its figures); null: none expected."
    )
    kpi_version: int = Field(
        description="The version of the KPIs' definitions (`ioc.kpis.days.KPI_VERSION`)."
    )


class KpiPeriods(CamelModel):
    period: Literal["week", "month", "year"] = Field(
        description="ISO weeks (Monday to Sunday), months or years."
    )
    first_day: date = Field(description="First day of the first period (the asked `from` widened to it).")
    last_day: date = Field(description="Last day of the last period (the asked `to` widened to it).")
    timezone: str
    standard: str
    periods: list[KpiPeriod] = Field(description="Each period the asked days touch, oldest first.")


def period_start(day: date, period: Period) -> date:
    """The first day of the week (ISO: Monday), month or year ``day`` is in; ``day`` itself for ``day``."""
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "year":
        return day.replace(month=1, day=1)
    return day


def period_spans(first: date, last: date, period: Period) -> list[tuple[date, date]]:
    """The whole periods (first and last day) that the days [first, last] touch, oldest first."""
    spans = []
    start = period_start(first, period)
    while start <= last:
        if period == "week":
            after = start + timedelta(days=7)
        elif period == "month":
            after = date(start.year + start.month // 12, start.month % 12 + 1, 1)
        elif period == "year":
            after = date(start.year + 1, 1, 1)
        else:
            after = start + timedelta(days=1)
        spans.append((start, after - timedelta(days=1)))
        start = after
    return spans


def period_label(start: date, period: Period) -> str:
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{start.year}-{start.month:02d}"
    if period == "year":
        return str(start.year)
    return start.isoformat()


def read_periods(
    url: Store,
    city: City,
    first: date,
    last: date,
    period: Literal["week", "month", "year"],
    intervals: Mapping[str, int],
    now: datetime | None = None,
    kept_days: bool = True,
    districts: frozenset[str] | None = None,
) -> KpiPeriods:
    """The report of each week, month or year the local days [first, last] touch, from the history store
    (as ``read_report``; blocking): the days, alerts and metro flows of the whole periods read once, then
    each period's report built from its own (``build_periods``). ``districts``: only their alerts count
    in ``operations`` (a scoped key's answer, cut down by ``ioc.kpis.scope``)."""
    spans = period_spans(first, last, period)
    days, alerts, flows, today = _read_days(url, city, spans[0][0], spans[-1][1], intervals, now, kept_days)
    alerts = _alerts_of(alerts, districts)
    return build_periods(spans, period, city, days, alerts, flows, today)


def build_periods(
    spans: Sequence[tuple[date, date]],
    period: Literal["week", "month", "year"],
    city: City,
    days: Sequence[KpiDay],
    alerts: list[ops.Lifecycle],
    flows: Sequence[transit.DayFlows],
    today: date,
) -> KpiPeriods:
    """Each period's report from its own days, the alerts opened in it (by local day) and its days' flows
    (pure): every KPI aggregated over the period as over any range of days (``build_report``): band and
    exceedance days counted, means of valid daily means when 75 % of the station-days count, TTI
    flow-weighted over the peak intervals, hours summed, shares from the counts, MTTA and MTTR from the
    period's alerts."""
    zone = ZoneInfo(city.timezone)
    periods = []
    for first, last in spans:
        mine = [d for d in days if first <= d.day <= last]
        opened = [a for a in alerts if first <= a.opened_at.astimezone(zone).date() <= last]
        its_flows = [f for f in flows if first <= f.day <= last]
        report = build_report(first, last, city, mine, opened, its_flows, today)
        city_data = [c for c in report.data_completeness if c.scope == "city"]
        expected = sum(c.expected for c in city_data)
        periods.append(
            KpiPeriod(
                **dict(report),
                period=period_label(first, period),
                partial=last >= today,
                days=(last - first).days + 1,
                days_elapsed=max((min(last, today) - first).days + 1, 0),
                completeness=round(sum(c.received for c in city_data) / expected, 3) if expected else None,
                kpi_version=KPI_VERSION,
            )
        )
    return KpiPeriods(
        period=period,
        first_day=spans[0][0],
        last_day=spans[-1][1],
        timezone=city.timezone,
        standard=air.STANDARD,
        periods=periods,
    )


def period_csv_rows(answer: KpiPeriods) -> list[list[object]]:
    """Each period's rows as ``csv_rows`` gives them, with the period and whether it is under way."""
    return [[*row, p.period, p.partial] for p in answer.periods for row in csv_rows(p)]


def read_report(
    url: Store,
    city: City,
    first: date,
    last: date,
    intervals: Mapping[str, int],
    now: datetime | None = None,
    kept_days: bool = True,
    districts: frozenset[str] | None = None,
) -> Kpis:
    """The report of the local days [first, last] from the history store at ``url`` (a URL, or a
    connection the caller owns and commits, as the API's pool's; blocking): closed
    days as ``ioc.kpis.days`` keeps them (computed and kept when missing or stale), today computed;
    without ``kept_days`` every day computed from the rows. ``intervals``: seconds between a sensor's
    readings per feed (``IOC_READING_INTERVAL_SECONDS``). ``districts``: only their alerts count in
    ``operations`` (a scoped key's answer, cut down by ``ioc.kpis.scope``)."""
    days, alerts, flows, today = _read_days(url, city, first, last, intervals, now, kept_days)
    return build_report(first, last, city, days, _alerts_of(alerts, districts), flows, today)


def _alerts_of(alerts: list[ops.Lifecycle], districts: frozenset[str] | None) -> list[ops.Lifecycle]:
    """The alerts of ``districts`` (an alert's district is its area); all of them without."""
    return alerts if districts is None else [a for a in alerts if a.area in districts]


def _read_days(
    url: Store,
    city: City,
    first: date,
    last: date,
    intervals: Mapping[str, int],
    now: datetime | None,
    kept_days: bool,
) -> tuple[list[KpiDay], list[ops.Lifecycle], list[transit.DayFlows], date]:
    """The local days [first, last]'s KPI days, the alerts opened in them and their metro flows (after the
    k-anonymity suppression), in one connection; and today, in the city's zone."""
    now = now or datetime.now(UTC)
    zone = ZoneInfo(city.timezone)
    start, end = local_span(first, last, zone)
    today = now.astimezone(zone).date()
    with connected(url) as connection:  # one for every read
        days = kpi_days(connection, city, first, last, intervals, now, kept_days)
        alerts = lifecycles(connection, start, end)
        trips = metro_trips(connection, city, first, last, today)
    return days, alerts, [transit.suppressed(day) for day in trips], today


def build_report(
    first: date,
    last: date,
    city: City,
    days: Sequence[KpiDay],
    alerts: list[ops.Lifecycle],
    flows: Sequence[transit.DayFlows] = (),
    today: date | None = None,
) -> Kpis:
    """The report of the period's days (each station's, detector's and sensor's day values), alert
    lifecycles and metro flows (pure). Days after ``today`` are not expected yet."""
    period_days = max((min(last, today or last) - first).days + 1, 0)
    values = sorted((v for d in days for v in d.air), key=lambda v: (v.station, v.day))
    stations = [s for s in city.sensors if s.kind == "air"]
    scopes = [air.period_kpis("city", values, len(stations), period_days)]
    for district in sorted({s.district for s in stations}):
        mine = [v for v in values if v.area == district]
        count = sum(s.district == district for s in stations)
        scopes.append(air.period_kpis(district, mine, count, period_days))
    for station in sorted(s.id for s in stations):
        scopes.append(air.period_kpis(station, [v for v in values if v.station == station], 1, period_days))
    detector_days = [t for d in days for t in d.traffic]
    traffic_scopes = [traffic.period_traffic("city", detector_days)]
    for scope in sorted({t.area for t in detector_days}) + sorted({t.detector for t in detector_days}):
        traffic_scopes.append(
            traffic.period_traffic(scope, [t for t in detector_days if scope in (t.area, t.detector)])
        )
    water_days = [w for d in days for w in d.water]
    water_scopes = [water.period_water("city", water_days)]
    for scope in sorted({w.area for w in water_days}) + sorted({w.station for w in water_days}):
        water_scopes.append(
            water.period_water(scope, [w for w in water_days if scope in (w.area, w.station)])
        )
    station_days_taps = [t for d in days for t in d.transit]
    readings = [r for d in days for r in d.readings]
    data = completeness.completeness_scopes(readings)
    share = {(c.feed, c.scope): c.completeness for c in data}
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
                daily_us_aqi=v.us_aqi,
                us_band=v.us_band,
            )
            for v in values
        ],
        traffic=[
            TrafficScope(**vars(k), completeness=share.get(("traffic", k.scope))) for k in traffic_scopes
        ],
        water=[WaterScope(**vars(k), completeness=share.get(("water", k.scope))) for k in water_scopes],
        data_completeness=[CompletenessScope(**vars(c)) for c in data],
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
        transit=Transit(
            k=DEFAULT_MIN_TRIPS_PER_CELL,
            scopes=[TransitScope(**vars(k)) for k in transit.transit_scopes(station_days_taps)],
            od_flows=[
                OdDay(
                    **{name: value for name, value in vars(f).items() if name != "cells"},
                    # Thousands of cells: pydantic validates plain dicts faster than it constructs models.
                    cells=[{"origin": o, "destination": d, "trips": n} for (o, d), n in f.cells.items()],
                )
                for f in flows
            ],
        ),
        crowd=[CrowdScope(**vars(k)) for k in crowd.crowd_scopes([z for d in days for z in d.crowd])],
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
        rows.append(
            ["air.daily_us_aqi", d.station, *day, d.daily_us_aqi, "index", round(d.completeness, 3), 1,
             air.US_STANDARD]
        )  # fmt: skip
    for t in answer.traffic:
        common = [t.completeness, t.detectors, None]
        rows.append(["traffic.tti_peak", t.scope, *period, t.tti_peak, "ratio", *common])
        rows.append(["traffic.congested_hours", t.scope, *period, t.congested_hours, "h", *common])
    for w in answer.water:
        for band, share in w.wqi_class_share.items():
            rows.append(
                [f"water.wqi_class_share.{band}", w.scope, *period, share, "share", w.completeness,
                 w.stations, None]
            )  # fmt: skip
        rows.append(
            ["water.compliance", w.scope, *period, w.compliance, "share", w.completeness, w.stations,
             "QCVN 08:2023"]
        )  # fmt: skip
        rows.append(
            ["water.low_do_hours", w.scope, *period, w.low_do_hours, "h", w.completeness, w.stations, None]
        )
    for c in answer.data_completeness:
        scope = f"{c.feed}:{c.scope}"
        rows.append(["ops.data_completeness", scope, *period, c.completeness, "share", c.completeness,
                     c.sensors, None])  # fmt: skip
        for day, share in c.daily.items():
            rows.append(["ops.data_completeness", scope, day.isoformat(), day.isoformat(), share, "share",
                         share, c.sensors, None])  # fmt: skip
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
    for t in answer.transit.scopes:
        for day, boardings in t.daily_boardings.items():
            rows.append(
                ["transit.boardings", t.scope, day.isoformat(), day.isoformat(), boardings, "taps",
                 t.completeness, t.stations, None]
            )  # fmt: skip
        rows.append(
            ["transit.gate_availability", t.scope, *period, t.completeness, "share", t.completeness,
             t.stations, None]
        )  # fmt: skip
        if t.peak_15min is not None:
            rows.append(
                ["transit.peak_15min", t.scope, *period, t.peak_15min, "taps", t.completeness, 1, None]
            )
    for f in answer.transit.od_flows:
        day = [f.day.isoformat(), f.day.isoformat()]
        for cell in f.cells:
            scope = f"{cell.origin}>{cell.destination}"
            rows.append(
                ["transit.od_flows", scope, *day, cell.trips, "trips", None, 2, f"k={answer.transit.k}"]
            )
        rows.append(["transit.od_suppressed_trips", "city", *day, f.suppressed_trips, "trips", None, None,
                     f"k={answer.transit.k}"])  # fmt: skip
    for c in answer.crowd:
        common = [c.completeness, c.zones, None]
        for day, visitors in c.daily_visitors.items():
            one_day = [day.isoformat(), day.isoformat()]
            rows.append(["crowd.daily_visitors", c.scope, *one_day, visitors, "people", *common])
        for day, over in c.daily_hours_over_80.items():
            one_day = [day.isoformat(), day.isoformat()]
            rows.append(["crowd.hours_over_80", c.scope, *one_day, over, "h", *common])
        rows.append(["crowd.hours_over_80", c.scope, *period, c.hours_over_80, "h", *common])
        rows.append(["crowd.peak_share", c.scope, *period, c.peak_share, "%", *common])
    return rows
