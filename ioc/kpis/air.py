"""Air KPIs (``../shared/reference/kpis.md``): a station's day from its hourly means (its daily VN_AQI, and
US EPA's daily AQI beside it), then periods.

Pure: the station-days come in, the KPI values go out; ``ioc.kpis.store`` reads the hours from the
history store. A station-day counts only with 18 of its 24 hourly means (PM2.5 or PM10, whichever has
more); a period's mean only when 75 % of its days count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from statistics import fmean

from ioc.indices.air import (
    HOURS_PER_DAY,
    MIN_HOURS_24H_MEAN,
    VN_AQI_BANDS,
    AqiResult,
    highest_rolling_mean,
    mean_of_present,
    us_aqi,
    vn_aqi_daily,
)

STANDARD = "VN_AQI QĐ 1459/QĐ-TCMT; QCVN 05:2023/BTNMT"
US_STANDARD = "US EPA AQI (40 CFR 58 App. G)"
MIN_DAY_SHARE = 0.75  # of a period's days that must count for its mean


def qcvn05_24h_limit(pollutant: str, day: date) -> float | None:
    """QCVN 05:2023's 24-hour limit in µg/m³ on ``day`` (PM2.5: 50 until 2025-12-31, then 45)."""
    if pollutant == "pm25":
        return 50.0 if day < date(2026, 1, 1) else 45.0
    return {"pm10": 100.0, "no2": 100.0, "so2": 125.0}.get(pollutant)


@dataclass
class StationDay:
    """One station's local day: its hours (pollutant → 24 hourly means, None where missing)."""

    station: str
    area: str
    day: date
    hours: Mapping[str, Sequence[float | None]]

    @cached_property
    def hours_present(self) -> int:
        return max((sum(v is not None for v in self.hours.get(p, ())) for p in ("pm25", "pm10")), default=0)

    @property
    def valid(self) -> bool:
        return self.hours_present >= MIN_HOURS_24H_MEAN


@dataclass(frozen=True)
class DayValues:
    station: str
    area: str
    day: date
    valid: bool
    completeness: float  # hours present / 24
    aqi: int | None
    band: str | None
    means: dict[str, float]  # 24-hour means of the pollutants with 18 hours
    exceeded: tuple[str, ...]  # pollutants above their QCVN 05 24-hour limit
    us_aqi: int | None = None  # US EPA's daily AQI (``daily_us_aqi``), beside VN_AQI for comparison
    us_band: str | None = None


def daily_us_aqi(hours: Mapping[str, Sequence[float | None]], means: Mapping[str, float]) -> AqiResult | None:
    """US EPA's daily AQI of a station's local day, by EPA's daily statistics: PM2.5 and PM10 from their
    24-hour means (``means``: the day's, of 18 hours or more), O3 and CO from the highest 8-hour mean in
    the day (6 of 8 hours), NO2 and SO2 from the highest hour (``ioc.indices.air.us_aqi``)."""

    def highest_hour(pollutant: str) -> float | None:
        present = [v for v in hours.get(pollutant, ()) if v is not None]
        return max(present) if present else None

    return us_aqi(
        {
            "pm25_24h": means.get("pm25"),
            "pm10_24h": means.get("pm10"),
            "o3_8h": highest_rolling_mean(hours.get("o3", ())),
            "o3_1h": highest_hour("o3"),
            "co_8h": highest_rolling_mean(hours.get("co", ())),
            "no2_1h": highest_hour("no2"),
            "so2_1h": highest_hour("so2"),
            "so2_24h": means.get("so2"),
        }
    )


def day_values(station_day: StationDay) -> DayValues:
    means = {
        pollutant: mean
        for pollutant, series in station_day.hours.items()
        if sum(v is not None for v in series) >= MIN_HOURS_24H_MEAN
        and (mean := mean_of_present(series)) is not None
    }
    result = vn_aqi_daily(station_day.hours) if station_day.valid else None
    us = daily_us_aqi(station_day.hours, means) if station_day.valid else None
    exceeded = tuple(
        sorted(
            p for p, mean in means.items() if (limit := qcvn05_24h_limit(p, station_day.day)) and mean > limit
        )
    )
    return DayValues(
        station=station_day.station,
        area=station_day.area,
        day=station_day.day,
        valid=station_day.valid,
        completeness=round(station_day.hours_present / HOURS_PER_DAY, 3),
        aqi=result.value if result else None,
        band=result.band.key if result else None,
        means=means,
        exceeded=exceeded if station_day.valid else (),
        us_aqi=us.value if us else None,
        us_band=us.band.key if us else None,
    )


@dataclass
class AirKpis:
    """One scope's (a station, an area or the city) air KPIs over a period."""

    scope: str
    stations: int
    days_expected: int  # station-days the period holds
    days_valid: int
    band_days: dict[str, int] = field(default_factory=dict)  # VN_AQI band → valid station-days in it
    exceedance_days: dict[str, int] = field(default_factory=dict)  # pollutant → station-days above limit
    pm25_mean: float | None = None  # of valid daily means, when 75 % of the days count
    pm10_mean: float | None = None

    @property
    def completeness(self) -> float:
        return round(self.days_valid / self.days_expected, 3) if self.days_expected else 0.0


def period_kpis(scope: str, days: Sequence[DayValues], stations: int, period_days: int) -> AirKpis:
    """The KPIs of ``days`` (the scope's station-days in the period): ``stations`` × ``period_days``
    station-days expected. A city figure comes from station-days, never from area means."""
    valid = [d for d in days if d.valid]
    kpis = AirKpis(
        scope=scope, stations=stations, days_expected=stations * period_days, days_valid=len(valid)
    )
    kpis.band_days = {band.key: sum(d.band == band.key for d in valid) for band in VN_AQI_BANDS}
    for d in valid:
        for pollutant in d.exceeded:
            kpis.exceedance_days[pollutant] = kpis.exceedance_days.get(pollutant, 0) + 1
    if kpis.days_expected and kpis.completeness >= MIN_DAY_SHARE:
        for pollutant in ("pm25", "pm10"):
            values = [d.means[pollutant] for d in valid if pollutant in d.means]
            if values:
                setattr(kpis, f"{pollutant}_mean", round(fmean(values), 1))
    return kpis
