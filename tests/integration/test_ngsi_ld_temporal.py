"""NGSI-LD temporal queries (issue 18) against a real PostgreSQL history: GET /ngsi-ld/v1/temporal/entities
by type, id, q (at each window), geo-query and attrs, with timerel, lastN, pagination and the count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from ioc.api import create_app
from ioc.history.store import HistoryStore, WindowRow, upgrade
from ioc.ngsi_ld.temporal import TooManyWindows, WindowSpan, windows_of
from tests.conftest import TEST_KEYS

pytestmark = pytest.mark.integration

OPERATOR = {"X-API-Key": TEST_KEYS["operator"]}
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
START = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
PREFIX = "urn:ngsi-ld:AirQualityObserved:"
SPAN = {
    "timerel": "between",
    "timeAt": START.isoformat(),
    "endTimeAt": (START + timedelta(minutes=5)).isoformat(),
}
# Five 1-minute windows each: Hoàn Kiếm's pm25 spikes once, Hàng Đậu alone has no2, Kim Liên climbs; one
# sensor outside the registry. Hoàn Kiếm and Hàng Đậu are within 2 km of the lake, Kim Liên 2.6 km away.
MEANS = {
    "air-hoan-kiem": lambda n: {"pm25": 95.0 if n == 2 else 30.0},
    "air-hang-dau": lambda n: {"pm25": 20.0, "no2": 40.0 + n},
    "air-kim-lien": lambda n: {"pm25": 50.0 + n, "relative_humidity": 60.0 + n},
    "unregistered:lowcost-7": lambda n: {"pm25": 10.0},
}
LAKE = {"geometry": "Point", "coordinates": "[105.852,21.028]"}


@pytest.fixture
def client(database):
    settings = database
    upgrade(settings.database_address)
    rows = [
        WindowRow(
            "air", "1m", sensor, START + timedelta(minutes=n), 1, START + timedelta(minutes=n), means(n), "{}"
        )
        for sensor, means in MEANS.items()
        for n in range(5)
    ]
    rows.append(
        WindowRow("air", "1m", "air-kim-lien", START - timedelta(days=2), 1, START, {"pm25": 1.0}, "{}")
    )
    rows.append(WindowRow("air", "15m", "air-tay-mo", START, 1, START, {"pm25": 1.0}, "{}"))  # not 1m
    store = HistoryStore(settings.database_address)
    try:
        store.write(rows, [], [])
        with pytest.raises(TooManyWindows, match="more than 19 windows"):  # the cap, on the same windows
            windows_of(
                store.connection, WindowSpan("air", "1m", START, START + timedelta(hours=1), ("pm25",)), 19
            )
        assert (
            len(
                windows_of(
                    store.connection,
                    WindowSpan("air", "1m", START, START + timedelta(hours=1), ("pm25",)),
                    20,
                )
            )
            == 4
        )
    finally:
        store.close()
    with TestClient(create_app(settings)) as client:
        yield client


def temporal(client, **params):
    return client.get(
        "/ngsi-ld/v1/temporal/entities",
        params={"type": "AirQualityObserved", **SPAN, **params},
        headers=OPERATOR,
    )


def sensors(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [entity["id"].removeprefix(PREFIX) for entity in response.json()]


def test_by_type_every_sensor_with_windows_in_the_span_sorted_paged_and_counted(client):
    every = temporal(client, count="true")
    assert sensors(every) == ["air-hang-dau", "air-hoan-kiem", "air-kim-lien", "unregistered:lowcost-7"]
    assert every.headers["NGSILD-Results-Count"] == "4" and every.headers["Link"]
    kim_lien = every.json()[2]
    assert [(p["value"], p["observedAt"]) for p in kim_lien["pm25"]] == [
        (50.0 + n, (START + timedelta(minutes=n)).isoformat().replace("+00:00", "Z")) for n in range(5)
    ]
    assert {p["unitCode"] for p in kim_lien["relativeHumidity"]} == {"P1"} and "no2" not in kim_lien
    first, second = temporal(client, limit=2, count="true"), temporal(client, limit=2, offset=2, count="true")
    assert sensors(first) + sensors(second) == sensors(every)
    assert first.headers["NGSILD-Results-Count"] == second.headers["NGSILD-Results-Count"] == "4"
    before = temporal(client, timerel="before", timeAt=START.isoformat())
    assert sensors(before) == ["air-kim-lien"] and before.json()[0]["pm25"][0]["value"] == 1.0


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "pm25>90"}, ["air-hoan-kiem"]),  # at one window of five
        ({"q": "pm25>90;no2"}, []),  # never both at one window
        ({"q": "no2>=43|pm25==52"}, ["air-hang-dau", "air-kim-lien"]),
        ({"q": "relativeHumidity>63"}, ["air-kim-lien"]),  # ioc's units: %
        ({"q": 'name=="Hàng Đậu"'}, ["air-hang-dau"]),  # the registry's name, as the current entity has it
        ({"q": "pm25.observedAt>=2026-12-01T01:04:00Z;pm25>53"}, ["air-kim-lien"]),
        (
            {"id": f"{PREFIX}air-kim-lien,{PREFIX}unregistered:lowcost-7,{PREFIX}air-nowhere"},
            ["air-kim-lien", "unregistered:lowcost-7"],
        ),
        ({"georel": "near;maxDistance==2000", **LAKE}, ["air-hang-dau", "air-hoan-kiem"]),
        ({"georel": "near;maxDistance==2000", **LAKE, "q": "pm25<25"}, ["air-hang-dau"]),
        ({"georel": "near;maxDistance==2000", **LAKE, "id": f"{PREFIX}air-kim-lien"}, []),
        ({"attrs": "no2"}, ["air-hang-dau"]),
        ({"attrs": "windSpeed"}, []),
        ({"timerel": "after", "timeAt": "2026-12-01T01:05:00"}, []),
    ],
)
def test_filters_choose_the_entities(client, params, expected):
    assert sensors(temporal(client, **params)) == expected


def test_a_matching_entity_comes_whole_and_attrs_last_n_and_temporal_values_shape_it(client):
    [spike] = temporal(client, q="pm25>90").json()
    assert [p["value"] for p in spike["pm25"]] == [30.0, 30.0, 95.0, 30.0, 30.0]
    [pairs] = temporal(
        client, id=f"{PREFIX}air-kim-lien", attrs="relativeHumidity", lastN=2, options="temporalValues"
    ).json()
    assert set(pairs) == {"id", "type", "relativeHumidity"}
    assert pairs["relativeHumidity"] == {
        "type": "Property",
        "values": [
            [pytest.approx(0.63), "2026-12-01T01:03:00Z"],
            [pytest.approx(0.64), "2026-12-01T01:04:00Z"],
        ],
    }


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"type": ""}, 400, "type: required"),
        ({"q": "pm25>"}, 400, "expected a value"),
        ({"georel": "near", **LAKE}, 400, "near needs maxDistance"),
        ({"timerel": "during"}, 422, "timerel"),
    ],
)
def test_refusals(client, params, status, says):
    response = temporal(client, **params)
    assert response.status_code == status, response.text
    assert says in response.text
    if status == 400:
        assert response.json()["type"] == ERRORS + "BadRequestData"


def test_a_type_ioc_does_not_have_matches_nothing(client):
    response = temporal(client, type="Parking", count="true")
    assert (
        response.status_code == 200
        and response.json() == []
        and response.headers["NGSILD-Results-Count"] == "0"
    )
