"""Entity ids to sensors (issue 18): an entity names its sensor by ioc's own URN, by an id in a sensor's
``external_ids`` (whole, or after ``urn:ngsi-ld:<Type>:``) or by its ``refDevice``; any other id follows
the ``unregistered:`` rule of every other way in."""

from __future__ import annotations

import json

import pytest

from ioc.ingest.edge import Accepted, Rejected, prepare_ngsi_ld
from tests.fiware import MAPPED_SENSORS, every_example, expected_measures, published
from tests.unit.test_ngsi_ld_messages import OPTIONS

TRAFFIC = {
    "type": "TrafficFlowObserved",
    "dateObserved": "2026-01-15T01:00:00Z",
    "intervalSeconds": 60,
    "intensity": 20,
}


@pytest.mark.parametrize(("entity_type", "form"), every_example())
def test_each_published_example_reaches_its_mapped_sensor_with_its_id_as_published(entity_type, form):
    outcome = prepare_ngsi_ld(published(entity_type, form), **OPTIONS)
    assert isinstance(outcome, Accepted), outcome.detail
    assert outcome.key == MAPPED_SENSORS[entity_type]
    value = json.loads(outcome.value)
    expected = expected_measures(entity_type, form)
    assert {name: value.get(name) for name in expected} == pytest.approx(expected)


@pytest.mark.parametrize(
    "ref_device",
    [
        "urn:ngsi-ld:Device:valladolid-osm-60821110-lane-1",
        ["urn:ngsi-ld:Device:other", "urn:ngsi-ld:Device:valladolid-osm-60821110-lane-1"],
        {"type": "Relationship", "object": "urn:ngsi-ld:Device:valladolid-osm-60821110-lane-1"},
    ],
)
def test_ref_device_names_the_sensor_when_the_entity_id_does_not(ref_device):
    entity = TRAFFIC | {"id": "urn:ngsi-ld:TrafficFlowObserved:vd-1-2026", "refDevice": ref_device}
    outcome = prepare_ngsi_ld(entity, **OPTIONS)
    assert isinstance(outcome, Accepted) and outcome.key == "traffic-kim-ma"


def test_the_entity_id_wins_over_ref_device():
    entity = TRAFFIC | {
        "id": "urn:ngsi-ld:TrafficFlowObserved:traffic-nga-tu-so",
        "refDevice": "urn:ngsi-ld:Device:valladolid-osm-60821110-lane-1",
    }
    assert prepare_ngsi_ld(entity, **OPTIONS).key == "traffic-nga-tu-so"


def test_unmapped_ids_follow_the_unregistered_rule():
    unregistered = prepare_ngsi_ld(
        TRAFFIC | {"id": "urn:ngsi-ld:TrafficFlowObserved:unregistered:vd-9"}, **OPTIONS
    )
    assert isinstance(unregistered, Accepted) and unregistered.key == "unregistered:vd-9"
    unknown = prepare_ngsi_ld(TRAFFIC | {"id": "urn:ngsi-ld:TrafficFlowObserved:vd-9"}, **OPTIONS)
    assert (
        isinstance(unknown, Rejected)
        and unknown.field == "sensorId"
        and "unregistered:vd-9" in unknown.reason
    )
    other_form = prepare_ngsi_ld(TRAFFIC | {"id": "vd-9"}, **OPTIONS)
    assert (
        isinstance(other_form, Rejected) and other_form.field == "id" and "external_ids" in other_form.reason
    )


def test_an_external_id_of_a_sensor_of_another_feed_is_refused_as_such():
    entity = TRAFFIC | {"id": "waterqualityobserved:Sevilla:D1"}
    outcome = prepare_ngsi_ld(entity, **OPTIONS)
    assert isinstance(outcome, Rejected) and outcome.field == "sensorId"
    assert "a water sensor in the registry, not a traffic one" in outcome.reason
