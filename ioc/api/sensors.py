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
from ioc.api.auth import OperatorCaller
from ioc.api.picture import PICTURE_EXAMPLE, SensorReading, sensor_reading
from ioc.api.responses import AUTH_RESPONSES, CamelModel, Feed, problem
from ioc.api.scope import districts_for
from ioc.city import UNREGISTERED, UNREGISTERED_PREFIX, City, Sensor, load_city
from ioc.feeds import FEEDS
from ioc.indices.current import DescribedIndex
from ioc.models.alert import Alert

router = APIRouter(prefix="/v1", tags=["sensors"])


class Health(StrEnum):
    ok = "ok"
    degraded = "degraded"  # a health rule fires: silent, stuck, spiking or sending invalid readings
    no_data = "no-data"  # nothing from it in the picture yet


class Registration(StrEnum):
    registered = "registered"  # in the city registry
    unregistered = "unregistered"  # sent as `unregistered:<id>`: no registry entry, no location


class SensorSummary(CamelModel):
    id: str
    feed: str
    name: str
    registered: bool = Field(
        default=True,
        description="False for an `unregistered:` sensor: it has no registry entry, district or location.",
    )
    lat: float | None = Field(description="Its registry location; null for an `unregistered:` sensor.")
    lon: float | None
    district: str = Field(description="Its district id; `unregistered` for an `unregistered:` sensor.")
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
    registry: Sensor | None = Field(
        description="The city registry's entry; null for an `unregistered:` sensor."
    )
    latest: SensorReading | None = Field(description="Its newest window of the shortest length.")
    aggregates: list[SensorReading] = Field(
        description="Its newest window of every configured length (e.g. 1m, 5m, 1h), shortest first."
    )
    alerts: list[Alert] = Field(description="Its open and acknowledged alerts, newest first.")


SUMMARY_EXAMPLE = {
    "id": "air-kim-lien",
    "feed": "air",
    "name": "Kim Liên",
    "registered": True,
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
UNREGISTERED_EXAMPLE = {
    **SUMMARY_EXAMPLE,
    "id": "unregistered:lowcost-42",
    "name": "unregistered:lowcost-42",
    "registered": False,
    "lat": None,
    "lon": None,
    "district": "unregistered",
    "districtName": "—",
}
NOT_FOUND = problem(
    "No such sensor: not in the city registry, nor an `unregistered:` sensor with a window in the picture.",
    "no sensor 'air-nowhere' in the city registry",
)


def _unregistered_summary(latest: SensorReading, alerts: list[Alert], feed: str) -> dict[str, object]:
    """An `unregistered:` sensor as a summary: what its readings say, no registry entry, no location."""
    degraded = any(alert.rule.startswith("health.") for alert in alerts)
    return {
        "id": latest.sensor_id,
        "feed": feed,
        "name": latest.sensor_id,
        "registered": False,
        "lat": None,
        "lon": None,
        "district": UNREGISTERED,
        "district_name": "—",
        "health": Health.degraded if degraded else Health.ok,
        "open_alerts": len(alerts),
        "last_event_time": latest.last_event_time,
        "indices": latest.indices,
    }


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
        "reported are listed too (`health: no-data`). Then the `unregistered:` sensors with a window in "
        "the picture (`registered: false`, no location, no district: a district filter leaves them out); "
        "`registration` keeps one kind. Needs the operator or admin role. A key scoped to districts gets "
        "their sensors only (no `unregistered:` ones: they have no district); a district outside its "
        "scope in `district` is a 403."
    ),
    responses={
        200: {
            "content": {"application/json": {"example": {"items": [SUMMARY_EXAMPLE, UNREGISTERED_EXAMPLE]}}}
        },
        **AUTH_RESPONSES,
    },
)
async def list_sensors(
    request: Request,
    caller: OperatorCaller,
    feed: Annotated[list[Feed], Query(description=f"Only these feeds: {', '.join(FEEDS)}.")] = [],  # noqa: B006
    district: Annotated[list[str], Query(description="Only these district ids.")] = [],  # noqa: B006
    registration: Annotated[
        Registration | None,
        Query(
            description="`registered`: only the registry's sensors; `unregistered`: only `unregistered:` "
            "sensors; absent: both.",
            examples=["unregistered"],
        ),
    ] = None,
) -> SensorList:
    district = list(districts_for(caller, district))
    settings = request.app.state.settings
    city = load_city(settings.city)
    zone = ZoneInfo(city.timezone)
    store = RedisPicture(settings, request.app.state.redis)
    latest: dict[str, SensorReading] = {}
    feed_of: dict[str, str] = {}
    for name in feed or FEEDS:
        for aggregate in await store.latest_aggregates(name, settings.windows_of(name)[0].label):
            latest[aggregate.sensor_id] = sensor_reading(aggregate, city, zone)
            feed_of[aggregate.sensor_id] = name
    alerts: dict[str, list[Alert]] = defaultdict(list)
    for alert in await store.unresolved_alerts():
        alerts[alert.entity].append(alert)
    items: list[SensorSummary] = []
    if registration != Registration.unregistered:
        items += [
            SensorSummary(**_summary(sensor, city, latest.get(sensor.id), alerts[sensor.id]))
            for sensor in city.sensors
            if (not feed or sensor.kind in feed) and (not district or sensor.district in district)
        ]
    if registration != Registration.registered and not district:
        items += [
            SensorSummary(**_unregistered_summary(reading, alerts[sensor_id], feed_of[sensor_id]))
            for sensor_id, reading in sorted(latest.items())
            if not reading.registered
        ]
    return SensorList(items=items)


