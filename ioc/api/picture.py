"""``GET /v1/picture``: the city at a glance."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from pydantic import Field

from connectors.sinks.redis_picture import RedisPicture
from ioc.api.auth import OperatorCaller
from ioc.api.responses import AUTH_RESPONSES, CamelModel
from ioc.city import UNREGISTERED, City, load_city
from ioc.feeds import FEEDS, REGISTRY
from ioc.indices.current import DescribedIndex, IndexValue, describe, worst
from ioc.models.alert import Alert
from ioc.models.anomaly import Severity
from ioc.windows import FieldStats, WindowAggregate

router = APIRouter(prefix="/v1", tags=["picture"])

# A sensor is reporting while its newest reading is at most this many of its feed's reporting intervals
# (the feed's shortest window) older than the API's clock, and never less than REPORTING_FLOOR_SECONDS.
# Measured against the clock, not against the feed's newest event time: that newest time can itself be old
# (a replay, a backfill, a sensor's buffer of 2016), and "reporting" answers whether the centre sees the
# sensor now. Three intervals leave room for one or two missed or delayed readings; the 15-minute floor
# keeps a sensor that reports every 5 minutes (many low-cost air sensors, the simulator's default) counted
# in a feed whose shortest window is 1 minute.
REPORTING_INTERVALS = 3
REPORTING_FLOOR_SECONDS = 900


def reporting_bound(interval_seconds: float) -> float:
    """How old, in seconds, a sensor's newest reading may be for it to count as reporting."""
    return max(REPORTING_INTERVALS * interval_seconds, REPORTING_FLOOR_SECONDS)


def is_reporting(last_event_time: datetime, interval_seconds: float, now: datetime) -> bool:
    """Whether a reading of ``last_event_time`` is recent enough, at ``now``, to count as reporting."""
    return (now - last_event_time).total_seconds() <= reporting_bound(interval_seconds)


class SensorReading(CamelModel):
    sensor_id: str
    name: str = Field(description="Registry name (Vietnamese).")
    district: str
    district_name: str
    registered: bool = Field(
        default=True,
        description="False for an `unregistered:` sensor: no registry entry, no district, no location.",
    )
    lat: float | None = Field(description="Its registry location; null for an `unregistered:` sensor.")
    lon: float | None
    window: str = Field(description="Length of the event-time window, e.g. 1m.")
    window_start: datetime
    window_end: datetime
    last_event_time: datetime = Field(description="Event time of the newest reading in the window.")
    count: int = Field(description="Readings in the window.")
    values: dict[str, FieldStats] = Field(
        description="Per measured field: count, mean, min, max, last, unit."
    )
    indices: dict[str, DescribedIndex] = Field(
        description="The sensor's official index as of its newest reading: `vnAqi` (hourly VN_AQI, air), "
        "`vnWqi` (VN_WQI of the latest sample, water), `levelOfService` (speed as % of free-flow speed, "
        "levels A–F, traffic), `ridership` (card taps in the current 15-minute bin, transit)."
    )


class FeedPicture(CamelModel):
    window: str
    sensors: list[SensorReading]


class SeverityCounts(CamelModel):
    critical: int = 0
    warning: int = 0
    info: int = 0


class DistrictPicture(CamelModel):
    id: str
    name: str
    lat: float = Field(description="The district's centroid.")
    lon: float
    indices: dict[str, DescribedIndex] = Field(
        description="Per index, the worst of the district's sensors (the sum for ridership)."
    )
    open_alerts: SeverityCounts


class OpenAlerts(CamelModel):
    total: int
    by_severity: SeverityCounts
    by_feed: dict[str, int]


class Freshness(CamelModel):
    last_event_time: datetime | None = Field(
        description="The newest event time any sensor of the feed reported."
    )
    age_seconds: float | None = Field(description="How long ago that was, by the API's clock.")
    sensors_reporting: int = Field(
        description="Registry sensors of the feed reporting: their newest reading is no older, by the API's "
        "clock, than 3 of the feed's reporting intervals (its shortest window) or 15 minutes, whichever is "
        "longer: air and traffic 15 min, water and transit 45 min."
    )
    sensors_stale: int = Field(
        default=0, description="Registry sensors with a window in the picture whose newest reading is older."
    )
    sensors_registered: int = Field(description="Sensors of the feed in the city registry.")
    unregistered_reporting: int = Field(
        default=0,
        description="`unregistered:` sensors of the feed reporting, by the same rule; not counted above.",
    )
    unregistered_in_picture: int = Field(
        default=0, description="`unregistered:` sensors of the feed with a window in the picture, of any age."
    )


