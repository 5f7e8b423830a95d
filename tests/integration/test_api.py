"""The API against a real Redis (and Kafka for readiness): roles, health, the OpenAPI document."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from connectors.sinks.redis_picture import RedisPicture, connect
from ioc.api import create_app
from ioc.windows import FieldStats, WindowAggregate
from tests.conftest import TEST_KEYS, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as client:
        yield client


def key(role: str) -> dict[str, str]:
    return {"X-API-Key": TEST_KEYS[role]}


def test_picture_needs_a_key(client):
    response = client.get("/v1/picture")
    assert response.status_code == 401
    assert "X-API-Key" in response.json()["detail"]
    response = client.get("/v1/picture", headers={"X-API-Key": "nope"})
    assert response.status_code == 401
    assert "not one of IOC_API_KEYS" in response.json()["detail"]


def test_picture_is_for_operators_and_admins_not_integrators(client):
    response = client.get("/v1/picture", headers=key("integrator"))
    assert response.status_code == 403
    assert (
        response.json()["detail"]
        == "This endpoint needs the admin or operator role; your key has integrator."
    )
    assert client.get("/v1/picture", headers=key("operator")).status_code == 200
    assert client.get("/v1/picture", headers=key("admin")).status_code == 200


def test_picture_shows_an_older_window_never_over_a_newer_one(settings, client):
    def aggregate(minute: int, count: int, mean: float) -> WindowAggregate:
        start = datetime.fromisoformat(f"2026-01-15T01:{minute:02d}:00+00:00")
        return WindowAggregate(
            feed="air",
            sensor_id="air-tay-mo",
            window="1m",
            window_start=start,
            window_end=start.replace(minute=minute + 1),
            count=count,
            last_event_time=start,
            fields={"pm25": FieldStats(count=count, mean=mean, min=mean, max=mean, last=mean, unit="µg/m³")},
        )

    async def write() -> list[bool]:
        redis = connect(settings)
        picture = RedisPicture(settings, redis)
        try:
            return [
                await picture.write_aggregate(a)
                for a in (
                    aggregate(5, 2, 50.0),
                    aggregate(5, 1, 10.0),
                    aggregate(4, 9, 90.0),
                    aggregate(5, 3, 60.0),
                )
            ]
        finally:
            await redis.aclose()

    assert asyncio.run(write()) == [True, False, False, True]
    [sensor] = client.get("/v1/picture", headers=key("operator")).json()["feeds"]["air"]["sensors"]
    assert sensor["sensorId"] == "air-tay-mo" and sensor["name"] == "Tây Mỗ"
    assert sensor["windowStart"] == "2026-01-15T08:05:00+07:00"  # shown in the city's zone
    assert sensor["count"] == 3 and sensor["values"]["pm25"]["mean"] == 60.0


def test_health_and_readiness(settings, client):
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"redis": "ok", "kafka": "ok"}

    dead_kafka = settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}"})
    with TestClient(create_app(dead_kafka)) as down:
        response = down.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["kafka"].startswith("unreachable")


def test_openapi_describes_every_endpoint_with_an_example(client):
    document = client.get("/openapi.json").json()
    picture = document["paths"]["/v1/picture"]["get"]
    assert picture["description"]
    assert picture["responses"]["200"]["content"]["application/json"]["example"]["feeds"]["air"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary") and operation.get("description"), where
            answers = [
                content
                for code, response in operation["responses"].items()
                if code.startswith("2")
                for content in response.get("content", {}).values()
            ]
            # A 204 has no body to show (PATCH /ngsi-ld/v1/entities/{entityId}/attrs).
            no_content = all(code == "204" for code in operation["responses"] if code.startswith("2"))
            assert no_content or any("example" in content or "examples" in content for content in answers), (
                where
            )
            if "requestBody" in operation:
                bodies = operation["requestBody"]["content"].values()
                assert any("example" in body or "examples" in body for body in bodies), where
