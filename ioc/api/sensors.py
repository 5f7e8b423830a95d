"""``GET /v1/sensors`` and ``GET /v1/sensors/{sensor_id}``: the registry's sensors with their live state."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import Field

from connectors.sinks.redis_picture import RedisPicture
from ioc.api.auth import Operator
from ioc.api.picture import PICTURE_EXAMPLE, SensorReading, sensor_reading
from ioc.api.responses import AUTH_RESPONSES, CamelModel, Feed, problem
from ioc.city import City, Sensor, load_city
from ioc.indices.current import DescribedIndex
from ioc.models.alert import Alert
from ioc.settings import FEEDS

router = APIRouter(prefix="/v1", tags=["sensors"])


class Health(StrEnum):
    ok = "ok"
    degraded = "degraded"  # a health rule fires: silent, stuck, spiking or sending invalid readings
    no_data = "no-data"  # nothing from it in the picture yet


class SensorSummary(CamelModel):
    id: str
    feed: str
    name: str
    lat: float
    lon: float
    district: str
    district_name: str
    health: Health = Field(
        description="`ok`; `degraded` while a health rule fires (`health.*`: silent, stuck, spikes, "
        "invalid readings); `no-data` before its first window reaches the picture."
    )
    open_alerts: int = Field(description="Open and acknowledged alerts on this sensor.")
    last_event_time: datetime | None = Field(description="Event time of its newest reading in the picture.")
    indices: dict[str, DescribedIndex] = Field(description="Its official index, as in `GET /v1/picture`.")


class SensorList(CamelModel):
    items: list[SensorSummary]


class SensorDetail(SensorSummary):
    registry: Sensor = Field(description="The city registry's entry.")
    latest: SensorReading | None = Field(description="Its newest window of the shortest length.")
    aggregates: list[SensorReading] = Field(
        description="Its newest window of every configured length (e.g. 1m, 5m, 1h), shortest first."
    )
    alerts: list[Alert] = Field(description="Its open and acknowledged alerts, newest first.")


SUMMARY_EXAMPLE = {
    "id": "air-kim-lien",
    "feed": "air",
    "name": "Kim Liên",
    "lat": 21.008,
    "lon": 105.839,
    "district": "dong-da",
    "districtName": "Đống Đa",
    "health": "ok",
    "openAlerts": 0,
    "lastEventTime": "2026-11-23T08:00:50+07:00",
    "indices": {
        "vnAqi": {
            "value": 87.0,
            "band": "trung_binh",
            "label": {"vi": "Trung bình", "en": "Moderate"},
            "colour": "#ffff00",
        }
    },
}
_READING_EXAMPLE = PICTURE_EXAMPLE["feeds"]["air"]["sensors"][0]
DETAIL_EXAMPLE = {
    **SUMMARY_EXAMPLE,
    "registry": {
        "id": "air-kim-lien",
        "kind": "air",
        "name": "Kim Liên",
        "lat": 21.008,
        "lon": 105.839,
        "district": "dong-da",
        "site_type": "urban",
    },
    "latest": _READING_EXAMPLE,
    "aggregates": [_READING_EXAMPLE],
    "alerts": [],
}
NOT_FOUND = problem("No such sensor in the city registry.", "no sensor 'air-nowhere' in the city registry")


def _summary(
    sensor: Sensor, city: City, latest: SensorReading | None, alerts: list[Alert]
) -> dict[str, object]:
    district = city.district(sensor.district)
    if latest is None:
        health = Health.no_data
    elif any(alert.rule.startswith("health.") for alert in alerts):
        health = Health.degraded
    else:
        health = Health.ok
    return {
        "id": sensor.id,
        "feed": sensor.kind,
        "name": sensor.name,
        "lat": sensor.lat,
        "lon": sensor.lon,
        "district": sensor.district,
        "district_name": district.name if district else sensor.district,
        "health": health,
        "open_alerts": len(alerts),
        "last_event_time": latest.last_event_time if latest else None,
        "indices": latest.indices if latest else {},
    }


@router.get(
    "/sensors",
    response_model=SensorList,
    response_model_by_alias=True,
    summary="Every sensor of the city registry, with its health and index",
    description=(
        "The registry's sensors (optionally of one feed or district), each with its health, its open "
        "alerts, the event time of its newest reading and its official index. Sensors that have not "
        "reported are listed too (`health: no-data`). Needs the operator or admin role."
    ),
    responses={
        200: {"content": {"application/json": {"example": {"items": [SUMMARY_EXAMPLE]}}}},
        **AUTH_RESPONSES,
    },
)
async def list_sensors(
    request: Request,
    _: Operator,
    feed: Annotated[list[Feed], Query(description=f"Only these feeds: {', '.join(FEEDS)}.")] = [],  # noqa: B006
    district: Annotated[list[str], Query(description="Only these district ids.")] = [],  # noqa: B006
) -> SensorList:
    settings = request.app.state.settings
    city = load_city(settings.city)
    zone = ZoneInfo(city.timezone)
    store = RedisPicture(settings, request.app.state.redis)
    latest: dict[str, SensorReading] = {}
    for name in feed or FEEDS:
        for aggregate in await store.latest_aggregates(name, settings.windows_of(name)[0].label):
            latest[aggregate.sensor_id] = sensor_reading(aggregate, city, zone)
    alerts: dict[str, list[Alert]] = defaultdict(list)
    for alert in await store.unresolved_alerts():
        alerts[alert.entity].append(alert)
    items = [
        SensorSummary(**_summary(sensor, city, latest.get(sensor.id), alerts[sensor.id]))
        for sensor in city.sensors
        if (not feed or sensor.kind in feed) and (not district or sensor.district in district)
    ]
    return SensorList(items=items)


@router.get(
    "/sensors/{sensor_id}",
    response_model=SensorDetail,
    response_model_by_alias=True,
    summary="One sensor: registry entry, latest reading, recent windows, health, alerts",
    description=(
        "The registry entry of the sensor, its newest reading (the shortest window), its newest window of "
        "every configured length, its health and its open and acknowledged alerts. Needs the operator or "
        "admin role."
    ),
    responses={
        200: {"content": {"application/json": {"example": DETAIL_EXAMPLE}}},
        404: NOT_FOUND,
        **AUTH_RESPONSES,
    },
)
async def get_sensor(request: Request, sensor_id: str, _: Operator) -> SensorDetail:
    settings = request.app.state.settings
    city = load_city(settings.city)
    sensor = city.sensor(sensor_id)
    if sensor is None:
        raise HTTPException(404, f"no sensor {sensor_id!r} in the city registry")
    zone = ZoneInfo(city.timezone)
    store = RedisPicture(settings, request.app.state.redis)
    windows = [spec.label for spec in settings.windows_of(sensor.kind)]
    aggregates = await store.sensor_aggregates(sensor.kind, sensor.id, windows)
    readings = [sensor_reading(aggregate, city, zone) for aggregate in aggregates]
    latest = readings[0] if readings and readings[0].window == windows[0] else None
    alerts = [alert for alert in await store.unresolved_alerts() if alert.entity == sensor.id]
    return SensorDetail(
        **_summary(sensor, city, latest, alerts),
        registry=sensor,
        latest=latest,
        aggregates=readings,
        alerts=alerts,
    )