class Picture(CamelModel):
    city: str
    generated_at: datetime
    feeds: dict[str, FeedPicture]
    districts: list[DistrictPicture]
    open_alerts: OpenAlerts = Field(description="Open and acknowledged alerts, not yet resolved.")
    freshness: dict[str, Freshness]


AQI_EXAMPLE = {
    "value": 87.0,
    "band": "trung_binh",
    "label": {"vi": "Trung bình", "en": "Moderate"},
    "colour": "#ffff00",
}
PICTURE_EXAMPLE = {
    "city": "Hà Nội",
    "generatedAt": "2026-11-23T08:01:05+07:00",
    "feeds": {
        "air": {
            "window": "1m",
            "sensors": [
                {
                    "sensorId": "air-kim-lien",
                    "name": "Kim Liên",
                    "district": "dong-da",
                    "districtName": "Đống Đa",
                    "registered": True,
                    "lat": 21.008,
                    "lon": 105.839,
                    "window": "1m",
                    "windowStart": "2026-11-23T08:00:00+07:00",
                    "windowEnd": "2026-11-23T08:01:00+07:00",
                    "lastEventTime": "2026-11-23T08:00:50+07:00",
                    "count": 6,
                    "values": {
                        "pm25": {
                            "count": 6,
                            "mean": 82.4,
                            "min": 79.0,
                            "max": 86.1,
                            "last": 80.2,
                            "unit": "µg/m³",
                        }
                    },
                    "indices": {"vnAqi": AQI_EXAMPLE},
                }
            ],
        }
    },
    "districts": [
        {
            "id": "dong-da",
            "name": "Đống Đa",
            "lat": 21.018,
            "lon": 105.829,
            "indices": {"vnAqi": AQI_EXAMPLE},
            "openAlerts": {"critical": 0, "warning": 1, "info": 0},
        }
    ],
    "openAlerts": {
        "total": 1,
        "bySeverity": {"critical": 0, "warning": 1, "info": 0},
        "byFeed": {"air": 1, "water": 0, "traffic": 0, "transit": 0},
    },
    "freshness": {
        "air": {
            "lastEventTime": "2026-11-23T08:00:50+07:00",
            "ageSeconds": 15.2,
            "sensorsReporting": 1,
            "sensorsStale": 0,
            "sensorsRegistered": 12,
            "unregisteredReporting": 0,
            "unregisteredInPicture": 0,
        }
    },
}


def sensor_reading(aggregate: WindowAggregate, city: City, zone: ZoneInfo) -> SensorReading:
    """An aggregate as the picture shows it: with the sensor's registry entry, local times, named bands."""
    sensor = city.sensor(aggregate.sensor_id)
    district = city.district(sensor.district) if sensor else None
    return SensorReading(
        sensor_id=aggregate.sensor_id,
        name=sensor.name if sensor else aggregate.sensor_id,
        district=district.id if district else UNREGISTERED,
        district_name=district.name if district else "—",
        registered=sensor is not None,
        lat=sensor.lat if sensor else None,
        lon=sensor.lon if sensor else None,
        window=aggregate.window,
        window_start=aggregate.window_start.astimezone(zone),
        window_end=aggregate.window_end.astimezone(zone),
        last_event_time=aggregate.last_event_time.astimezone(zone),
        count=aggregate.count,
        values=aggregate.fields,
        indices=described(aggregate.indices),
    )


def described(indices: dict[str, IndexValue]) -> dict[str, DescribedIndex]:
    return {name: describe(name, index) for name, index in indices.items()}


def severity_counts(alerts: list[Alert]) -> SeverityCounts:
    counts = Counter(str(alert.severity) for alert in alerts)
    return SeverityCounts(**{str(severity): counts[str(severity)] for severity in Severity})


