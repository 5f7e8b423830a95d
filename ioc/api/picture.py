"""``GET /v1/picture``: the city at a glance."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from connectors.sinks.redis_picture import RedisPicture
from ioc.api.auth import Operator
from ioc.city import load_city
from ioc.settings import FEEDS
from ioc.windows import FieldStats

router = APIRouter(prefix="/v1", tags=["picture"])


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class SensorReading(CamelModel):
    sensor_id: str
    name: str = Field(description="Registry name (Vietnamese).")
    district: str
    district_name: str
    lat: float
    lon: float
    window: str = Field(description="Length of the event-time window, e.g. 1m.")
    window_start: datetime
    window_end: datetime
    last_event_time: datetime = Field(description="Event time of the newest reading in the window.")
    count: int = Field(description="Readings in the window.")
    values: dict[str, FieldStats] = Field(
        description="Per measured field: count, mean, min, max, last, unit."
    )


class FeedPicture(CamelModel):
    window: str
    sensors: list[SensorReading]


class Picture(CamelModel):
    city: str
    generated_at: datetime
    feeds: dict[str, FeedPicture]


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
                }
            ],
        }
    },
}


@router.get(
    "/picture",
    response_model=Picture,
    response_model_by_alias=True,
    summary="The city at a glance",
    description=(
        "Per feed, the newest event-time window of every sensor that has reported, with each value's "
        "unit and the window's event times (in the city's time zone). Needs the operator or admin role."
    ),
    responses={200: {"content": {"application/json": {"example": PICTURE_EXAMPLE}}}},
)
async def get_picture(request: Request, _: Operator) -> Picture:
    settings = request.app.state.settings
    city = load_city(settings.city)
    zone = ZoneInfo(city.timezone)
    store = RedisPicture(settings, request.app.state.redis)
    feeds: dict[str, FeedPicture] = {}
    for feed in FEEDS:
        sensors = []
        for aggregate in await store.latest_aggregates(feed, settings.windows_of(feed)[0].label):
            sensor = city.sensor(aggregate.sensor_id)
            district = city.district(sensor.district) if sensor else None
            sensors.append(
                SensorReading(
                    sensor_id=aggregate.sensor_id,
                    name=sensor.name if sensor else aggregate.sensor_id,
                    district=district.id if district else "unregistered",
                    district_name=district.name if district else "—",
                    lat=sensor.lat if sensor else 0.0,
                    lon=sensor.lon if sensor else 0.0,
                    window=aggregate.window,
                    window_start=aggregate.window_start.astimezone(zone),
                    window_end=aggregate.window_end.astimezone(zone),
                    last_event_time=aggregate.last_event_time.astimezone(zone),
                    count=aggregate.count,
                    values=aggregate.fields,
                )
            )
        feeds[feed] = FeedPicture(window=settings.windows_of(feed)[0].label, sensors=sensors)
    return Picture(city=city.city, generated_at=datetime.now(zone), feeds=feeds)
