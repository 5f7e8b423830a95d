"""Road traffic: TrafficFlowObserved from loop and camera detectors, level of service."""

from ioc.feeds import Band, ConsoleView, Feed, Index, NgsiLdEntity, hex_colour
from ioc.feeds.traffic.model import TrafficFlowObserved
from ioc.indices.traffic import LOS_URBAN_STREET, LOS_WORST

LEVEL_OF_SERVICE = "levelOfService"  # a detector's speed as % of its free-flow speed, band A–F

# Levels A–F, good to bad, in the hues of the AQI bands so one legend reads both.
_LOS_RGB = ((0, 228, 0), (160, 220, 0), (255, 255, 0), (255, 126, 0), (255, 0, 0), (126, 0, 35))
_LEVELS = [*(level for level, _ in LOS_URBAN_STREET), LOS_WORST]

FEED = Feed(
    name="traffic",
    order=0,
    model=TrafficFlowObserved,
    windows=("5m", "1h"),  # detectors report every 5 minutes
    reading_interval_seconds=300,
    neighbourhood=True,  # traffic.area_slowdown: a detector beside its neighbours
    label=("giao thông", "traffic"),
    index=Index(
        LEVEL_OF_SERVICE,
        tuple(
            Band(level, f"Mức phục vụ {level}", f"Level of service {level}", hex_colour(rgb))
            for level, rgb in zip(_LEVELS, _LOS_RGB, strict=True)
        ),
        worst="low",
    ),
    example=(
        {
            "sensorId": "traffic-nga-tu-so",
            "dateObserved": "2026-01-15T08:00:00+07:00",
            "intervalSeconds": 60,
            "laneId": 1,
            "intensity": 42,
            "averageVehicleSpeed": 21.5,
            "occupancy": 0.31,
        },
    ),
    simulator="ioc.feeds.traffic.simulator",
    detector="ioc.feeds.traffic.detector",
    ngsi_ld=NgsiLdEntity(
        "dataModel.Transportation", interval_length="intervalSeconds", counts_over_interval=True
    ),
    chart_bands="ioc.feeds.traffic.bands",
    console=ConsoleView(
        name=("Giao thông", "Traffic"),
        metric=("Mức phục vụ kém nhất", "Worst level of service"),
        index_name=("LOS", "LOS"),
        marker="square",
        unit=("% tốc độ tự do", "% of free-flow speed"),
        headline="band",
    ),
)
