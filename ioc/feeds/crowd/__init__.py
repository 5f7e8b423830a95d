"""Crowds at heritage and tourist zones: CrowdFlowObserved from people counters, occupancy share.

The zones are the registry's ``crowd`` sensors, each with ``attributes``: ``area_m2`` (the walkable
area) and ``safe_capacity`` (people), both approximate (see ``ioc/city/hanoi.json``'s note).
"""

from ioc.feeds import Band, ConsoleView, Feed, Index, NgsiLdEntity, Tally
from ioc.feeds.crowd.index import BANDS, OCCUPANCY_SHARE
from ioc.feeds.crowd.model import CrowdFlowObserved

FEED = Feed(
    name="crowd",
    order=4,
    model=CrowdFlowObserved,
    windows=("5m", "1h"),  # counters report every 5 minutes
    reading_interval_seconds=300,
    label=("đám đông", "crowd"),
    index=Index(OCCUPANCY_SHARE, tuple(Band(key, vi, en, colour) for key, _, vi, en, colour in BANDS)),
    example=(
        {
            "sensorId": "crowd-ho-guom-walking-street",
            "dateObserved": "2026-01-16T20:00:00+07:00",
            "intervalSeconds": 300,
            "peopleCount": 18400,
            "occupancy": 0.62,
            "averageCrowdSpeed": 2.9,
            "congested": False,
            "direction": "inbound",
        },
    ),
    simulator="ioc.feeds.crowd.simulator",
    detector="ioc.feeds.crowd.detector",
    # The Transportation model's CrowdFlowObserved; its peopleCount is the people in the zone.
    ngsi_ld=NgsiLdEntity(
        "dataModel.Transportation", interval_length="intervalSeconds", counts_over_interval=True
    ),
    chart_bands="ioc.feeds.crowd.bands",
    console=ConsoleView(
        name=("Đám đông", "Crowds"),
        metric=("Khu đông nhất, % sức chứa an toàn", "Busiest zone, % of safe capacity"),
        index_name=("Lấp đầy", "Occupancy"),
        marker="hexagon",
        unit=("% sức chứa", "% of capacity"),
        tally=Tally("people_count", ("người", "people"), ("Khu", "Zones")),
        value_on_map="%",  # a few zones, each a place of its own: its share is read at a glance
    ),
)
