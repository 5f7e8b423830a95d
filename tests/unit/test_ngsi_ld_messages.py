"""What an integrator reads when an NGSI-LD entity is refused: the attribute at fault and a clean reason
(issue 22: a value holding ": " was split there and a fragment printed; "is a air sensor")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ioc.city import load_city
from ioc.feeds.air.model import AirQualityObserved
from ioc.feeds.traffic.model import TrafficFlowObserved
from ioc.ingest.edge import Rejected, prepare, prepare_ngsi_ld
from ioc.models.base import with_article
from ioc.models.ngsi_ld import to_ngsi_ld

CITY = load_city("hanoi")
OPTIONS = {
    "city": CITY,
    "card_key": b"k" * 32,
    "card_key_id": "k1",
    "source": "unit",
    "received_at": datetime(2026, 1, 15, 1, 5, tzinfo=UTC),
}
TRAFFIC = TrafficFlowObserved.model_validate(
    {
        "sensorId": "traffic-kim-ma",
        "dateObserved": "2026-01-15T08:00:00+07:00",
        "intervalSeconds": 60,
        "intensity": 40,
        "averageVehicleSpeed": 32.0,
    }
)


def test_a_malformed_date_time_object_names_its_attribute_and_the_reason_whole():
    entity = to_ngsi_ld(TRAFFIC)
    # DateTime's keys without their "@": the repr of this value holds ": " itself.
    entity["dateObservedTo"] = {
        "type": "Property",
        "value": {"type": "DateTime", "value": "2026-01-15T01:01:00Z"},
    }
    outcome = prepare_ngsi_ld(entity, **OPTIONS)
    assert isinstance(outcome, Rejected)
    assert outcome.field == "dateObservedTo"
    assert outcome.reason == "Input should be a valid datetime (got an object)"


def test_a_malformed_date_time_string_is_quoted_and_an_unknown_type_or_id_named():
    entity = to_ngsi_ld(TRAFFIC, key_values=True) | {"dateObservedTo": "15/01/2026: 08:01"}
    outcome = prepare_ngsi_ld(entity, **OPTIONS)
    assert isinstance(outcome, Rejected) and outcome.field == "dateObservedTo"
    assert outcome.reason.startswith("Input should be a valid datetime")
    assert outcome.reason.endswith('(got "15/01/2026: 08:01")')

    outcome = prepare_ngsi_ld({"id": "urn:x", "type": "Parking"}, **OPTIONS)
    assert isinstance(outcome, Rejected) and outcome.field == "type"
    assert outcome.reason == (
        # The feeds' entity types, in the feeds' order (the registry's).
        "unsupported entity type, expected one of TrafficFlowObserved, AirQualityObserved, "
        'WaterQualityObserved, CrowdFlowObserved (got "Parking")'
    )
    outcome = prepare_ngsi_ld(to_ngsi_ld(TRAFFIC) | {"id": "urn:ngsi-ld:Parking: 7"}, **OPTIONS)
    assert isinstance(outcome, Rejected) and outcome.field == "id"
    assert outcome.reason == (
        "expected urn:ngsi-ld:TrafficFlowObserved:<sensor id>, or an id in a registry sensor's "
        'external_ids (got "urn:ngsi-ld:Parking: 7")'
    )


def test_a_sensor_of_another_feed_is_named_with_the_right_articles():
    air = to_ngsi_ld(
        AirQualityObserved.model_validate(
            {"sensorId": "air-kim-lien", "dateObserved": "2026-01-15T08:00:00+07:00", "pm25": 80.5}
        )
    )
    outcome = prepare_ngsi_ld(air | {"id": "urn:ngsi-ld:AirQualityObserved:traffic-kim-ma"}, **OPTIONS)
    assert isinstance(outcome, Rejected) and outcome.field == "sensorId"
    assert outcome.reason.startswith("is a traffic sensor in the registry, not an air one")
    reading = TRAFFIC.model_dump(mode="json", by_alias=True) | {"sensorId": "air-kim-lien"}
    outcome = prepare("traffic", reading, **OPTIONS)
    assert isinstance(outcome, Rejected)
    assert outcome.reason.startswith("is an air sensor in the registry, not a traffic one")


@pytest.mark.parametrize(
    ("word", "phrase"),
    [("air", "an air"), ("traffic", "a traffic"), ("water", "a water"), ("transit", "a transit")],
)
def test_the_article_goes_by_the_first_letter(word, phrase):
    assert with_article(word) == phrase


def test_the_entity_types_and_their_mappings_are_the_ones_each_feed_declares():
    from ioc.models.ngsi_ld import CONTEXTS, ENTITY_MODELS, INTERVAL_LENGTHS, SDM_MEASURES

    # Transit declares none: a fare tap is no Smart Data Models entity.
    assert list(ENTITY_MODELS) == [
        "TrafficFlowObserved",
        "AirQualityObserved",
        "WaterQualityObserved",
        "CrowdFlowObserved",
    ]
    assert [ENTITY_MODELS[name].feed for name in ENTITY_MODELS] == ["traffic", "air", "water", "crowd"]
    assert CONTEXTS["CrowdFlowObserved"][0].endswith("/dataModel.Transportation/master/context.jsonld")
    assert INTERVAL_LENGTHS == {
        "TrafficFlowObserved": "intervalSeconds",
        "AirQualityObserved": "averagingPeriod",
        "CrowdFlowObserved": "intervalSeconds",
    }
    assert list(SDM_MEASURES) == ["WaterQualityObserved"] and SDM_MEASURES["WaterQualityObserved"]["O2"] == (
        "dissolvedOxygen",
        1.0,
    )
