"""NGSI-LD value forms and units (issue 18): each form the specification and the Smart Data Models use
reads as the plain value ioc keeps, and a unit ioc cannot convert is a problem naming the attribute."""

from __future__ import annotations

import pytest

from ioc.ingest.edge import Accepted, Rejected, prepare_ngsi_ld
from ioc.models.ngsi_ld import NgsiLdError, from_ngsi_ld, read_entity
from ioc.models.ngsi_ld_values import (
    AttributeValue,
    ValueFormError,
    in_unit,
    read_attribute,
    split_interval,
    utc_if_naive,
)
from tests.unit.test_ngsi_ld_messages import OPTIONS

AIR = {
    "id": "urn:ngsi-ld:AirQualityObserved:air-kim-lien",
    "type": "AirQualityObserved",
    "dateObserved": "2026-01-15T01:00:00Z",
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (12.5, AttributeValue(12.5)),
        ({"type": "Property", "value": 12.5}, AttributeValue(12.5)),
        (
            {"type": "Property", "value": 12.5, "unitCode": "GP", "observedAt": "2026-01-15T01:00:00Z"},
            AttributeValue(12.5, "GP", "2026-01-15T01:00:00Z"),
        ),
        (
            {"type": "Number", "value": 12.5, "metadata": {"unitCode": {"value": "GQ"}}},
            AttributeValue(12.5, "GQ"),
        ),
        (
            {"type": "Relationship", "object": "urn:ngsi-ld:Device:d1"},
            AttributeValue("urn:ngsi-ld:Device:d1"),
        ),
        (
            {"type": "Property", "value": {"@type": "DateTime", "@value": "2026-01-15T01:00:00Z"}},
            AttributeValue("2026-01-15T01:00:00Z"),
        ),
        ({"@type": "DateTime", "@value": "2026-01-15T01:00:00Z"}, AttributeValue("2026-01-15T01:00:00Z")),
        ({"type": "DateTime", "value": "2016-03-15T11:00:00"}, AttributeValue("2016-03-15T11:00:00")),
        (
            {"type": "Point", "coordinates": [105.8, 21.0]},
            AttributeValue({"type": "Point", "coordinates": [105.8, 21.0]}),
        ),
        (
            ["NO3, 0.01, M1, Concentration of Nitrates"],
            AttributeValue(["NO3, 0.01, M1, Concentration of Nitrates"]),
        ),
    ],
)
def test_every_value_form_reads_as_its_value(raw, expected):
    assert read_attribute(raw) == expected


def test_a_multi_instance_attribute_reads_its_default_instance_else_the_first():
    first = {"type": "Property", "value": 40.0, "datasetId": "urn:ngsi-ld:Dataset:a"}
    default = {"type": "Property", "value": 41.0}
    second = {"type": "Property", "value": 42.0, "datasetId": "urn:ngsi-ld:Dataset:b"}
    assert read_attribute([first, default, second]).value == 41.0
    assert read_attribute([first, second]).value == 40.0
    assert from_ngsi_ld(AIR | {"pm25": [first, second]}).pm25 == 40.0


@pytest.mark.parametrize(
    ("name", "value", "code", "unit", "expected"),
    [
        ("co", 1.5, "GP", "µg/m³", 1500.0),
        ("pm25", 35, "GQ", "µg/m³", 35),
        ("pm25", 35, None, "µg/m³", 35),
        ("averageVehicleSpeed", 10.0, "MTS", "km/h", 36.0),
        ("averageVehicleSpeed", 52.6, "KMH", "km/h", 52.6),
        ("temperature", 293.15, "KEL", "°C", 20.0),
        ("temperature", 50.0, "FAH", "°C", 10.0),
        ("relativeHumidity", 0.54, None, "%", 54.0),  # SDM: a fraction
        ("relativeHumidity", 0.54, "C62", "%", 54.0),
        ("relativeHumidity", 54, "P1", "%", 54),
        ("conductivity", 0.005, None, "µS/cm", 50.0),  # SDM: S/m
        ("conductivity", 0.5, "H61", "µS/cm", 500.0),
        ("occupancy", 31, "P1", "1", 0.31),
        ("pm25", "35", "GP", "µg/m³", "35"),  # not a number: the model rejects it
    ],
)
def test_units_convert_to_the_unit_ioc_keeps(name, value, code, unit, expected):
    assert in_unit(name, value, code, unit) == pytest.approx(expected)


def test_a_unit_ioc_cannot_convert_names_the_attribute_and_rejects_the_entity():
    with pytest.raises(ValueFormError, match="'ppm' is not one ioc converts to µg/m³"):
        in_unit("no2", 0.05, "ppm", "µg/m³")
    entity = AIR | {"no2": {"type": "Property", "value": 0.05, "unitCode": "ppm"}}
    with pytest.raises(NgsiLdError) as error:
        from_ngsi_ld(entity)
    assert error.value.attribute == "no2"
    outcome = prepare_ngsi_ld(entity, **OPTIONS)
    assert isinstance(outcome, Rejected) and outcome.field == "no2" and "ppm" in outcome.reason