@router.get(
    "/sensors/{sensor_id}",
    response_model=SensorDetail,
    response_model_by_alias=True,
    summary="One sensor: registry entry, latest reading, recent windows, health, alerts",
    description=(
        "The registry entry of the sensor, its newest reading (the shortest window), its newest window of "
        "every configured length, its health and its open and acknowledged alerts. An `unregistered:` "
        "sensor with a window in the picture answers the same way with `registered: false`, `registry`, "
        "`lat` and `lon` null. Needs the operator or admin role; a key scoped to districts gets a 404 for "
        "a sensor outside them (and for every `unregistered:` one), as for an unknown id."
    ),
    responses={
        200: {
            "content": {
                "application/json": {
                    "examples": {
                        "registered": {"summary": "A registry sensor", "value": DETAIL_EXAMPLE},
                        "unregistered": {
                            "summary": "An `unregistered:` sensor",
                            "value": {
                                **UNREGISTERED_EXAMPLE,
                                "registry": None,
                                "latest": None,
                                "aggregates": [],
                                "alerts": [],
                            },
                        },
                    }
                }
            }
        },
        404: NOT_FOUND,
        **AUTH_RESPONSES,
    },
)
async def get_sensor(request: Request, sensor_id: str, caller: OperatorCaller) -> SensorDetail:
    settings = request.app.state.settings
    city = load_city(settings.city)
    sensor = city.sensor(sensor_id)
    zone = ZoneInfo(city.timezone)
    store = RedisPicture(settings, request.app.state.redis)
    if not caller.sees(sensor.district if sensor else None):
        # Outside the key's scope: answered as an unknown sensor, so its existence is not revealed.
        raise HTTPException(404, f"no sensor {sensor_id!r} in the city registry")
    if sensor is None and sensor_id.startswith(UNREGISTERED_PREFIX):
        return await _unregistered_detail(request, store, city, zone, sensor_id)
    if sensor is None:
        raise HTTPException(404, f"no sensor {sensor_id!r} in the city registry")
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


async def _unregistered_detail(
    request: Request, store: RedisPicture, city: City, zone: ZoneInfo, sensor_id: str
) -> SensorDetail:
    """An `unregistered:` sensor's page: its windows from the first feed that has any, no registry entry."""
    settings = request.app.state.settings
    for feed in FEEDS:
        windows = [spec.label for spec in settings.windows_of(feed)]
        aggregates = await store.sensor_aggregates(feed, sensor_id, windows)
        if not aggregates:
            continue
        readings = [sensor_reading(aggregate, city, zone) for aggregate in aggregates]
        latest = readings[0] if readings[0].window == windows[0] else None
        alerts = [alert for alert in await store.unresolved_alerts() if alert.entity == sensor_id]
        summary = _unregistered_summary(latest or readings[0], alerts, feed)
        if latest is None:
            summary |= {"health": Health.no_data, "last_event_time": None, "indices": {}}
        return SensorDetail(**summary, registry=None, latest=latest, aggregates=readings, alerts=alerts)
    raise HTTPException(
        404, f"no sensor {sensor_id!r} in the city registry, and no reading from it in the picture"
    )
