"""The feeds, as plug-ins: one package per feed (``ioc/feeds/<name>/``), found here.

A feed package holds what makes that feed — its model, its windows, its indices, its detector metrics,
its simulator, how the picture and the console show it — and says so in one ``FEED`` (a :class:`Feed`) in
its ``__init__``. The core (ingest, pipeline, alerts, picture, API, metrics, console) asks this registry
and names no feed. Adding a feed is adding a package: every package under ``ioc/feeds/`` with a ``FEED``
is registered, in the order of ``Feed.order``.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.sources.base import Source
    from ioc.city import City, Sensor
    from ioc.detectors.feed import FeedDetector
    from ioc.detectors.sensor import SensorDetector
    from ioc.history.bands import MeasureBand
    from ioc.models.base import Event


@dataclass(frozen=True)
class Band:
    """One band of an index, as the picture and the console show it."""

    key: str  # as the detectors set it on a sensor's index
    vi: str
    en: str
    colour: str  # #rrggbb


@dataclass(frozen=True)
class Index:
    """The index a feed's sensors carry in the picture (``ioc.indices.current``)."""

    name: str  # its key in a sensor's indices, on the wire
    bands: tuple[Band, ...] = ()  # best first; none for an index without bands
    # A district shows the worst of its sensors: "high" (higher is worse within a band), "low", or
    # "sum" for a count without bands (the district's total).
    worst: str = "high"


@dataclass(frozen=True)
class Tally:
    """A measured field summed over a feed's sensors' newest readings, as the console's tile shows it
    (crowd: the people in every zone now)."""

    field: str  # a measured field of the feed's window values (snake_case, as the picture keys them)
    unit: tuple[str, str]  # after the sum, in Vietnamese and English
    sensors: tuple[str, str]  # what the feed's sensors are called, before their count ("Zones: 6")


@dataclass(frozen=True)
class ConsoleView:
    """How the operators' console shows a feed (served to it as ``/console/feeds.json``): its tile, the
    index's name in the map's lines, and its layer's marker on the map."""

    name: tuple[str, str]  # the tile's and the legend's title, in Vietnamese and English
    metric: tuple[str, str]  # what the tile's figure is
    index_name: tuple[str, str]  # the index's short name before a value ("VN_AQI")
    marker: str  # the map marker: circle, diamond, square, triangle or hexagon
    unit: tuple[str, str] = ("", "")  # after an index value ("% of free-flow speed")
    headline: str = "value"  # the tile's figure: the index's "value", or its "band" key (traffic's level)
    tally: Tally | None = None
    # The value is written beside each marker, then this ("%"): for a feed of a few sensors, each its own.
    value_on_map: str | None = None


def hex_colour(rgb: Iterable[int]) -> str:
    return "#" + "".join(f"{channel:02x}" for channel in rgb)


