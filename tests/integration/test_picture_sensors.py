"""``GET /v1/picture`` and ``GET /v1/sensors[/{id}]`` against a real Redis: indices with their bands, the
worst per district, open alerts by severity and feed, freshness, and each sensor's health."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

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
# A minute ago, to the minute: the windows' readings are recent enough to count as reporting.
T0 = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))  # a minute before each test starts: see ``fresh_t0``
OLD = datetime.fromisoformat("2016-03-01T08:00:00+07:00")


@pytest.fixture(autouse=True)
def fresh_t0() -> None:
    """The picture judges "reporting" by the API's clock: the data's time is set when each test starts,
    not when the module is imported (in the whole suite that is many minutes earlier)."""
    global T0
    T0 = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).replace(second=0, microsecond=0) - timedelta(minutes=1)


def aggregate(
    feed: str,
    sensor_id: str,
    window: str,
    field: str,
    value: float,
    at: datetime | None = None,
    **indices: IndexValue,
) -> PublishedWindow:
    length = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600}[window]
    at = at or T0
    start = at.replace(minute=0) if window == "1h" else at
    return WindowAggregate(
        feed=feed,
        sensor_id=sensor_id,
        window=window,
        window_start=start,
        window_end=start + timedelta(seconds=length),
        count=3,
        last_event_time=at + timedelta(seconds=50),
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
        "byFeed": {"air": 2, "water": 0, "traffic": 1, "transit": 0, "crowd": 0},
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


@pytest.fixture
def with_unregistered(settings, city_with_data):
    """On top of the city: a live `unregistered:` air sensor, one of 2016, and a registry station of 2016."""

    async def write() -> None:
        redis = connect(settings)
        try:
            await RedisPicture(settings, redis).write_aggregates(
                [
                    aggregate(
                        "air", "unregistered:lowcost-42", "1m", "pm25", 40, vnAqi=index(90, "trung_binh")
                    ),
                    aggregate(
                        "air", "unregistered:lowcost-42", "1h", "pm25", 38, vnAqi=index(88, "trung_binh")
                    ),
                    aggregate("air", "unregistered:backfill-2016", "1m", "pm25", 20, at=OLD),
                    aggregate("air", "air-hoan-kiem", "1m", "pm25", 20, at=OLD),
                    # Reporting every 5 minutes into 1-minute windows: 10 minutes ago still counts (the
                    # 15-minute floor), 20 minutes ago does not.
                    aggregate("air", "air-trung-yen", "1m", "pm25", 20, at=T0 - timedelta(minutes=9)),
                    aggregate("air", "air-minh-khai", "1m", "pm25", 20, at=T0 - timedelta(minutes=20)),
                ]
            )
        finally:
            await redis.aclose()

    asyncio.run(write())


@pytest.fixture
def client_with_unregistered(settings, with_unregistered):
    with TestClient(create_app(settings)) as client:
        yield client


def test_picture_counts_registry_sensors_reporting_recently_and_unregistered_ones_apart(
    client_with_unregistered,
):
    picture = client_with_unregistered.get("/v1/picture", headers=OPERATOR).json()
    air = picture["freshness"]["air"]
    # Two registry stations reported a minute ago and Trung Yên 9 minutes ago; Minh Khai's newest reading
    # is 20 minutes old and Hoàn Kiếm's of 2016: in the picture, not reporting.
    assert air["sensorsReporting"] == 3
    assert air["sensorsStale"] == 2
    assert air["sensorsRegistered"] == len(load_city("hanoi").sensors_of("air"))
    # The unregistered ones are counted apart: one live, one of 2016, neither in the registry's count.
    assert air["unregisteredReporting"] == 1
    assert air["unregisteredInPicture"] == 2
    shown = {s["sensorId"]: s for s in picture["feeds"]["air"]["sensors"]}
    lowcost = shown["unregistered:lowcost-42"]
    assert (lowcost["registered"], lowcost["lat"], lowcost["lon"]) == (False, None, None)
    assert shown["air-us-embassy"]["registered"] is True
    assert shown["air-us-embassy"]["lat"] == load_city("hanoi").sensor("air-us-embassy").lat


def test_an_unregistered_sensor_has_its_own_page_and_the_list_keeps_it_apart(client_with_unregistered):
    client = client_with_unregistered
    page = client.get("/v1/sensors/unregistered:lowcost-42", headers=OPERATOR)
    assert page.status_code == 200, page.text
    sensor = page.json()
    assert sensor["registered"] is False
    assert sensor["registry"] is None
    assert (sensor["lat"], sensor["lon"]) == (None, None)
    assert sensor["feed"] == "air"
    assert sensor["health"] == "ok"
    assert sensor["latest"]["window"] == "1m"
    assert [a["window"] for a in sensor["aggregates"]] == ["1m", "1h"]
    assert sensor["indices"]["vnAqi"]["value"] == 90.0

    missing = client.get("/v1/sensors/unregistered:never-sent", headers=OPERATOR)
    assert missing.status_code == 404
    assert "unregistered:never-sent" in missing.json()["detail"]

    everything = client.get("/v1/sensors", headers=OPERATOR).json()["items"]
    unregistered_ids = {"unregistered:lowcost-42", "unregistered:backfill-2016"}
    assert {item["id"] for item in everything if not item["registered"]} == unregistered_ids
    only_unregistered = client.get("/v1/sensors", params={"registration": "unregistered"}, headers=OPERATOR)
    assert {item["id"] for item in only_unregistered.json()["items"]} == unregistered_ids
    assert all(item["lat"] is None for item in only_unregistered.json()["items"])
    only_registry = client.get("/v1/sensors", params={"registration": "registered"}, headers=OPERATOR).json()
    assert len(only_registry["items"]) == len(load_city("hanoi").sensors)
    in_a_district = client.get("/v1/sensors", params={"district": "ba-dinh"}, headers=OPERATOR).json()
    assert all(item["registered"] for item in in_a_district["items"])
