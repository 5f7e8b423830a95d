"""The occupancy share: people in a zone as a percentage of its safe capacity, in four bands.

The safe capacity is the registry's approximate figure (``attributes.safe_capacity``: the zone's
walkable area at 2 m² a person, a comfortable standing density well below crush levels of 4–5 people
per m²). The bands follow what an operator does: nothing, watch, manage the entrances, stop entry.
"""

from __future__ import annotations

from ioc.city import Sensor

OCCUPANCY_SHARE = "occupancyShare"  # people in the zone as % of its safe capacity

# (band key, upper bound in %, Vietnamese, English, colour), good to bad; the last has no upper bound.
BANDS = (
    ("comfortable", 50.0, "Thoáng", "Comfortable", "#00e400"),
    ("busy", 80.0, "Đông", "Busy", "#ffff00"),
    ("crowded", 100.0, "Rất đông", "Crowded", "#ff7e00"),
    ("over_capacity", None, "Quá tải", "Over capacity", "#ff0000"),
)


def band_of(share: float) -> str:
    """The band of an occupancy share, in %."""
    for key, upper, *_ in BANDS:
        if upper is None or share < upper:
            return key
    raise AssertionError("the last band has no upper bound")


def safe_capacity(sensor: Sensor | None) -> float | None:
    """The zone's safe capacity in people, from the registry; None when it has none."""
    if sensor is None:
        return None
    value = sensor.attributes.get("safe_capacity")
    return float(value) if isinstance(value, int | float) and value > 0 else None


def occupancy_share(people: float, capacity: float) -> float:
    """People as % of the safe capacity."""
    return 100 * people / capacity
