"""Gas concentrations in ppm and ppb (UN/CEFACT 59 and 61) on ingest (issue 18): converted to the µg/m³ ioc
keeps, at 25 °C and 1 atm (µg/m³ = ppb × M / 24.45, the reference's figures), in every NGSI form; ppm of
something that is not a gas is a rejection naming the attribute."""

from __future__ import annotations

import pytest

from ioc.ingest.edge import Accepted, Rejected, prepare_ngsi_ld
from ioc.models.ngsi_ld import from_ngsi_ld
from ioc.models.ngsi_ld_values import ValueFormError, in_unit
from tests.unit.test_ngsi_ld_messages import OPTIONS

AIR = {
    "id": "urn:ngsi-ld:AirQualityObserved:air-kim-lien",
    "type": "AirQualityObserved",
    "dateObserved": "2026-01-15T01:00:00Z",
}


@pytest.mark.parametrize(
    ("name", "value", "code", "expected"),
    [  # the air quality reference: NO2 1 ppb = 1.88 µg/m³, SO2 2.62, O3 1.96; CO 1 ppm = 1.145 mg/m³
        ("no2", 1, "61", 1.88),
        ("so2", 1, "61", 2.62),
        ("o3", 1, "61", 1.96),
        ("co", 1, "59", 1145.0),
        ("no2", 0.1, "59", 188.2),  # 100 ppb
        ("o3", 0, "61", 0.0),
    ],
)
def test_a_gas_in_ppm_or_ppb_becomes_ug_m3(name, value, code, expected):
    assert in_unit(name, value, code, "µg/m³") == pytest.approx(expected, rel=2e-3)


def test_ppm_of_what_is_not_a_gas_is_refused_naming_it():
    with pytest.raises(
        ValueFormError, match=r"'59' \(parts per million\) is for a gas \(co, no2, o3, so2\); pm25"
    ):
        in_unit("pm25", 10, "59", "µg/m³")
    with pytest.raises(ValueFormError, match="known: GQ, GP, and 59 \\(ppm\\), 61 \\(ppb\\) for a gas"):
        in_unit("no2", 10, "ppb", "µg/m³")
    outcome = prepare_ngsi_ld(AIR | {"pm25": {"type": "Property", "value": 10, "unitCode": "59"}}, **OPTIONS)
    assert isinstance(outcome, Rejected) and outcome.field == "pm25" and "for a gas" in outcome.reason


def test_every_form_of_a_gas_in_ppb_arrives_in_ug_m3():
    normalized = AIR | {
        "no2": {"type": "Property", "value": 21.3, "unitCode": "61"},
        "co": {"type": "Property", "value": 0.8, "unitCode": "59"},
        "o3": [  # multi-instance: the default one is read
            {"type": "Property", "value": 30, "unitCode": "61", "datasetId": "urn:ngsi-ld:Dataset:raw"},
            {"type": "Property", "value": 25, "unitCode": "61"},
        ],
    }
    v2 = AIR | {
        "no2": {"type": "Number", "value": 21.3, "metadata": {"unitCode": {"value": "61"}}},
        "co": {"type": "Number", "value": 0.8, "metadata": {"unitCode": {"value": "59"}}},
        "o3": {"type": "Number", "value": 25, "metadata": {"unitCode": {"value": "61"}}},
    }
    for entity in (normalized, v2):
        event = from_ngsi_ld(entity)
        assert event.no2 == pytest.approx(21.3 * 46.0055 / 24.45)
        assert event.co == pytest.approx(800 * 28.010 / 24.45)
        assert event.o3 == pytest.approx(25 * 47.997 / 24.45)
    edge = prepare_ngsi_ld(normalized, **OPTIONS)
    assert isinstance(edge, Accepted) and edge.event.no2 == pytest.approx(40.08, rel=1e-3)  # type: ignore[attr-defined]
