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
from tests.fiware import sdm_validator

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


def ids(response) -> set[str]:
    assert response.status_code == 200, response.text
    return {entity["id"].removeprefix("urn:ngsi-ld:AirQualityObserved:") for entity in response.json()}


def query(client, **params):
    return client.get(
        "/ngsi-ld/v1/entities", params={"type": "AirQualityObserved", **params}, headers=OPERATOR
    )


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("pm25>50", {"air-kim-lien"}),
        ("pm25>50|no2>=41", {"air-kim-lien", "air-hang-dau"}),
        ("pm25>50;no2>=41", set()),
        ("pm25==80..81;relativeHumidity>60", {"air-kim-lien"}),  # normalized values: % for humidity
        ("no2", {"air-hang-dau"}),
        ('name=="Hàng Đậu"', {"air-hang-dau"}),
        ("pm25.observedAt==2026-01-15T08:00:50+07:00", {"air-kim-lien"}),
        ("dateObserved<2026-01-15T01:00:00Z", set()),
        ("(pm25<50|no2>40);name~=^H", {"air-hang-dau"}),
    ],
)
def test_q_filters_on_the_normalized_values(client, q, expected):
    assert ids(query(client, q=q)) == expected


def test_q_with_key_values_filters_in_ioc_s_units_and_answers_in_the_smart_data_models(client):
    response = query(client, q="relativeHumidity>=65", options="keyValues")
    [entity] = response.json()
    assert entity["id"] == KIM_LIEN and entity["relativeHumidity"] == pytest.approx(0.65)


@pytest.mark.parametrize(
    ("params", "expected"),
    [  # Hoàn Kiếm lake (105.852, 21.028): Hàng Đậu ~1.7 km north, Kim Liên ~2.6 km south-west
        (
            {"georel": "near;maxDistance==2000", "geometry": "Point", "coordinates": "[105.852,21.028]"},
            {"air-hang-dau"},
        ),
        (
            {"georel": "near;minDistance==2000", "geometry": "Point", "coordinates": "[105.852,21.028]"},
            {"air-kim-lien"},
        ),
        (
            {"georel": "near;maxDistance==3000", "geometry": "Point", "coordinates": "[105.852,21.028]"},
            {"air-kim-lien", "air-hang-dau"},
        ),
        (
            {
                "georel": "within",
                "geometry": "Polygon",
                "coordinates": "[[[105.83,21.0],[105.85,21.0],[105.85,21.02],[105.83,21.02],[105.83,21.0]]]",
            },
            {"air-kim-lien"},
        ),
        ({"georel": "intersects", "geometry": "Point", "coordinates": "[105.847,21.043]"}, {"air-hang-dau"}),
        (
            {
                "georel": "near;maxDistance==3000",
                "geometry": "Point",
                "coordinates": "[105.852,21.028]",
                "q": "pm25",
            },
            {"air-kim-lien"},
        ),
    ],
)
def test_geo_queries_on_the_sensors_registry_locations(client, params, expected):
    assert ids(query(client, **params)) == expected


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"q": "pm25>>5"}, "not a value"),
        ({"q": "(pm25>5"}, "expected ')'"),
        ({"q": "pm25==high"}, "quote text"),
        ({"georel": "near", "geometry": "Point", "coordinates": "[105.85,21.03]"}, "near needs maxDistance"),
        ({"georel": "within", "geometry": "Polygon", "coordinates": "[105.85,21.03]"}, "a Polygon's ring"),
        ({"georel": "within"}, "together"),
    ],
)
def test_a_bad_query_is_a_bad_request_data_problem_saying_why(client, params, says):
    response = query(client, **params)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["type"] == ERRORS + "BadRequestData" and says in problem["detail"]


def test_count_gives_every_match_and_limit_one_page(client):
    first = query(client, count="true", limit=1)
    second = query(client, count="true", limit=1, offset=1)
    assert first.headers["NGSILD-Results-Count"] == second.headers["NGSILD-Results-Count"] == "2"
    assert len(first.json()) == len(second.json()) == 1 and ids(first) | ids(second) == {
        "air-kim-lien",
        "air-hang-dau",
    }
    assert "NGSILD-Results-Count" not in query(client).headers
    assert query(client, count="true", q="pm25>1000").headers["NGSILD-Results-Count"] == "0"


def test_the_served_key_values_entities_validate_against_the_smart_data_models_schema(client):
    entities = query(client, options="keyValues").json()
    assert len(entities) == 2
    for entity in entities:
        assert list(sdm_validator("AirQualityObserved").iter_errors(entity)) == [], entity


def test_attrs_gives_only_those_attributes_and_leaves_out_entities_with_none(client):
    [entity] = query(client, attrs="pm25,windSpeed", options="keyValues").json()
    assert entity == {"id": KIM_LIEN, "type": "AirQualityObserved", "pm25": 80.5}
    both = query(client, attrs="pm25,no2,name", q="name")
    assert ids(both) == {"air-kim-lien", "air-hang-dau"}
    assert {frozenset(e) for e in both.json()} == {
        frozenset({"id", "type", "pm25", "name"}),
        frozenset({"id", "type", "no2", "name"}),
    }
    one = client.get(
        f"/ngsi-ld/v1/entities/{KIM_LIEN}", params={"attrs": "relativeHumidity"}, headers=OPERATOR
    )
    assert set(one.json()) == {"id", "type", "relativeHumidity"}
