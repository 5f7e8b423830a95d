"""``GET /v1/stream`` end to end: a real worker and API process, anomalies into the real broker.

A new client gets a snapshot, then live alert events; a client that reconnects with ``Last-Event-ID``
gets exactly the events it missed, in order; one whose id is older than the history kept gets a
``reset`` snapshot. Without a key: 401 (a key in the URL is no key); an integrator's key: 403.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from connectors.kafka import create_topics
from connectors.redis_client import connect_sync
from connectors.sinks.redis_picture import RedisPicture, connect
from ioc.api import create_app
from ioc.api.examples import EXAMPLES
from ioc.models.alert import Alert, AlertChange, AlertEvent
from tests.conftest import TEST_KEYS, free_port
from tests.e2e.test_alerts_api import (
    AIR,
    INTEGRATOR,
    JAM,
    LAKE,
    OLD_TOWN,
    OPERATOR,
    T0,
    anomaly,
    ident,
    produce,
)
from tests.processes import IocProcess, read_topic, wait_for
from tests.processes import sse_events as events

pytestmark = pytest.mark.e2e


def api_process(settings, tmp_path, **env) -> tuple[IocProcess, httpx.Client]:
    port = free_port()
    api = IocProcess(["api", "--port", str(port)], settings, tmp_path / "api.log", **env)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=OPERATOR, timeout=httpx.Timeout(30))
    wait_for(lambda: http.get("/healthz").status_code == 200, timeout=30, processes=[api])
    return api, http


def test_a_new_client_gets_a_snapshot_then_live_events_and_a_reconnect_gets_what_it_missed(
    settings, tmp_path
):
    create_topics(settings)
    worker = IocProcess(["worker"], settings, tmp_path / "worker.log")
    api, http = api_process(settings, tmp_path)
    processes = [worker, api]

    def alert_ids(**params) -> list[str]:
        return [a["id"] for a in http.get("/v1/alerts", params=params).json()["items"]]

    try:
        produce(settings, anomaly(JAM, T0 + timedelta(minutes=5)))
        wait_for(lambda: alert_ids() == [ident(JAM)], timeout=90, processes=processes)
        wait_for(lambda: http.get("/v1/incidents").json()["items"], timeout=30, processes=processes)

        # A new client: the snapshot first (with the open jam), then the bad air as it is opened.
        seen: list[dict] = []
        with http.stream("GET", "/v1/stream") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = events(response)
            snapshot = next(stream)
            assert snapshot["event"] == "snapshot"
            assert [a["id"] for a in snapshot["data"]["alerts"]] == [ident(JAM)]
            assert [i["district"] for i in snapshot["data"]["incidents"]] == ["dong-da"]  # the jam's
            produce(settings, anomaly(AIR, T0 + timedelta(minutes=60)))
            for event in stream:
                seen.append(event)
                if event["event"] == "alert" and event["data"]["alert"]["id"] == ident(AIR):
                    break
        assert seen[-1]["data"]["change"] == "opened" and seen[-1]["data"]["alert"]["severity"] == "critical"
        ids = [snapshot["id"]] + [e["id"] for e in seen]
        assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-")))) and len(set(ids)) == len(ids)
        last_id = seen[-1]["id"]

        # Disconnected, the client misses two more alerts, one of them opened and resolved.
        produce(
            settings,
            anomaly(LAKE, T0 + timedelta(minutes=30)),
            anomaly(OLD_TOWN, T0 + timedelta(minutes=40)),
            anomaly(OLD_TOWN, T0 + timedelta(minutes=50), firing=False),
        )
        wait_for(lambda: alert_ids(status="resolved") == [ident(OLD_TOWN)] and ident(LAKE) in alert_ids(),
                 timeout=60, processes=processes)  # fmt: skip
        published = read_topic(settings, settings.alerts_topic, expect=5)
        before = {(e["data"]["alert"]["id"], e["data"]["revision"]) for e in seen if e["event"] == "alert"}
        missed = {
            (r["value"]["alert"]["id"], r["value"]["revision"])
            for r in published
            if r["key"] != ident(JAM) and (r["key"], r["value"]["revision"]) not in before
        }
        assert {alert for alert, _ in missed} == {ident(LAKE), ident(OLD_TOWN)} and len(missed) == 3

        # It reconnects as the console does (the key and Last-Event-ID as headers).
        resumed: list[dict] = []
        with (
            httpx.Client(base_url=http.base_url, timeout=30) as browser,
            browser.stream("GET", "/v1/stream", headers=OPERATOR | {"Last-Event-ID": last_id}) as response,
        ):
            assert response.status_code == 200
            got: set[tuple[str, int]] = set()
            for event in events(response):
                resumed.append(event)
                if event["event"] == "alert":
                    got.add((event["data"]["alert"]["id"], event["data"]["revision"]))
                if got >= missed:
                    break
        assert resumed[0]["event"] != "reset"
        alert_events = [
            (e["data"]["alert"]["id"], e["data"]["revision"]) for e in resumed if e["event"] == "alert"
        ]
        assert sorted(alert_events) == sorted(missed)  # nothing missed, no duplicate, nothing seen before
        assert [r for a, r in alert_events if a == ident(OLD_TOWN)] == [1, 2]  # in order
        # Exactly the stream's entries after last_id, in order.
        store = connect_sync(settings, decode_responses=True)
        try:
            kept = store.xrange(settings.redis_key("stream"), f"({last_id}", resumed[-1]["id"])
        finally:
            store.close()
        assert [e["id"] for e in resumed] == [entry for entry, _ in kept]
        assert [e["event"] for e in resumed] == [fields["type"] for _, fields in kept]
    finally:
        http.close()
        api.stop()
        worker.stop()


def write_revisions(settings, alert: Alert, *revisions: int) -> None:
    """Store the alert's revisions in Redis as the worker's picture agent does."""

    async def run() -> None:
        client = connect(settings)
        try:
            store = RedisPicture(settings, client)
            for revision in revisions:
                event = AlertEvent(
                    change=AlertChange.opened if revision == 1 else AlertChange.updated,
                    revision=revision,
                    at=alert.last_seen,
                    alert=alert,
                )
                assert await store.write_alert(event)
            assert not await store.write_alert(event)  # not newer: not stored, nothing streamed
        finally:
            await client.aclose()

    asyncio.run(run())


def test_a_quiet_stream_stays_open_and_still_delivers(settings, tmp_path):
    """redis-py gives up on a read after 5 s by default; a stream's blocking read waits longer."""
    alert = Alert.model_validate(EXAMPLES["open_alert"])
    api, http = api_process(settings, tmp_path)
    try:
        with http.stream("GET", "/v1/stream") as response:
            stream = events(response)
            assert next(stream)["event"] == "snapshot"
            time.sleep(7)  # nothing to send, longer than redis-py's default socket timeout
            write_revisions(settings, alert, 1)
            event = next(stream)
        assert (event["event"], event["data"]["alert"]["id"]) == ("alert", alert.id)
    finally:
        http.close()
        api.stop()