@dataclass(frozen=True)
class NgsiLdEntity:
    """How a feed's events are NGSI-LD entities (``ioc.models.ngsi_ld``) of the Smart Data Models' type
    named as its model's class."""

    # The Smart Data Models' subject whose @context the entities carry ("dataModel.Environment").
    data_model: str
    # The field the length of FIWARE's observation interval (dateObservedFrom/To) fills coming in, when the
    # entity has none: a count's "intervalSeconds", air's "averagingPeriod"; None: no such field.
    interval_length: str | None = None
    # Its events are counts over ``intervalSeconds``: they go out with the interval's ends as FIWARE's
    # dateObservedFrom and dateObservedTo instead.
    counts_over_interval: bool = False
    # The Smart Data Models' names of measures the feed keeps under its own: name → (its name, factor).
    sdm_measures: Mapping[str, tuple[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class SimulationOptions:
    """What ``ioc simulate`` asks of every feed's simulator."""

    start: datetime
    duration: timedelta | None  # None: endless
    seed: int
    interval: timedelta | None = None  # overrides a sampled feed's reporting interval
    card_key: bytes = b""  # the card HMAC key, for a feed whose events carry card ids
    card_key_id: str = ""


@dataclass(frozen=True)
class Feed:
    """What the core needs to know of one feed."""

    name: (
        str  # the feed's name: topics (<prefix>.<name>.raw), routes (/v1/ingest/<name>), the registry's kind
    )
    # Canonical order among feeds: equal event times of a merged simulation, listings, topics. Fixed per
    # feed so that adding one does not reorder the others' outputs.
    order: int
    model: type[Event]  # its events, validated
    # Default event-time windows (IOC_WINDOWS overrides). A window shorter than the feed's reporting
    # interval holds one reading, so each feed starts at its own rhythm.
    windows: tuple[str, ...]
    label: tuple[str, str]  # its name in Vietnamese and English, in alert and incident texts
    example: tuple[dict[str, Any], ...]  # a batch as an integrator sends it (the ingest route's docs)
    index: Index
    # The module of its simulator (imported only to simulate: it builds on connectors' sources), with
    # ``simulate(city, options) -> Source``.
    simulator: str
    # The module of its detector metrics (imported when a detector starts: it builds on the detector
    # stage), with ``Detector``, an ``ioc.detectors.feed.FeedDetector``; None: the health measures only.
    detector: str | None = None
    # Seconds between a sensor's readings, as the data completeness KPI expects them
    # (IOC_READING_INTERVAL_SECONDS overrides); None: its events are not periodic (transit's taps).
    reading_interval_seconds: int | None = None
    card_ids: bool = False  # its events carry card ids: whatever makes them needs the card HMAC key
    console: ConsoleView | None = None  # None: the console shows its label and index name only
    ngsi_ld: NgsiLdEntity | None = None  # None: its events are not NGSI-LD entities
    # The module of the standard's bands its history charts shade behind a measure (imported when a chart
    # asks: it builds on ``ioc.history.bands``), with ``measure_bands(measure, sensor)`` -> (standard,
    # bands lowest value first) or None for a measure without; None: no measure of the feed has bands.
    chart_bands: str | None = None
    # Its sensors are also judged beside their registry neighbours (``ioc.detectors.neighbourhood``): the
    # reading path publishes their deviations on ``<prefix>.<feed>.neighbours`` for a stage of its own.
    neighbourhood: bool = False

    def detect(self, core: SensorDetector) -> FeedDetector:
        """The feed's detector metrics, for ``core``'s rules and registry."""
        if self.detector is None:
            from ioc.detectors.feed import FeedDetector

            return FeedDetector(core, self.name)
        return import_module(self.detector).Detector(core, self.name)

    def measure_bands(self, measure: str, sensor: Sensor | None) -> tuple[str, list[MeasureBand]] | None:
        """(the standard, its bands lowest value first) for the feed's ``measure`` at ``sensor``; None
        for a measure without."""
        if self.chart_bands is None:
            return None
        return import_module(self.chart_bands).measure_bands(measure, sensor)

    def simulate(self, city: City, options: SimulationOptions) -> Source:
        """The feed's simulated events for ``city``, in event-time order."""
        return import_module(self.simulator).simulate(city, options)


def _discover() -> dict[str, Feed]:
    found: list[Feed] = []
    for module in pkgutil.iter_modules(__path__):
        if module.ispkg:
            feed = getattr(import_module(f"{__name__}.{module.name}"), "FEED", None)
            if isinstance(feed, Feed):
                found.append(feed)
    found.sort(key=lambda feed: feed.order)
    return {feed.name: feed for feed in found}


REGISTRY: dict[str, Feed] = _discover()
FEEDS: tuple[str, ...] = tuple(REGISTRY)  # the feeds' names, in canonical order
MODELS: dict[str, type[Event]] = {name: feed.model for name, feed in REGISTRY.items()}


def feed(name: str) -> Feed:
    """The registered feed ``name``; KeyError for an unknown one."""
    return REGISTRY[name]
