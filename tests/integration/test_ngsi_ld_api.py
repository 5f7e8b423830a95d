"""The NGSI-LD write API an IoT Agent calls (issue 18), against the real broker and Redis: the published
Smart Data Models examples through an upsert and a PATCH land in Kafka on the right sensors; refusals
are NGSI-LD problem details and dead letters."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from ioc.models.ngsi_ld import ENTITY_MODELS
from tests.conftest import TEST_KEYS
from tests.fiware import (
    FORMS,
    MAPPED_SENSORS,
    TYPES,
    as_unregistered,
    every_example,
    expected_measures,
    published,
)
from tests.integration.test_ingest import (  # noqa: F401 (client: a fixture)
    INTEGRATOR,
    INTEGRATOR_ID,
    client,
    count,
    dlq_records,
    raw_records,
)

pytestmark = pytest.mark.integration

UPSERT = "/ngsi-ld/v1/entityOperations/upsert"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
LD = INTEGRATOR | {"Content-Type": "application/ld+json"}
KIM_LIEN = "urn:ngsi-ld:AirQualityObserved:air-kim-lien"
AT = {"dateObserved": "2026-01-15T01:00:00Z"}
OPERATOR = {"X-API-Key": TEST_KEYS["operator"]}


def attrs_path(entity_id: str) -> str:
    return f"/ngsi-ld/v1/entities/{quote(entity_id, safe='')}/attrs"


def assert_measures(record: dict, entity_type: str, form: str) -> None:
    expected = expected_measures(entity_type, form)
    assert {name: record["value"].get(name) for name in expected} == pytest.approx(expected), form


def test_every_published_example_is_accepted_through_an_upsert(settings, client):  # noqa: F811
    examples = every_example()
    entities = [as_unregistered(published(t, form), form) for t, form in examples]
    response = client.post(f"{UPSERT}?options=update", json=entities, headers=LD)
    assert response.status_code == 204, response.text
    for entity_type, model in ENTITY_MODELS.items():
        records = {r["key"]: r for r in raw_records(settings, model.feed, 4)}
        for (of_type, form), entity in zip(examples, entities, strict=True):
            if of_type == entity_type:
                sensor = entity["id"].removeprefix(f"urn:ngsi-ld:{entity_type}:")
                assert_measures(records[sensor], entity_type, form)

    # As published, the four forms of one example are one observation of one sensor: duplicates, a 204.
    again = [published(t, form) for t, form in examples]
    assert client.post(UPSERT, json=again, headers=INTEGRATOR).status_code == 204
    for entity_type, model in ENTITY_MODELS.items():
        assert count(settings, settings.raw_topic(model.feed)) == 5
        keys = [r["key"] for r in raw_records(settings, model.feed, 5)]
        assert keys.count(MAPPED_SENSORS[entity_type]) == 1


def test_an_upsert_with_refused_entities_is_a_207_naming_each(settings, client):  # noqa: F811
    good = published("AirQualityObserved", "example-normalized.jsonld")
    bad = published("TrafficFlowObserved", "example.jsonld") | {"intensity": -1}
    unknown = {"id": "urn:ngsi-ld:Parking:p1", "type": "Parking"}
    response = client.post(UPSERT, json=[good, bad, unknown, "x"], headers=INTEGRATOR)
    assert response.status_code == 207, response.text
    result = response.json()
    assert result["success"] == [good["id"]]
    assert [e["entityId"] for e in result["errors"]] == [bad["id"], unknown["id"], "(entity 3)"]
    first = result["errors"][0]["error"]
    assert first["type"] == ERRORS + "BadRequestData" and first["status"] == 400
    assert first["detail"].startswith("intensity: Input should be greater than or equal to 0")
    [record] = raw_records(settings, "air", 1)
    assert record["key"] == MAPPED_SENSORS["AirQualityObserved"]
    letters = dlq_records(settings, 3)
    assert {r["value"]["source"] for r in letters} == {f"http POST {UPSERT} key={INTEGRATOR_ID}"}

    # Nothing accepted: the request failed, each entity named.
    response = client.post(UPSERT, json=[bad, unknown], headers=INTEGRATOR)
    assert response.status_code == 400 and response.json()["type"] == ERRORS + "BadRequestData"
    assert response.json()["detail"].startswith(f"every entity was refused: {bad['id']}: intensity")


@pytest.mark.parametrize("form", FORMS)
def test_every_published_example_is_accepted_through_a_patch(settings, client, form):  # noqa: F811
    for entity_type in TYPES:
        entity = published(entity_type, form)
        attributes = {k: v for k, v in entity.items() if k not in ("id", "type")}
        response = client.patch(attrs_path(entity["id"]), json=attributes, headers=LD)
        assert response.status_code == 204, response.text
    for entity_type, model in ENTITY_MODELS.items():
        [record] = raw_records(settings, model.feed, 1)
        assert record["key"] == MAPPED_SENSORS[entity_type]
        assert_measures(record, entity_type, form)


def test_an_iot_agent_patch_of_measures_with_observed_at(settings, client):  # noqa: F811
    attributes = {
        "pm25": {"type": "Property", "value": 35.5, "observedAt": "2026-01-15T01:00:00Z"},
        "no2": {"type": "Property", "value": 0.041, "unitCode": "GP", "observedAt": "2026-01-15T01:00:00Z"},
        "batteryLevel": {"type": "Property", "value": 0.9},
    }
    path = attrs_path(KIM_LIEN)
    assert client.patch(path, json=attributes, headers=INTEGRATOR).status_code == 204
    [record] = raw_records(settings, "air", 1)
    assert record["value"]["dateObserved"] == "2026-01-15T01:00:00Z"
    assert record["value"]["no2"] == pytest.approx(41.0) and "batteryLevel" not in record["value"]


@pytest.mark.parametrize(
    ("entity_id", "body", "headers", "status", "kind"),
    [
        (KIM_LIEN, {"pm25": -3} | AT, INTEGRATOR, 400, "BadRequestData"),
        (KIM_LIEN, {"pm25": 3}, INTEGRATOR, 400, "BadRequestData"),  # no dateObserved nor observedAt
        ("urn:ngsi-ld:AirQualityObserved:air-nowhere", {"pm25": 3} | AT, INTEGRATOR, 404, "ResourceNotFound"),
        ("urn:ngsi-ld:Parking:p1", {"status": "free"}, INTEGRATOR, 404, "ResourceNotFound"),
        (KIM_LIEN, [1], INTEGRATOR, 400, "BadRequestData"),
        (KIM_LIEN, {"pm25": 3}, {}, 401, None),
        (KIM_LIEN, {"pm25": 3}, OPERATOR, 403, None),
    ],
)
def test_patch_refusals_are_problem_details(settings, client, entity_id, body, headers, status, kind):  # noqa: F811
    response = client.patch(attrs_path(entity_id), json=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    problem = response.json()
    assert problem["type"] == (ERRORS + kind if kind else "about:blank")
    assert problem["status"] == status and problem["title"] and problem["detail"]


def test_a_body_that_is_not_json_is_an_invalid_request(settings, client):  # noqa: F811
    response = client.post(UPSERT, content=b"[{", headers=LD)
    assert response.status_code == 400 and response.json()["type"] == ERRORS + "InvalidRequest"
    response = client.post(UPSERT, content=b"a,b", headers=INTEGRATOR | {"Content-Type": "text/csv"})
    assert response.status_code == 415 and response.json()["type"] == ERRORS + "InvalidRequest"
    assert count(settings, settings.dlq_topic) == 0
