"""FIWARE as it really is (issue 18), against the real broker and Redis: every Smart Data Models example
entity as published, sent the way a context broker or an IoT Agent sends it, lands in its raw topic with
the measures ioc keeps, in ioc's units; the attributes ioc does not keep are counted in the answer."""

from __future__ import annotations

from collections import Counter

import pytest

from ioc.models.ngsi_ld import ENTITY_MODELS
from tests.fiware import (
    FORMS,
    MAPPED_SENSORS,
    TYPES,
    as_unregistered,
    every_example,
    expected_measures,
    published,
)
from tests.integration.test_ingest import INTEGRATOR, client, raw_records  # noqa: F401 (client: a fixture)

pytestmark = pytest.mark.integration


def notification(entities: list[dict]) -> dict:
    return {
        "id": "urn:ngsi-ld:Notification:fiware-examples",
        "type": "Notification",
        "subscriptionId": "urn:ngsi-ld:Subscription:ioc",
        "notifiedAt": "2026-01-15T01:00:05.123Z",
        "data": entities,
    }


def test_every_published_example_is_accepted_through_a_notification(settings, client):  # noqa: F811
    examples = every_example()
    entities = [as_unregistered(published(entity_type, form), form) for entity_type, form in examples]
    response = client.post(
        "/v1/ngsi-ld/notify",
        json=notification(entities),
        headers=INTEGRATOR | {"Content-Type": "application/ld+json"},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["rejected"] == [] and result["accepted"] == 16
    assert result["acceptedByFeed"] == {"air": 4, "water": 4, "traffic": 4, "crowd": 4}
    dropped = result["droppedAttributes"]
    assert dropped["windSpeed"] == 4 and dropped["measurand"] == 4 and dropped["reversedLane"] == 4
    # A crowd counter's flows by direction are not ioc's (it keeps the people in the zone), nor the
    # headway of the traffic and crowd examples.
    assert dropped["peopleCountTowards"] == dropped["peopleCountAway"] == 4
    assert dropped["averageHeadwayTime"] == 8
    assert "location" not in dropped and "pm25" not in dropped

    for entity_type, model in ENTITY_MODELS.items():
        records = {r["key"]: r["value"] for r in raw_records(settings, model.feed, 4)}
        for (of_type, form), entity in zip(examples, entities, strict=True):
            if of_type != entity_type:
                continue
            sensor = entity["id"].removeprefix(f"urn:ngsi-ld:{entity_type}:")
            value = records[sensor]
            expected = expected_measures(entity_type, form)
            assert {name: value.get(name) for name in expected} == pytest.approx(expected), form
            assert not set(value) & set(dropped)  # nothing dropped is in the event
            model.model_validate(value)  # what the worker reads


def test_a_published_example_with_a_needed_measure_unreadable_is_rejected_naming_it(settings, client):  # noqa: F811
    entity = as_unregistered(published("TrafficFlowObserved", "example-normalized.jsonld"), "bad")
    entity["intensity"] = {"type": "Property", "value": "197 vehicles"}
    entity["averageVehicleSpeed"] = {"type": "Property", "value": 52.6, "unitCode": "knots"}
    response = client.post("/v1/ngsi-ld/notify", json=notification([entity]), headers=INTEGRATOR)
    assert response.status_code == 422, response.text
    [rejected] = response.json()["rejected"]
    assert rejected["field"] == "averageVehicleSpeed" and "knots" in rejected["reason"]
    assert Counter(p["field"] for p in rejected["problems"]) == Counter({"averageVehicleSpeed": 1})


@pytest.mark.parametrize("form", FORMS)
def test_published_ids_reach_the_registry_sensors_that_list_them(settings, client, form):  # noqa: F811
    entities = [published(entity_type, form) for entity_type in TYPES]  # ids as published
    response = client.post("/v1/ngsi-ld/notify", json=notification(entities), headers=INTEGRATOR)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(TYPES)
    for entity_type, model in ENTITY_MODELS.items():
        [record] = raw_records(settings, model.feed, 1)
        assert record["key"] == record["value"]["sensorId"] == MAPPED_SENSORS[entity_type]
        expected = expected_measures(entity_type, form)
        assert {name: record["value"].get(name) for name in expected} == pytest.approx(expected)
