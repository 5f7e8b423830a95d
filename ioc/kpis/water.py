"""Water KPIs (``../shared/reference/kpis.md``): VN_WQI class shares, compliance with the station's
QCVN 08:2023 class, and hours of low dissolved oxygen. Pure: samples in, figures out; a sample is a
station's window of means (``ioc.kpis.store``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from ioc.indices.water import QCVN08_CLASSES, qcvn08_classes, vn_wqi

LOW_DO_MG_L = 2.0  # below it, a lake's fish are at risk


@dataclass(frozen=True)
class Sample:
    station: str
    area: str
    target_class: str | None  # the registry's water_class: what the water body is managed for
    values: Mapping[str, float]
    day: date | None = None  # local day of its window


@dataclass(frozen=True)
class StationDay:
    """One station's local day, as much of it as its period's KPIs need: what the day cache keeps."""

    station: str
    area: str
    day: date | None
    samples: int
    with_wqi: int
    bands: dict[str, int]  # VN_WQI band key → samples in it
    judged: int
    met: int
    low_do_hours: int


@dataclass
class WaterKpis:
    scope: str
    stations: int
    samples: int
    with_wqi: int = 0  # samples that give a VN_WQI
    wqi_class_share: dict[str, float] = field(default_factory=dict)  # band key → share of samples with a WQI
    judged: int = 0  # samples with a target class and at least one QCVN 08 parameter
    compliance: float | None = None  # share of those meeting the target class on every parameter
    low_do_hours: int = 0


def meets(values: Mapping[str, float], target_class: str) -> bool | None:
    """Whether a sample meets ``target_class`` on every QCVN 08 parameter it has; None without any."""
    classes = qcvn08_classes(values)
    if not classes:
        return None
    rank = QCVN08_CLASSES.index(target_class)
    return all(QCVN08_CLASSES.index(cls) <= rank for cls in classes.values())


def station_days(samples: Sequence[Sample], hours: Sequence[Sample]) -> list[StationDay]:
    """Each station's local days that have a window: ``samples`` its short windows (15 minutes),
    ``hours`` its hourly ones, for low DO."""
    Key = tuple[str, str, date | None]
    counts: dict[Key, list[int]] = {}  # samples, with a WQI, judged, met, low-DO hours
    bands: dict[Key, dict[str, int]] = {}
    for sample in samples:
        key = (sample.station, sample.area, sample.day)
        n, day_bands = counts.setdefault(key, [0, 0, 0, 0, 0]), bands.setdefault(key, {})
        n[0] += 1
        result = vn_wqi(sample.values)
        if result.band is not None:
            n[1] += 1
            day_bands[result.band.key] = day_bands.get(result.band.key, 0) + 1
        if (
            sample.target_class is not None
            and (verdict := meets(sample.values, sample.target_class)) is not None
        ):
            n[2] += 1
            n[3] += verdict
    for hour in hours:
        key = (hour.station, hour.area, hour.day)
        n, _ = counts.setdefault(key, [0, 0, 0, 0, 0]), bands.setdefault(key, {})
        n[4] += (do := hour.values.get("dissolved_oxygen")) is not None and do < LOW_DO_MG_L
    return [
        StationDay(station, area, day, n[0], n[1], dict(sorted(bands[key].items())), n[2], n[3], n[4])
        for key, n in sorted(
            counts.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or date.min)
        )
        for station, area, day in [key]
    ]


def period_water(scope: str, days: Sequence[StationDay]) -> WaterKpis:
    """The KPIs of ``days`` (the scope's station-days in the period)."""
    kpis = WaterKpis(
        scope=scope, stations=len({d.station for d in days}), samples=sum(d.samples for d in days)
    )
    bands: dict[str, int] = {}
    for day in days:
        for key, n in day.bands.items():
            bands[key] = bands.get(key, 0) + n
    kpis.with_wqi = sum(d.with_wqi for d in days)
    kpis.judged = sum(d.judged for d in days)
    met = sum(d.met for d in days)
    kpis.wqi_class_share = {key: round(n / kpis.with_wqi, 3) for key, n in sorted(bands.items())}
    kpis.compliance = round(met / kpis.judged, 3) if kpis.judged else None
    kpis.low_do_hours = sum(d.low_do_hours for d in days)
    return kpis


def water_kpis(scope: str, samples: Sequence[Sample], hours: Sequence[Sample]) -> WaterKpis:
    """``samples``: the scope's short windows (15 minutes); ``hours``: its hourly ones, for low DO."""
    return period_water(scope, station_days(samples, hours))