@router.get(
    "/picture",
    response_model=Picture,
    response_model_by_alias=True,
    summary="The city at a glance",
    description=(
        "Per feed, the newest event-time window of every sensor that has reported, with each value's unit, "
        "the sensor's official index with its band (name in Vietnamese and English, colour), and the "
        "window's event times in the city's time zone. Per district, the worst index of each feed and its "
        "open alerts by severity; for the city, open alerts by severity and feed, and per feed how fresh "
        "the data is. One API process computes it at most once per `IOC_PICTURE_MAX_AGE_SECONDS` (1 s) "
        "and serves every request meanwhile the same answer. Needs the operator or admin role. A key scoped "
        "to districts (`operator@dong-da`) gets the picture of those districts only: their sensors, "
        "districts, open alerts and freshness."
    ),
    responses={200: {"content": {"application/json": {"example": PICTURE_EXAMPLE}}}, **AUTH_RESPONSES},
)
async def get_picture(request: Request, caller: OperatorCaller) -> Response:
    scope = caller.districts
    body = await request.app.state.picture.get(lambda: compute_picture(request, scope), scope)
    return Response(body, media_type="application/json")


class SharedPicture:
    """The newest picture this API process computed per scope (the city, or a key's districts), and at most
    one computation at a time: every request of a scope within ``IOC_PICTURE_MAX_AGE_SECONDS`` of it gets
    the same bytes. The scopes are the configured keys', so their number is bounded."""

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._pictures: dict[frozenset[str] | None, tuple[float, bytes]] = {}
        self._lock = asyncio.Lock()

    async def get(
        self, compute: Callable[[], Awaitable[Picture]], scope: frozenset[str] | None = None
    ) -> bytes:
        at, body = self._pictures.get(scope, (-math.inf, b""))
        if time.monotonic() - at < self.max_age:
            return body
        async with self._lock:
            at, body = self._pictures.get(scope, (-math.inf, b""))
            if time.monotonic() - at >= self.max_age:  # not computed while this request waited
                body = (await compute()).model_dump_json(by_alias=True).encode()
                self._pictures[scope] = (time.monotonic(), body)
            return body


async def compute_picture(request: Request, scope: frozenset[str] | None = None) -> Picture:
    """The picture of the city, or of the districts of ``scope`` only (their sensors, alerts, freshness)."""

    def within(district: str) -> bool:
        return scope is None or district in scope

    settings = request.app.state.settings
    city = load_city(settings.city)
    zone = ZoneInfo(city.timezone)
    store = RedisPicture(settings, request.app.state.redis)
    generated_at = datetime.now(zone)
    feeds: dict[str, FeedPicture] = {}
    freshness: dict[str, Freshness] = {}
    by_district: dict[str, dict[str, list[IndexValue]]] = defaultdict(lambda: defaultdict(list))
    for feed in FEEDS:
        spec = settings.windows_of(feed)[0]
        window = spec.label
        sensors = [
            reading
            for a in await store.latest_aggregates(feed, window)
            if within((reading := sensor_reading(a, city, zone)).district)
        ]
        feeds[feed] = FeedPicture(window=window, sensors=sensors)
        for sensor in sensors:
            for name, index in sensor.indices.items():
                by_district[sensor.district][name].append(index)
        newest = max((sensor.last_event_time for sensor in sensors), default=None)
        reporting = Counter(
            (sensor.registered, is_reporting(sensor.last_event_time, spec.size_seconds, generated_at))
            for sensor in sensors
        )
        freshness[feed] = Freshness(
            last_event_time=newest,
            age_seconds=round((generated_at - newest).total_seconds(), 1) if newest else None,
            sensors_reporting=reporting[True, True],
            sensors_stale=reporting[True, False],
            sensors_registered=sum(within(sensor.district) for sensor in city.sensors_of(feed)),
            unregistered_reporting=reporting[False, True],
            unregistered_in_picture=reporting[False, True] + reporting[False, False],
        )

    alerts = [alert for alert in await store.unresolved_alerts() if within(alert.district)]
    alerts_by_district: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        alerts_by_district[alert.district].append(alert)
    districts = []
    for district in filter(lambda d: within(d.id), city.districts):
        worst_indices = {
            name: described_worst
            for name in (described_feed.index.name for described_feed in REGISTRY.values())
            if (described_worst := worst(name, by_district[district.id][name])) is not None
        }
        districts.append(
            DistrictPicture(
                id=district.id,
                name=district.name,
                lat=district.lat,
                lon=district.lon,
                indices=described(worst_indices),
                open_alerts=severity_counts(alerts_by_district[district.id]),
            )
        )
    feed_counts = Counter(alert.feed for alert in alerts)
    return Picture(
        city=city.city,
        generated_at=generated_at,
        feeds=feeds,
        districts=districts,
        open_alerts=OpenAlerts(
            total=len(alerts),
            by_severity=severity_counts(alerts),
            by_feed={feed: feed_counts[feed] for feed in FEEDS},
        ),
        freshness=freshness,
    )
