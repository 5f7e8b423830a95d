"""The Smart Data Models' published example entities (``tests/fixtures/fiware``) and what ioc reads of
them: the measures, in ioc's units, that each must arrive with."""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

FIXTURES = Path(__file__).parent / "fixtures" / "fiware"
TYPES = ("AirQualityObserved", "WaterQualityObserved", "TrafficFlowObserved", "CrowdFlowObserved")
FORMS = ("example.json", "example-normalized.json", "example.jsonld", "example-normalized.jsonld")
# The Hanoi sensors whose external_ids name the examples' entities (ioc/city/hanoi.json).
MAPPED_SENSORS = {
    "AirQualityObserved": "air-hang-dau",
    "WaterQualityObserved": "water-ho-hoan-kiem",
    "TrafficFlowObserved": "traffic-kim-ma",
    "CrowdFlowObserved": "crowd-ho-guom-walking-street",
}
# What every form of each example says, in ioc's units: relativeHumidity 0.54 (SDM: a fraction) is 54 %,
# conductivity 0.005 S/m is 50 µS/cm, NO3 0.01 mg/L of nitrate is 0.00226 mg/L as N.
EXPECTED: dict[str, dict[str, Any]] = {
    "AirQualityObserved": {
        "dateObserved": "2016-03-15T11:00:00Z",
        "so2": 11.0,
        "temperature": 12.2,
        "relativeHumidity": 54.0,
    },
    "WaterQualityObserved": {
        "dateObserved": "2017-01-31T06:45:00Z",
        "pH": 7.4,
        "temperature": 24.4,
        "conductivity": 50.0,
        "no2N": 0.09,
        "po4P": 0.5,
        "no3N": 0.01 * 14.0067 / 62.0049,
    },
    "TrafficFlowObserved": {
        "dateObserved": "2016-12-07T11:10:00Z",
        "intervalSeconds": 300,
        "laneId": 1,
        "intensity": 197,
        "averageVehicleSpeed": 52.6,
        "occupancy": 0.76,
    },
    # peopleCountTowards/Away and averageHeadwayTime are not ioc's: dropped and counted.
    "CrowdFlowObserved": {
        "dateObserved": "2018-08-07T11:10:00Z",
        "intervalSeconds": 300,
        "peopleCount": 100,
        "congested": False,
        "direction": "inbound",
    },
}
# CO: 500 as published; the normalized forms say mg/m³ (GP), ioc keeps µg/m³.
EXPECTED_CO = {"example.json": 500.0, "example.jsonld": 500.0}
EXPECTED_CO |= {"example-normalized.json": 500_000.0, "example-normalized.jsonld": 500_000.0}


def published(entity_type: str, form: str) -> dict[str, Any]:
    """One published example entity, as the repository has it."""
    return json.loads((FIXTURES / f"{entity_type}.{form}").read_text(encoding="utf-8"))


def every_example() -> list[tuple[str, str]]:
    """(type, form) of the sixteen published examples."""
    return [(entity_type, form) for entity_type in TYPES for form in FORMS]


def as_unregistered(entity: dict[str, Any], tag: str) -> dict[str, Any]:
    """The entity with its id in ioc's ``urn:ngsi-ld:<Type>:unregistered:<id>`` form, ``tag`` added so that
    the four forms of one example are four sensors (else three would be duplicates of the first)."""
    prefix = f"urn:ngsi-ld:{entity['type']}:"
    return entity | {"id": f"{prefix}unregistered:{entity['id'].removeprefix(prefix)}-{tag}"}


def expected_measures(entity_type: str, form: str) -> dict[str, Any]:
    expected = dict(EXPECTED[entity_type])
    if entity_type == "AirQualityObserved":
        expected["co"] = EXPECTED_CO[form]
        if form != "example.json":  # the v2 keyValues example has co2 where the others have no2
            expected["no2"] = 69.0
    return expected


# The Smart Data Models' JSON schemas (copies in FIXTURES) and the documents they refer to, under the URLs
# their $ref name, so that a validation reads nothing from the network.
_SDM_RAW = "https://raw.githubusercontent.com/smart-data-models"
SCHEMA_REFERENCES = {
    "https://smart-data-models.github.io/data-models/common-schema.json": "common-schema.json",
    f"{_SDM_RAW}/dataModel.Environment/master/Environment-schema.json": "Environment-schema.json",
}
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


@cache
def sdm_validator(entity_type: str) -> Draft202012Validator:
    """A validator of the type's published schema that checks ``date-time`` formats too (RFC 3339: a
    date-time has its offset), which jsonschema checks only with an optional package."""
    registry = Registry().with_resources(
        (url, Resource.from_contents(_fixture(name), default_specification=DRAFT202012))
        for url, name in SCHEMA_REFERENCES.items()
    )
    formats = FormatChecker()

    @formats.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True  # a format applies to strings only; "type" judges the rest
        if not _RFC3339.fullmatch(value):
            raise ValueError(f"{value!r} is not an RFC 3339 date-time with its offset")
        datetime.fromisoformat(value)
        return True

    return Draft202012Validator(
        _fixture(f"{entity_type}.schema.json"), registry=registry, format_checker=formats
    )


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))
