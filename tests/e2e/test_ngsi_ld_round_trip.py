"""Issue 18's round trip through the real API, broker, worker and Redis: FIWARE's published example
entities upserted as an IoT Agent would, then read back as a context broker would, through
``GET /ngsi-ld/v1/entities``: every measure ioc keeps comes back unchanged."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from connectors.kafka import create_topics
from ioc.models.ngsi_ld import ENTITY_MODELS
from tests.conftest import TEST_KEYS, free_port
from tests.fiware import MAPPED_SENSORS, TYPES, published
from tests.processes import IocProcess, wait_for

pytestmark = pytest.mark.e2e


def kept_measures(entity: dict) -> dict[str, float]:
    """The published entity's measures that ioc keeps under their own name."""
    model = ENTITY_MODELS[entity["type"]]
    return {name: value for name, value in entity.items() if name in model.measure_names()}


def test_published_examples_come_back_with_their_measures_unchanged(settings, tmp_path):
    create_topics(settings)
    port = free_port()
    worker = IocProcess(["worker"], settings, tmp_path / "worker.log")
    api = IocProcess(["api", "--port", str(port)], settings, tmp_path / "api.log")
    base = f"http://127.0.0.1:{port}/ngsi-ld/v1"
    examples = [published(entity_type, "example.jsonld") for entity_type in TYPES]  # NGSI-LD keyValues
    try:
        response = wait_for(
            lambda: _post(f"{base}/entityOperations/upsert", examples), timeout=60, processes=[worker, api]
        )
        assert response.status_code == 204, response.text

        def read_back() -> dict[str, dict] | None:
            found = {}
            for entity in examples:
                url = f"{base}/entities/{quote(entity['id'], safe='')}"
                answer = httpx.get(url, params={"options": "keyValues"}, headers=_reader(), timeout=5)
                if answer.status_code != 200:
                    return None
                found[entity["type"]] = answer.json()
            return found

        found = wait_for(read_back, timeout=120, processes=[worker, api])
        for entity in examples:
            back = found[entity["type"]]
            assert back["id"] == f"urn:ngsi-ld:{entity['type']}:{MAPPED_SENSORS[entity['type']]}"
            sent = kept_measures(entity)
            assert sent and {name: back.get(name) for name in sent} == pytest.approx(sent)
            assert back["dateObserved"].startswith(entity["dateObserved"].split("/")[0].removesuffix("Z"))
    finally:
        assert api.stop() in (0, -15)
        worker.stop()


def _reader() -> dict[str, str]:
    return {"X-API-Key": TEST_KEYS["operator"]}


def _post(url: str, entities: list[dict]) -> httpx.Response | None:
    try:
        return httpx.post(url, json=entities, headers={"X-API-Key": TEST_KEYS["integrator"]}, timeout=30)
    except httpx.TransportError:
        return None  # the API is still starting
