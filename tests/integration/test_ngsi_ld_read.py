"""ioc as an NGSI-LD context source (issue 18), against a real Redis: the live picture's sensors as
entities, normalized and keyValues, with the @context in a Link header or the body."""

from __future__ import annotations

import asyncio
from datetime import datetime
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from connectors.sinks.redis_picture import RedisPicture, connect
from ioc.api import create_app
from ioc.windows import FieldStats, WindowAggregate
from tests.conftest import TEST_KEYS

pytestmark = pytest.mark.integration

OPERATOR = {"X-API-Key": TEST_KEYS["operator"]}
INTEGRATOR = {"X-API-Key": TEST_KEYS["integrator"]}
KIM_LIEN = "urn:ngsi-ld:AirQualityObserved:air-kim-lien"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
AT = datetime.fromisoformat("2026-01-15T08:00:00+07:00")
CONTEXT_LINK = (
    "<https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld>; "
    'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
)


def window(sensor_id: str, **values: tuple[float, str]) -> WindowAggregate:
    return WindowAggregate(
        feed="air",
        sensor_id=sensor_id,
        window="1m",
        window_start=AT,
        window_end=AT.replace(minute=1),
        count=2,
        last_event_time=AT.replace(second=50),
        fields={
            name: FieldStats(count=2, mean=last - 1, min=last - 2, max=last, last=last, unit=unit)
            for name, (last, unit) in values.items()
        },
        indices={},
    )


async def write(settings, windows: list[WindowAggregate]) -> None:
    redis = connect(settings)
    try:
        await RedisPicture(settings, redis).write_aggregates([w.published() for w in windows])
    finally:
        await redis.aclose()


@pytest.fixture
def client(settings):
    asyncio.run(
        write(
            settings,
            [
                window("air-kim-lien", pm25=(80.5, "µg/m³"), relative_humidity=(65.0, "%")),
                window("air-hang-dau", no2=(41.0, "µg/m³")),
            ],
        )
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_query_by_type_gives_each_sensor_s_newest_values_normalized(client):
    response = client.get("/ngsi-ld/v1/entities", params={"type": "AirQualityObserved"}, headers=OPERATOR)
    assert response.status_code == 200, response.text
    assert response.headers["link"] == CONTEXT_LINK
    entities = {e["id"]: e for e in response.json()}
    kim_lien = entities["urn:ngsi-ld:AirQualityObserved:air-kim-lien"]
    assert kim_lien["type"] == "AirQualityObserved" and "@context" not in kim_lien
    assert kim_lien["pm25"] == {
        "type": "Property",
        "value": 80.5,
        "observedAt": "2026-01-15T01:00:50Z",
        "unitCode": "GQ",
    }
    assert kim_lien["relativeHumidity"]["value"] == 65.0 and kim_lien["relativeHumidity"]["unitCode"] == "P1"
    assert kim_lien["dateObserved"]["value"] == {"@type": "DateTime", "@value": "2026-01-15T01:00:50Z"}
    assert kim_lien["location"]["value"]["type"] == "Point"
    assert set(entities) == {
        "urn:ngsi-ld:AirQualityObserved:air-kim-lien",
        "urn:ngsi-ld:AirQualityObserved:air-hang-dau",
    }


def test_key_values_and_json_ld(client):
    response = client.get(
        "/ngsi-ld/v1/entities",
        params={"type": "AirQualityObserved", "options": "keyValues", "id": KIM_LIEN},
        headers=OPERATOR | {"Accept": "application/ld+json"},
    )
    assert response.status_code == 200 and response.headers["content-type"] == "application/ld+json"
    [entity] = response.json()
    assert entity["pm25"] == 80.5 and entity["relativeHumidity"] == pytest.approx(0.65)  # SDM: a fraction
    assert entity["@context"][0].endswith("dataModel.Environment/master/context.jsonld")


def test_retrieve_one_by_its_id_or_an_external_one(client):
    path = "/ngsi-ld/v1/entities/{}"
    mine = client.get(path.format("urn:ngsi-ld:AirQualityObserved:air-hang-dau"), headers=OPERATOR)
    assert mine.status_code == 200 and mine.json()["no2"]["value"] == 41.0
    for external in (
        "Madrid-AmbientObserved-28079004-2016-03-15T11:00:00",
        "urn:ngsi-ld:AirQualityObserved:Madrid-AmbientObserved-28079004-2016-03-15T11:00:00",
    ):
        theirs = client.get(path.format(quote(external, safe="")), headers=OPERATOR)
        assert theirs.status_code == 200 and theirs.json() == mine.json()


@pytest.mark.parametrize(
    ("path", "headers", "status", "kind"),
    [
        ("/ngsi-ld/v1/entities", OPERATOR, 400, ERRORS + "BadRequestData"),
        (
            "/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:air-tay-mo",
            OPERATOR,
            404,
            ERRORS + "ResourceNotFound",
        ),
        ("/ngsi-ld/v1/entities/urn:ngsi-ld:Parking:p1", OPERATOR, 404, ERRORS + "ResourceNotFound"),
        ("/ngsi-ld/v1/entities?type=AirQualityObserved", {}, 401, "about:blank"),
        ("/ngsi-ld/v1/entities?type=AirQualityObserved", INTEGRATOR, 403, "about:blank"),
    ],
)
def test_refusals_are_problem_details(client, path, headers, status, kind):
    response = client.get(path, headers=headers)
    assert response.status_code == status and response.json()["type"] == kind


def test_a_type_ioc_does_not_have_matches_nothing(client):
    response = client.get("/ngsi-ld/v1/entities", params={"type": "Parking"}, headers=OPERATOR)
    assert response.status_code == 200 and response.json() == []