def test_a_last_event_id_older_than_the_history_kept_gets_a_reset(settings, tmp_path):
    """No worker: the alert's revisions are written to Redis as the worker would, with a history of 5."""
    small = settings.model_copy(update={"stream_history": 5})
    alert = Alert.model_validate(EXAMPLES["open_alert"])

    def write(*revisions: int) -> None:
        write_revisions(small, alert, *revisions)

    def first_events(count: int, **request) -> list[dict]:
        with http.stream("GET", "/v1/stream", **request) as response:
            assert response.status_code == 200
            stream = events(response)
            return [next(stream) for _ in range(count)]

    write(1, 2)
    api, http = api_process(small, tmp_path, stream_history=5)
    try:
        [snapshot] = first_events(1)
        assert snapshot["event"] == "snapshot" and [a["id"] for a in snapshot["data"]["alerts"]] == [alert.id]
        write(3, 4)
        within = first_events(2, headers={"Last-Event-ID": snapshot["id"]})  # still kept: resumed
        assert [(e["event"], e["data"]["revision"]) for e in within] == [("alert", 3), ("alert", 4)]

        write(5, 6, 7, 8, 9)  # the entries after the snapshot's id are trimmed away
        [reset] = first_events(1, headers={"Last-Event-ID": snapshot["id"]})
        assert reset["event"] == "reset" and [a["id"] for a in reset["data"]["alerts"]] == [alert.id]
        write(10)
        [resumed] = first_events(1, params={"lastEventId": reset["id"]})  # the reset's id resumes
        assert (resumed["event"], resumed["data"]["revision"]) == ("alert", 10)
        for bad in ("garbage", "99999999999999-0"):  # not an id; beyond the newest
            [event] = first_events(1, headers={"Last-Event-ID": bad})
            assert event["event"] == "reset"
    finally:
        http.close()
        api.stop()


def test_the_stream_needs_an_operator_or_admin_key(settings):
    with TestClient(create_app(settings)) as client:
        anonymous = client.get("/v1/stream")
        assert anonymous.status_code == 401 and "X-API-Key" in anonymous.json()["detail"]
        # A key in the URL would be written to access logs: it is not read.
        in_url = client.get("/v1/stream", params={"key": TEST_KEYS["operator"]})
        assert in_url.status_code == 401 and "X-API-Key" in in_url.json()["detail"]
        denied = client.get("/v1/stream", headers=INTEGRATOR)
        assert denied.status_code == 403
        assert (
            denied.json()["detail"]
            == "This endpoint needs the admin or operator role; your key has integrator."
        )
        operation = client.get("/openapi.json").json()["paths"]["/v1/stream"]["get"]
        assert operation["summary"] and operation["description"]
        assert operation["responses"]["200"]["content"]["text/event-stream"]["example"]
