"""The standard's bands of a measure, in the measure's own unit: what a history chart shades behind the
series. Each feed says which of its measures have bands and what they are (``Feed.chart_bands``: air's
VN_AQI breakpoints, traffic's levels of service, water's QCVN 08 classes, crowd's occupancy bands in
people); none for other measures."""

from __future__ import annotations

from dataclasses import dataclass

from ioc.city import Sensor
from ioc.feeds import REGISTRY
from ioc.indices.current import Label


@dataclass(frozen=True)
class MeasureBand:
    lower: float
    upper: float | None  # None: no upper end
    key: str
    label: Label
    colour: str  # #rrggbb


def measure_bands(feed: str, measure: str, sensor: Sensor | None) -> tuple[str | None, list[MeasureBand]]:
    """(the standard, its bands lowest value first) for ``measure`` of ``feed``; (None, []) without."""
    registered = REGISTRY.get(feed)
    found = registered.measure_bands(measure, sensor) if registered else None
    return found if found else (None, [])
