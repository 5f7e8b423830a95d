"""Water quality: WaterQualityObserved from river and lake stations, VN_WQI."""

from ioc.feeds import Band, ConsoleView, Feed, Index, NgsiLdEntity, hex_colour
from ioc.feeds.water.model import WaterQualityObserved
from ioc.indices.water import wqi_tables

VN_WQI = "vnWqi"  # VN_WQI of a station's latest sample

FEED = Feed(
    name="water",
    order=2,
    model=WaterQualityObserved,
    windows=("15m", "1h"),  # stations sample every 15 minutes
    reading_interval_seconds=900,
    label=("nước", "water"),
    index=Index(
        VN_WQI,
        # The WQI table lists its bands best (highest index) first.
        tuple(
            Band(b["key"], b["name_vi"], b["name_en"], hex_colour(b["rgb"])) for b in wqi_tables()["bands"]
        ),
        worst="low",
    ),
    example=(
        {
            "sensorId": "water-to-lich-cau-giay",
            "eventId": "wq-2026-01-15-0800-tl1",
            "dateObserved": "2026-01-15T08:00:00+07:00",
            "pH": 7.1,
            "dissolvedOxygen": 3.2,
            "nh4N": 1.8,
        },
    ),
    simulator="ioc.feeds.water.simulator",
    detector="ioc.feeds.water.detector",
    ngsi_ld=NgsiLdEntity(
        "dataModel.WaterQuality",
        # SDM's NO3, NH4 and PO4 are ion concentrations and ioc's nutrients are "as N" / "as P": the factor
        # is the ratio of molar masses (N 14.0067, NO3 62.0049, NH4 18.0385; P 30.9738, PO4 94.9714).
        # SDM's NO2 is "nitrite nitrogen" already, P-PO4 "phosphate-phosphorus", O2 the dissolved oxygen.
        sdm_measures={
            "NO3": ("no3N", 14.0067 / 62.0049),
            "NH4": ("nh4N", 14.0067 / 18.0385),
            "PO4": ("po4P", 30.9738 / 94.9714),
            "NO2": ("no2N", 1.0),
            "P-PO4": ("po4P", 1.0),
            "O2": ("dissolvedOxygen", 1.0),
        },
    ),
    chart_bands="ioc.feeds.water.bands",
    console=ConsoleView(
        name=("Nước", "Water"),
        metric=("VN_WQI thấp nhất", "Worst VN_WQI"),
        index_name=("VN_WQI", "VN_WQI"),
        marker="diamond",
    ),
)
