"""An air pollutant's history chart bands: VN_AQI's hourly breakpoints (QĐ 1459/QĐ-TCMT) in µg/m³,
with the AQI bands' names and colours."""

from __future__ import annotations

from ioc.city import Sensor
from ioc.feeds.air import VN_AQI
from ioc.history.bands import MeasureBand
from ioc.indices.air import VN_AQI_BANDS, VN_AQI_BREAKPOINTS
from ioc.indices.current import IndexValue, describe


def measure_bands(measure: str, sensor: Sensor | None) -> tuple[str, list[MeasureBand]] | None:
    """VN_AQI's bands of ``measure`` if it is a pollutant with breakpoints; None otherwise."""
    if measure not in VN_AQI_BREAKPOINTS:
        return None
    breakpoints = VN_AQI_BREAKPOINTS[measure]["1h"]
    bands = []
    for n, band in enumerate(VN_AQI_BANDS):
        look = describe(VN_AQI, IndexValue(value=band.lowest, band=band.key))
        upper = breakpoints[n + 1] if n + 1 < len(VN_AQI_BANDS) else None
        bands.append(MeasureBand(breakpoints[n], upper, band.key, look.label, look.colour))  # type: ignore[arg-type]
    return "VN_AQI QĐ 1459/QĐ-TCMT", bands
