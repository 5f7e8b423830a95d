"""A sensor's current official index, as the live picture shows it: one value and its band per index.

The detector stage computes them (``ioc.detectors.sensor``) and the window aggregates carry them to the
picture; ``describe`` adds what a reader needs beside the band key — its name in both languages and its
colour — and ``worst`` picks the worst of several sensors (a district's headline).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel, Field

from ioc.feeds import REGISTRY


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


# Every feed's index, its bands ranked best first (``ioc.feeds.Index``).
_INDICES = {feed.index.name: feed.index for feed in REGISTRY.values()}
_BANDS: dict[str, dict[str, _BandLook]] = {
    name: {
        band.key: _BandLook(rank, Label(vi=band.vi, en=band.en), band.colour)
        for rank, band in enumerate(index.bands)
    }
    for name, index in _INDICES.items()
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
    (highest AQI, lowest WQI, lowest % of free-flow speed: the feed's ``Index.worst``); for a count
    without bands, such as ridership, the sum (a district's taps)."""
    values = list(indices)
    if not values:
        return None
    kind = _INDICES.get(name)
    if kind is not None and kind.worst == "sum":
        return IndexValue(value=sum(index.value for index in values))
    bands = _BANDS.get(name, {})
    higher_is_worse = kind is not None and kind.worst == "high"

    def badness(index: IndexValue) -> tuple[int, float]:
        look = bands.get(index.band or "")
        return (look.rank if look else -1, index.value if higher_is_worse else -index.value)

    return max(values, key=badness)
