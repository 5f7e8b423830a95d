"""Water KPIs (``../shared/reference/kpis.md``): VN_WQI class shares, compliance with the station's
QCVN 08:2023 class, and hours of low dissolved oxygen. Pure: samples in, figures out; a sample is a
station's window of means (``ioc.kpis.store``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ioc.indices.water import QCVN08_CLASSES, qcvn08_classes, vn_wqi

LOW_DO_MG_L = 2.0  # below it, a lake's fish are at risk


@dataclass(frozen=True)
class Sample:
    station: str
    area: str
    target_class: str | None  # the registry's water_class: what the water body is managed for
    values: Mapping[str, float]


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


def water_kpis(scope: str, samples: Sequence[Sample], hours: Sequence[Sample]) -> WaterKpis:
    """``samples``: the scope's short windows (15 minutes); ``hours``: its hourly ones, for low DO."""
    kpis = WaterKpis(scope=scope, stations=len({s.station for s in (*samples, *hours)}), samples=len(samples))
    bands: dict[str, int] = {}
    met = 0
    for sample in samples:
        result = vn_wqi(sample.values)
        if result.band is not None:
            kpis.with_wqi += 1
            bands[result.band.key] = bands.get(result.band.key, 0) + 1
        if (
            sample.target_class is not None
            and (verdict := meets(sample.values, sample.target_class)) is not None
        ):
            kpis.judged += 1
            met += verdict
    kpis.wqi_class_share = {key: round(n / kpis.with_wqi, 3) for key, n in sorted(bands.items())}
    kpis.compliance = round(met / kpis.judged, 3) if kpis.judged else None
    kpis.low_do_hours = sum(
        1 for h in hours if (do := h.values.get("dissolved_oxygen")) is not None and do < LOW_DO_MG_L
    )
    return kpis
