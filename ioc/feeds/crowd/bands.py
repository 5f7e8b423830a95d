"""A crowd zone's people history chart bands: the occupancy bands, in people from its safe capacity."""

from __future__ import annotations

from ioc.city import Sensor
from ioc.feeds.crowd.index import BANDS, safe_capacity
from ioc.history.bands import MeasureBand
from ioc.indices.current import Label


def measure_bands(measure: str, sensor: Sensor | None) -> tuple[str, list[MeasureBand]] | None:
    """The occupancy bands of a zone's people count; None for other measures or a zone without a safe
    capacity."""
    if measure != "people_count" or not (capacity := safe_capacity(sensor)):
        return None
    # The occupancy bands' bounds (% of the safe capacity) in people.
    lowers = [0.0, *(upper for _, upper, *_ in BANDS[:-1])]
    bands = [
        MeasureBand(
            float(round(capacity * lower / 100)),
            None if upper is None else float(round(capacity * upper / 100)),
            key,
            Label(vi=vi, en=en),
            colour,
        )
        for lower, (key, upper, vi, en, colour) in zip(lowers, BANDS, strict=True)
    ]
    return "Occupancy share of the safe capacity (the registry's)", bands
