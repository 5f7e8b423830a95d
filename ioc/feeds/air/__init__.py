"""Air quality: AirQualityObserved from reference and low-cost stations (µg/m³), VN_AQI."""

from ioc.feeds import Band, ConsoleView, Feed, Index, NgsiLdEntity, hex_colour
from ioc.feeds.air.model import AirQualityObserved
from ioc.indices.air import VN_AQI_BANDS

VN_AQI = "vnAqi"  # hourly VN_AQI (NowCast) of a station

FEED = Feed(
    name="air",
    order=1,
    model=AirQualityObserved,
    windows=("1m", "5m", "1h"),  # air reports every minute
    reading_interval_seconds=60,
    label=("không khí", "air"),
    index=Index(VN_AQI, tuple(Band(b.key, b.name_vi, b.name_en, hex_colour(b.rgb)) for b in VN_AQI_BANDS)),
    example=(  # the second is rejected: a negative concentration
        {"sensorId": "air-kim-lien", "dateObserved": "2026-01-15T08:00:00+07:00", "pm25": 80.5, "no2": 41.0},
        {"sensorId": "air-kim-lien", "dateObserved": "2026-01-15T08:01:00+07:00", "pm25": -3},
    ),
    simulator="ioc.feeds.air.simulator",
    detector="ioc.feeds.air.detector",
    ngsi_ld=NgsiLdEntity("dataModel.Environment", interval_length="averagingPeriod"),
    chart_bands="ioc.feeds.air.bands",
    console=ConsoleView(
        name=("Không khí", "Air"),
        metric=("VN_AQI cao nhất", "Worst VN_AQI"),
        index_name=("VN_AQI", "VN_AQI"),
        marker="circle",
    ),
)