def test_a_unit_code_converts_a_measure_in_either_ngsi_form():
    normalized = AIR | {"co": {"type": "Property", "value": 1.2, "unitCode": "GP"}}
    v2 = AIR | {"co": {"type": "Number", "value": 1.2, "metadata": {"unitCode": {"value": "GP"}}}}
    assert from_ngsi_ld(normalized).co == from_ngsi_ld(v2).co == pytest.approx(1200.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-03-15T11:00:00", "2016-03-15T11:00:00Z"),
        ("2016-03-15T11:00:00.5", "2016-03-15T11:00:00.5Z"),
        ("2016-03-15T11:00:00Z", "2016-03-15T11:00:00Z"),
        ("2016-03-15T18:00:00+07:00", "2016-03-15T18:00:00+07:00"),
        ("2016-03-15", "2016-03-15"),  # a date is not a date-time: left for the model to refuse
        ("15/03/2016 11:00", "15/03/2016 11:00"),
    ],
)
def test_date_times_without_offset_are_utc(text, expected):
    assert utc_if_naive(text) == expected


def test_an_interval_date_observed_gives_the_start_and_the_length():
    assert split_interval("2016-12-07T11:10:00/2016-12-07T11:15:00") == (
        "2016-12-07T11:10:00",
        "2016-12-07T11:15:00",
    )
    assert split_interval("2016-12-07T11:10:00Z") is None
    with pytest.raises(ValueFormError):
        split_interval("2016-12-07T11:10:00/PT5M")
    event = from_ngsi_ld(
        {
            "id": "urn:ngsi-ld:TrafficFlowObserved:traffic-kim-ma",
            "type": "TrafficFlowObserved",
            "dateObserved": "2026-01-15T01:00:00/2026-01-15T01:05:00",
            "intensity": 80,
        }
    )
    assert event.interval_seconds == 300 and event.date_observed.isoformat() == "2026-01-15T01:00:00+00:00"


def test_without_date_observed_the_latest_observed_at_is_the_event_time():
    entity = {
        "id": "urn:ngsi-ld:AirQualityObserved:air-kim-lien",
        "type": "AirQualityObserved",
        "pm25": {"type": "Property", "value": 30.0, "observedAt": "2026-01-15T01:00:00Z"},
        "pm10": {"type": "Property", "value": 50.0, "observedAt": "2026-01-15T01:01:00"},
    }
    assert from_ngsi_ld(entity).date_observed.isoformat() == "2026-01-15T01:01:00+00:00"
    with pytest.raises(Exception, match="dateObserved"):
        from_ngsi_ld({k: v for k, v in entity.items() if k not in ("pm25", "pm10")} | {"pm25": 3.0})


def test_unknown_attributes_are_dropped_and_named_never_a_rejection():
    entity = AIR | {
        "pm25": 30.0,
        "windSpeed": {"type": "Property", "value": 0.64},
        "airQualityLevel": "moderate",
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [105.8, 21.0]}},
    }
    reading = read_entity(entity)
    assert set(reading.dropped) == {"windSpeed", "airQualityLevel"}  # location: descriptive, not counted
    outcome = prepare_ngsi_ld(entity, **OPTIONS)
    assert isinstance(outcome, Accepted) and set(outcome.dropped) == {"windSpeed", "airQualityLevel"}
    assert b"windSpeed" not in outcome.value


def test_a_needed_measure_missing_or_unreadable_is_still_a_rejection_naming_it():
    traffic = {
        "id": "urn:ngsi-ld:TrafficFlowObserved:traffic-kim-ma",
        "type": "TrafficFlowObserved",
        "dateObserved": "2026-01-15T01:00:00Z",
        "intervalSeconds": 60,
        "windSpeed": 3.0,
    }
    outcome = prepare_ngsi_ld(traffic, **OPTIONS)
    assert isinstance(outcome, Rejected) and outcome.field == "intensity"
    outcome = prepare_ngsi_ld(traffic | {"intensity": {"type": "Property", "value": "many"}}, **OPTIONS)
    assert isinstance(outcome, Rejected) and outcome.field == "intensity"


def test_water_measures_under_smart_data_models_names_are_kept_as_n_and_p():
    entity = {
        "id": "urn:ngsi-ld:WaterQualityObserved:water-ho-tay",
        "type": "WaterQualityObserved",
        "dateObserved": "2026-01-15T01:00:00Z",
        "NH4": 1.0,
        "PO4": 1.0,
        "O2": 6.5,
    }
    event = from_ngsi_ld(entity)
    assert event.nh4_n == pytest.approx(14.0067 / 18.0385) and event.po4_p == pytest.approx(30.9738 / 94.9714)
    assert event.dissolved_oxygen == 6.5
    both = read_entity(entity | {"nh4N": 2.0})  # ioc's own name wins; the SDM one is dropped, named
    assert both.attributes["nh4N"] == 2.0 and "NH4" in both.dropped
