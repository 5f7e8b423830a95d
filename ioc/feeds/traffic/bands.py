"""A detector's speed history chart bands: the levels of service A–F (HCM urban street) in km/h, from
its free-flow speed."""

from __future__ import annotations

from ioc.city import Sensor
from ioc.feeds.traffic import LEVEL_OF_SERVICE
from ioc.history.bands import MeasureBand
from ioc.indices.current import IndexValue, describe
from ioc.indices.traffic import LOS_URBAN_STREET, LOS_WORST


def measure_bands(measure: str, sensor: Sensor | None) -> tuple[str, list[MeasureBand]] | None:
    """The levels of service of a detector's average speed; None for other measures or without the
    detector's free-flow speed."""
    if measure != "average_vehicle_speed" or not sensor or not sensor.free_flow_speed:
        return None
    free_flow = sensor.free_flow_speed
    # LOS_URBAN_STREET: each level's lowest speed as % of free flow, best first; below the last is F.
    edges = [0.0, *(free_flow * percent / 100 for _, percent in reversed(LOS_URBAN_STREET))]
    levels = [LOS_WORST, *(level for level, _ in reversed(LOS_URBAN_STREET))]
    bands = []
    for n, level in enumerate(levels):
        look = describe(LEVEL_OF_SERVICE, IndexValue(value=0, band=level))
        upper = round(edges[n + 1], 1) if n + 1 < len(edges) else None
        bands.append(MeasureBand(round(edges[n], 1), upper, level, look.label, look.colour))  # type: ignore[arg-type]
    return "Level of service (HCM urban street)", bands
