"""The FastAPI application factory. Run it with ``ioc api``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from connectors.sinks.redis_picture import connect
from ioc import __version__
from ioc.api import (
    alerts,
    console,
    database,
    history,
    ingest,
    kpis,
    metrics,
    open_data,
    picture,
    responses,
    sensors,
    silences,
    stream,
)
from ioc.api.auth import FailedLogins, document_429
from ioc.api.health import Readiness, Recent
from ioc.api.limits import BodyLimit, body_limit, document_413
from ioc.api.methods import AllowEveryMethod
from ioc.api.ngsi_ld import router as ngsi_ld_router
from ioc.api.publisher import OperatorPublisher
from ioc.settings import Settings

DESCRIPTION = """
The live operating picture of the city, from the `ioc` event-stream pipeline: sensors' latest windows
(`/v1/picture`), alerts and incidents (also as they happen: `GET /v1/stream`), and the operators'
actions — acknowledge and resolve alerts, silence known noise, read the audit trail. And the ways in for
integrators: `POST /v1/ingest/{feed}` (JSON or NDJSON batches) and `POST /v1/ngsi-ld/notify`.

Authenticate with an `X-API-Key` header holding a key from `IOC_API_KEYS` (`name:role:key` or
`role:key` entries; roles `operator`, `integrator`, `admin`) or `IOC_API_KEYS_FILE`. The audit trail
names the key's name. Wrong keys are limited per client address: past `IOC_AUTH_FAILURES_MAX` within
`IOC_AUTH_FAILURES_WINDOW_SECONDS`, 429 with Retry-After.
"""


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


READY_EXAMPLE = {"status": "ok", "checks": {"redis": "ok", "kafka": "ok"}}
UNREADY_EXAMPLE = {
    "status": "unavailable",
    "checks": {"redis": "ok", "kafka": "unreachable: KafkaConnectionError"},
}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.redis = connect(settings)
        # GET /v1/stream's blocking reads hold a connection each: a pool of their own, so open streams
        # never starve the other endpoints of connections (and one sized for an operations room). Its
        # reads wait out a whole heartbeat: redis-py's default 5 s read timeout would end a quiet stream.
        app.state.stream_redis = connect(
            settings,
            max_connections=settings.stream_max_clients,
            socket_timeout=stream.HEARTBEAT_SECONDS + 10,
        )
        app.state.ingest = ingest.IngestService(settings, app.state.redis)
        app.state.publisher = OperatorPublisher(settings)
        app.state.kafka_offsets = metrics.KafkaOffsets(settings)  # GET /metrics' clients, made at first use
        app.state.metrics_body = Recent[metrics.Scrape](
            settings.metrics_max_age_seconds, lambda scraped: scraped.complete
        )
        app.state.readiness = Readiness(settings, app.state.redis)  # its Kafka client made at first use
        app.state.database = database.open_pool(settings)  # the history routes' connections
        try:
            yield
        finally:
            await asyncio.to_thread(app.state.database.close)
            await app.state.readiness.close()
            await app.state.kafka_offsets.close()
            await app.state.publisher.close()
            await app.state.ingest.close()
            await app.state.stream_redis.aclose()
            await app.state.redis.aclose()

    app = FastAPI(title="ioc", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.api_keys = settings.api_key_entries()  # names, roles and digests: never the keys
    app.state.failed_logins = FailedLogins(settings.auth_failures_max, settings.auth_failures_window_seconds)
    app.state.picture = picture.SharedPicture(settings.picture_max_age_seconds)
    # The operators' routes list FastAPI's own 422 in the one error shape (the handler below gives it);
    # the ingest routes document their own 422, the per-item result.
    for router in (
        picture.router,
        sensors.router,
        alerts.router,
        silences.router,
        stream.router,
        history.router,
        kpis.router,
    ):
        app.include_router(router, responses=responses.VALIDATION_RESPONSES)
    app.include_router(ingest.router)
    app.include_router(ngsi_ld_router)  # NGSI-LD's own paths: /ngsi-ld/v1
    app.include_router(metrics.router)
    app.include_router(open_data.router, responses=responses.VALIDATION_RESPONSES)  # public, like /metrics
    console.mount(app)  # the operators' page at / and its assets at /console/

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> Response:
        return responses.validation_problem(error.errors())

    document = app.openapi

    def openapi() -> dict[str, Any]:
        # Examples with dates are made for the day the document is read, so that they stay valid.
        timed = silences.with_timed_examples(document(), responses.now(settings))
        return document_429(document_413(timed, settings))

    app.openapi = openapi  # type: ignore[method-assign]
    # Starlette's 405 names only the first route of the path; the Allow header must list them all.
    app.add_middleware(AllowEveryMethod, routes=app.router.routes)
    # Outermost: a body is limited before anything reads it (FastAPI parses it before checking the key).
    app.add_middleware(BodyLimit, limit_of=lambda path: body_limit(settings, path))

    @app.get(
        "/healthz",
        tags=["health"],
        summary="The process is alive",
        description="Liveness: 200 whenever the process answers, whatever Kafka and Redis do. No key.",
        response_model=Health,
        responses={200: {"content": {"application/json": {"example": {"status": "ok", "checks": {}}}}}},
    )
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Kafka and Redis are reachable",
        description="Readiness: 200 when both Kafka and Redis answer within 3 s, else 503 naming which "
        "did not. No key. One answer serves every probe of an API process for IOC_READYZ_MAX_AGE_SECONDS, "
        "and the probes reuse the API's connections.",
        response_model=Health,
        responses={
            200: {"content": {"application/json": {"example": READY_EXAMPLE}}},
            503: {
                "description": "Kafka or Redis is unreachable",
                "model": Health,
                "content": {"application/json": {"example": UNREADY_EXAMPLE}},
            },
        },
    )
    async def readyz(response: Response) -> Health:
        checks = await app.state.readiness.checks()
        healthy = all(v == "ok" for v in checks.values())
        if not healthy:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="ok" if healthy else "unavailable", checks=checks)

    return app
