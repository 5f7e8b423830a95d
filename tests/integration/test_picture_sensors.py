"""``GET /v1/picture`` and ``GET /v1/sensors[/{id}]`` against a real Redis: indices with their bands, the
worst per district, open alerts by severity and feed, freshness, and each sensor's health."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from connectors.sinks.redis_picture import RedisPicture, connect
from ioc.api import create_app
from ioc.api.examples import EXAMPLES
from ioc.city import load_city
from ioc.indices.current import IndexValue
from ioc.models.alert import Alert, AlertChange, AlertEvent, AlertStatus
from ioc.models.anomaly import Severity
from ioc.windows import FieldStats, PublishedWindow, WindowAggregate
from tests.conftest import TEST_KEYS

pytestmark = pytest.mark.integration

OPERATOR = {"X-API-Key": TEST_KEYS["operator"]}
T0 = datetime.fromisoformat("2026-11-23T08:00:00+07:00")


def aggregate(
    feed: str, sensor_id: str, window: str, field: str, value: float, **indices: IndexValue
) -> PublishedWindow:
    length = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600}[window]
    start = T0.replace(minute=0) if window == "1h" else T0
    return WindowAggregate(
        feed=feed,
        sensor_id=sensor_id,
        window=window,
        window_start=start,
        window_end=start + timedelta(seconds=length),
        count=3,
        last_event_time=T0 + timedelta(seconds=50),
        fields={field: FieldStats(count=3, mean=value, min=value, max=value, last=value, unit="µg/m³")},
        indices=indices,
    ).published()


def index(value: float, band: str | None = None) -> IndexValue:
    return IndexValue(value=value, band=band)


def alert(
    ident: str, rule: str, feed: str, entity: str, district: str, severity: str, status: str
) -> AlertEvent:
    base = Alert.model_validate(EXAMPLES["open_alert"])
    body = base.model_copy(
        update={
            "id": ident,
            "rule": rule,
            "feed": feed,
            "entity": entity,
            "district": district,
            "severity": Severity(severity),
            "status": AlertStatus(status),
            "episode_start": T0,
        }
    )
    return AlertEvent(change=AlertChange.opened, revision=1, at=T0, alert=body)


@pytest.fixture
def city_with_data(settings):
    async def write() -> None:
        redis = connect(settings)
        picture = RedisPicture(settings, redis)
        try:
            await picture.write_aggregates(
                [
                    # Two air stations in Ba Đình: the district shows the worse one.
                    aggregate("air", "air-thanh-cong", "1m", "pm25", 30, vnAqi=index(62, "trung_binh")),
                    aggregate("air", "air-us-embassy", "1m", "pm25", 90, vnAqi=index(163, "xau")),
                    aggregate("air", "air-us-embassy", "1h", "pm25", 85, vnAqi=index(160, "xau")),
                    aggregate("water", "water-ho-truc-bach", "15m", "do", 5, vnWqi=index(48, "kem")),
                    aggregate(
                        "traffic", "traffic-kim-lien", "5m", "speed", 12, levelOfService=index(30, "F")
                    ),
                    aggregate("transit", "metro-2a-lang", "15m", "taps", 1, ridership=index(40)),
                    aggregate("transit", "metro-2a-thai-ha", "15m", "taps", 1, ridership=index(25)),
                ]
            )
            for event in (
                alert("a1", "air.aqi_band", "air", "air-us-embassy", "ba-dinh", "critical", "open"),
                alert("a2", "health.silent", "air", "air-thanh-cong", "ba-dinh", "warning", "acknowledged"),
                alert("a3", "traffic.incident", "traffic", "traffic-kim-lien", "dong-da", "warning", "open"),
                alert("a4", "traffic.incident", "traffic", "traffic-lang", "dong-da", "warning", "resolved"),
            ):
                await picture.write_alert(event)
        finally:
            await redis.aclose()

    asyncio.run(write())


@pytest.fixture
def client(settings, city_with_data):
    with TestClient(create_app(settings)) as client:
        yield client


def test_picture_shows_indices_worst_per_district_alerts_and_freshness(client):
    picture = client.get("/v1/picture", headers=OPERATOR).json()

    embassy = next(s for s in picture["feeds"]["air"]["sensors"] if s["sensorId"] == "air-us-embassy")
    assert embassy["indices"]["vnAqi"] == {
        "value": 163.0,
        "band": "xau",
        "label": {"vi": "Xấu", "en": "Bad"},
        "colour": "#ff0000",
    }
    districts = {d["id"]: d for d in picture["districts"]}
    assert set(districts) == {d.id for d in load_city("hanoi").districts}
    ba_dinh = districts["ba-dinh"]
    assert ba_dinh["indices"]["vnAqi"]["value"] == 163.0  # the worse of 62 and 163
    assert ba_dinh["indices"]["vnWqi"]["band"] == "kem"
    assert ba_dinh["openAlerts"] == {"critical": 1, "warning": 1, "info": 0}
    dong_da = districts["dong-da"]
    assert dong_da["indices"]["levelOfService"]["label"]["en"] == "Level of service F"
    assert dong_da["indices"]["ridership"] == {"value": 65.0, "band": None, "label": None, "colour": None}
    assert dong_da["openAlerts"] == {"critical": 0, "warning": 1, "info": 0}  # the resolved one is not open
    assert districts["tay-ho"]["indices"] == {}

    assert picture["openAlerts"] == {
        "total": 3,
        "bySeverity": {"critical": 1, "warning": 2, "info": 0},
        "byFeed": {"air": 2, "water": 0, "traffic": 1, "transit": 0},
    }
    city = load_city("hanoi")
    air = picture["freshness"]["air"]
    assert air["sensorsReporting"] == 2
    assert air["sensorsRegistered"] == len(city.sensors_of("air"))
    assert datetime.fromisoformat(air["lastEventTime"]) == T0 + timedelta(seconds=50)
    assert air["ageSeconds"] > 0
    assert picture["freshness"]["water"]["sensorsReporting"] == 1


def test_sensors_lists_the_whole_registry_with_health(client):
    items = client.get("/v1/sensors", headers=OPERATOR).json()["items"]
    assert len(items) == len(load_city("hanoi").sensors)
    by_id = {item["id"]: item for item in items}
    assert by_id["air-us-embassy"]["health"] == "ok"
    assert by_id["air-us-embassy"]["openAlerts"] == 1
    assert by_id["air-us-embassy"]["indices"]["vnAqi"]["band"] == "xau"
    assert by_id["air-thanh-cong"]["health"] == "degraded"  # an acknowledged health alert still counts
    assert by_id["air-tay-mo"]["health"] == "no-data"
    assert by_id["air-tay-mo"]["lastEventTime"] is None

    air_in_ba_dinh = client.get(
        "/v1/sensors", params={"feed": "air", "district": "ba-dinh"}, headers=OPERATOR
    ).json()["items"]
    assert {item["id"] for item in air_in_ba_dinh} == {"air-thanh-cong", "air-us-embassy"}


def test_one_sensor_has_its_registry_entry_windows_and_alerts(client):
    sensor = client.get("/v1/sensors/air-us-embassy", headers=OPERATOR).json()
    assert sensor["registry"]["district"] == "ba-dinh"
    assert sensor["latest"]["window"] == "1m"
    assert [a["window"] for a in sensor["aggregates"]] == ["1m", "1h"]  # no 5m window reached Redis
    assert sensor["aggregates"][1]["indices"]["vnAqi"]["value"] == 160.0
    assert [a["id"] for a in sensor["alerts"]] == ["a1"]

    missing = client.get("/v1/sensors/air-nowhere", headers=OPERATOR)
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no sensor 'air-nowhere' in the city registry"
