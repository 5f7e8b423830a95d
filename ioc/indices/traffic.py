"""Road traffic measures: urban-street level of service, travel time index, congestion, speed performance.

Speeds are in km/h. Percentages are rounded to 6 decimals before a threshold is compared, so that binary
floating point (40.2/60 = 67.00000000000001 %) does not move a value that sits on a boundary.
"""

from __future__ import annotations

import math

# Urban street LOS: the lowest travel speed, as % of base free-flow speed, of each level (above it, not at).
LOS_URBAN_STREET: tuple[tuple[str, float], ...] = (("A", 80), ("B", 67), ("C", 50), ("D", 40), ("E", 30))
LOS_WORST = "F"

# Speed Performance Index bands: the lowest SPI of each band (inclusive), best first; below 25 is heavy.
SPI_BANDS: tuple[tuple[str, float], ...] = (("light", 50), ("moderate", 25))
SPI_FREE_FLOW_ABOVE = 75
SPI_HEAVY = "heavy"

_PERCENT_DECIMALS = 6


def _check_speeds(speed_kmh: float, reference_kmh: float, reference: str) -> None:
    if math.isnan(speed_kmh) or speed_kmh < 0:
        raise ValueError(f"speed must be ≥ 0 km/h, got {speed_kmh}")
    if math.isnan(reference_kmh) or reference_kmh <= 0:
        raise ValueError(f"{reference} must be > 0 km/h, got {reference_kmh}")


def _percent(part: float, whole: float) -> float:
    return round(100 * part / whole, _PERCENT_DECIMALS)


def level_of_service(speed_kmh: float, free_flow_kmh: float) -> str:
    """Urban street LOS A–F from travel speed as % of free-flow speed: A >80, B >67, C >50, D >40, E >30,
    F ≤30."""
    _check_speeds(speed_kmh, free_flow_kmh, "free-flow speed")
    percent = _percent(speed_kmh, free_flow_kmh)
    return next((level for level, above in LOS_URBAN_STREET if percent > above), LOS_WORST)


def travel_time_index(speed_kmh: float, free_flow_kmh: float) -> float | None:
    """Travel time / free-flow travel time = free-flow speed / speed; None when traffic stands still."""
    _check_speeds(speed_kmh, free_flow_kmh, "free-flow speed")
    return free_flow_kmh / speed_kmh if speed_kmh > 0 else None


def congestion_percent(speed_kmh: float, free_flow_kmh: float) -> float | None:
    """Extra travel time over free flow, % ((TT − TT_ff)/TT_ff · 100); 0 at or above free-flow speed
    (faster than free flow is not negative congestion); None when traffic stands still."""
    index = travel_time_index(speed_kmh, free_flow_kmh)
    if index is None:
        return None
    return max(0.0, round(100 * (index - 1), _PERCENT_DECIMALS))


def speed_performance_index(speed_kmh: float, limit_kmh: float) -> float:
    """SPI = 100 · speed / speed limit, capped at 100 (the index runs 0–100; speeding is not 'better')."""
    _check_speeds(speed_kmh, limit_kmh, "speed limit")
    return min(100.0, _percent(speed_kmh, limit_kmh))


def speed_performance_band(spi: float) -> str:
    """``free_flow`` above 75, ``light`` 50–75, ``moderate`` 25 to under 50, ``heavy`` under 25."""
    if math.isnan(spi) or spi < 0:
        raise ValueError(f"SPI must be ≥ 0, got {spi}")
    if spi > SPI_FREE_FLOW_ABOVE:
        return "free_flow"
    return next((band for band, lowest in SPI_BANDS if spi >= lowest), SPI_HEAVY)
