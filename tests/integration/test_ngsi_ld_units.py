"""Gas concentrations in ppm and ppb on ingest (issue 18), against the real broker and Redis: an IoT Agent's
PATCH and upsert in ppb/ppm land on the raw topic in µg/m³; ppm of particulate matter is refused naming it,
and dead-lettered."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.integration.test_ingest import INTEGRATOR, client, dlq_records, raw_records  # noqa: F401 (client: a fixture)

pytestmark = pytest.mark.integration

KIM_LIEN = "urn:ngsi-ld:AirQualityObserved:air-kim-lien"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"


def test_a_patch_and_an_upsert_in_ppb_and_ppm_arrive_in_ug_m3(settings, client):  # noqa: F811
    patch = {
        "no2": {"type": "Property", "value": 21.3, "unitCode": "61", "observedAt": "2026-01-15T01:00:00Z"},
        "co": {"type": "Property", "value": 0.8, "unitCode": "59", "observedAt": "2026-01-15T01:00:00Z"},
    }
    path = f"/ngsi-ld/v1/entities/{quote(KIM_LIEN, safe='')}/attrs"
    assert client.patch(path, json=patch, headers=INTEGRATOR).status_code == 204
    upsert = [
        {
            "id": "urn:ngsi-ld:AirQualityObserved:air-hang-dau",
            "type": "AirQualityObserved",
            "dateObserved": {
                "type": "Property",
                "value": {"@type": "DateTime", "@value": "2026-01-15T01:01:00Z"},
            },
            "so2": {"type": "Property", "value": 4, "unitCode": "61"},
            "o3": {"type": "Property", "value": 0.031, "unitCode": "59"},
        }
    ]
    response = client.post("/ngsi-ld/v1/entityOperations/upsert", json=upsert, headers=INTEGRATOR)
    assert response.status_code == 204, response.text
    records = {r["key"]: r["value"] for r in raw_records(settings, "air", 2)}
    assert records["air-kim-lien"]["no2"] == pytest.approx(21.3 * 46.0055 / 24.45)  # 40.1 µg/m³
    assert records["air-kim-lien"]["co"] == pytest.approx(800 * 28.010 / 24.45)  # 916 µg/m³
    assert records["air-hang-dau"]["so2"] == pytest.approx(4 * 64.066 / 24.45)
    assert records["air-hang-dau"]["o3"] == pytest.approx(31 * 47.997 / 24.45)


def test_ppm_of_particulate_matter_is_refused_naming_it(settings, client):  # noqa: F811
    patch = {
        "pm25": {"type": "Property", "value": 0.02, "unitCode": "59", "observedAt": "2026-01-15T01:00:00Z"}
    }
    path = f"/ngsi-ld/v1/entities/{quote(KIM_LIEN, safe='')}/attrs"
    response = client.patch(path, json=patch, headers=INTEGRATOR)
    assert response.status_code == 400, response.text
    assert response.json()["type"] == ERRORS + "BadRequestData" and "pm25" in response.json()["detail"]
    [letter] = dlq_records(settings, 1)
    assert "for a gas" in str(letter["value"]) and "pm25" in str(letter["value"])
