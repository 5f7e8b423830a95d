"""Public transport: fare taps (card ids pseudonymised at the edge), ridership."""

from ioc.feeds import ConsoleView, Feed, Index
from ioc.feeds.transit.model import FareTap

RIDERSHIP = "ridership"  # card taps in a station's current 15-minute bin

FEED = Feed(
    name="transit",
    order=3,
    model=FareTap,
    windows=("15m", "1h"),  # ridership is counted per 15 minutes
    # No reading_interval_seconds: taps come when riders do, so no count of them is "expected".
    label=("vận tải công cộng", "transit"),
    index=Index(RIDERSHIP, worst="sum"),
    example=(
        {
            "sensorId": "metro-2a-cat-linh",
            "eventId": "tap-000183",
            "dateObserved": "2026-01-15T08:00:00+07:00",
            "cardId": "9704000012345678",
            "cardType": "adult",
            "mode": "metro",
            "line": "2A",
            "deviceId": "cat-linh-g3",
            "direction": "ENTRY",
            "fare": 0,
        },
    ),
    simulator="ioc.feeds.transit.simulator",
    detector="ioc.feeds.transit.detector",
    card_ids=True,
    # No ngsi_ld: a fare tap is no Smart Data Models entity, and a card id is never published.
    console=ConsoleView(
        name=("Vận tải công cộng", "Public transit"),
        metric=("Lượt quẹt thẻ, 15 phút hiện tại", "Taps, current 15 min"),
        index_name=("Quẹt thẻ, 15 phút", "Taps, 15 min"),
        marker="triangle",
        unit=(" lượt", " taps"),
    ),
)
