"""A sensor's current official index, as the live picture shows it: one value and its band per index.

The detector stage computes them (``ioc.detectors.sensor``) and the window aggregates carry them to the
picture; ``describe`` adds what a reader needs beside the band key — its name in both languages and its
colour — and ``worst`` picks the worst of several sensors (a district's headline).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel, Field

from ioc.indices.air import VN_AQI_BANDS
from ioc.indices.traffic import LOS_URBAN_STREET, LOS_WORST
from ioc.indices.water import wqi_tables

VN_AQI = "vnAqi"  # hourly VN_AQI (NowCast), air stations
VN_WQI = "vnWqi"  # VN_WQI of the latest sample, water stations
LEVEL_OF_SERVICE = "levelOfService"  # speed as % of free-flow speed, band A–F, traffic detectors
RIDERSHIP = "ridership"  # card taps in the current 15-minute bin, transit stations

INDEX_OF_FEED = {"air": VN_AQI, "water": VN_WQI, "traffic": LEVEL_OF_SERVICE, "transit": RIDERSHIP}


class IndexValue(BaseModel):
    """An index value and the key of its band (None for an index without bands, such as ridership)."""

    value: float
    band: str | None = None


class Label(BaseModel):
    vi: str
    en: str


class DescribedIndex(IndexValue):
    label: Label | None = Field(None, description="The band's name, in Vietnamese and English.")
    colour: str | None = Field(None, description="The band's colour, #rrggbb, as the standard gives it.")


@dataclass(frozen=True)
class _BandLook:
    rank: int  # 0 best
    label: Label
    colour: str


def _hex(rgb: Iterable[int]) -> str:
    return "#" + "".join(f"{channel:02x}" for channel in rgb)


# Levels A–F, good to bad, in the hues of the AQI bands so one legend reads both.
_LOS_RGB = dict(
    zip(
        [*(level for level, _ in LOS_URBAN_STREET), LOS_WORST],
        [(0, 228, 0), (160, 220, 0), (255, 255, 0), (255, 126, 0), (255, 0, 0), (126, 0, 35)],
        strict=True,
    )
)

_BANDS: dict[str, dict[str, _BandLook]] = {
    VN_AQI: {
        band.key: _BandLook(rank, Label(vi=band.name_vi, en=band.name_en), _hex(band.rgb))
        for rank, band in enumerate(VN_AQI_BANDS)
    },
    # The WQI table lists its bands best (highest index) first.
    VN_WQI: {
        band["key"]: _BandLook(rank, Label(vi=band["name_vi"], en=band["name_en"]), _hex(band["rgb"]))
        for rank, band in enumerate(wqi_tables()["bands"])
    },
    LEVEL_OF_SERVICE: {
        level: _BandLook(rank, Label(vi=f"Mức phục vụ {level}", en=f"Level of service {level}"), _hex(rgb))
        for rank, (level, rgb) in enumerate(_LOS_RGB.items())
    },
}


def describe(name: str, index: IndexValue) -> DescribedIndex:
    """The index with its band's names and colour (none when the band is unknown or the index has none)."""
    look = _BANDS.get(name, {}).get(index.band or "")
    return DescribedIndex(
        value=index.value,
        band=index.band,
        label=look.label if look else None,
        colour=look.colour if look else None,
    )


def worst(name: str, indices: Iterable[IndexValue]) -> IndexValue | None:
    """The worst of several sensors' values of one index: the worst band, then the worst value within it
    (highest AQI, lowest WQI, lowest % of free-flow speed); for ridership, the sum (a district's taps)."""
    values = list(indices)
    if not values:
        return None
    if name == RIDERSHIP:
        return IndexValue(value=sum(index.value for index in values))
    bands = _BANDS.get(name, {})
    higher_is_worse = name == VN_AQI

    def badness(index: IndexValue) -> tuple[int, float]:
        look = bands.get(index.band or "")
        return (look.rank if look else -1, index.value if higher_is_worse else -index.value)

    return max(values, key=badness)
