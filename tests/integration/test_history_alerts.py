"""``GET /v1/history/alerts`` and ``/v1/history/incidents`` against a real PostgreSQL: the alerts and
incidents of any past range from the events the history sink stores, resolved ones included, filtered
by state and area, paged, as JSON and CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from ioc.api import create_app
from ioc.api.examples import EXAMPLES
from ioc.history.store import HistoryStore, alert_row, incident_row, upgrade
from ioc.models.alert import (
    Alert,
    AlertChange,
    AlertEvent,
    AlertStatus,
    Incident,
    IncidentChange,
    IncidentEvent,
    IncidentStatus,
)
from tests.conftest import TEST_KEYS

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
NOVEMBER = datetime(2026, 11, 2, 8, 0, tzinfo=ZONE)
HEADERS = {"X-API-Key": TEST_KEYS["operator"]}


def lifecycle(alert_id: str, district: str, opened: datetime, *, resolved: bool) -> list[tuple]:
    """An alert's events: opened, then resolved by the data an hour later (or still open)."""
    alert = Alert.model_validate(EXAMPLES["open_alert"]).model_copy(
        update={"id": alert_id, "district": district, "episode_start": opened}
    )
    events = [AlertEvent(change=AlertChange.opened, revision=1, at=opened, alert=alert)]
    if resolved:
        done = alert.model_copy(
            update={
                "status": AlertStatus.resolved,
                "resolved_at": opened + timedelta(hours=1),
                "resolved_by": "system",
            }
        )
        events.append(
            AlertEvent(change=AlertChange.resolved, revision=2, at=opened + timedelta(hours=1), alert=done)
        )
    return [alert_row(e.to_json()) for e in events]


def incident_events(incident_id: str, started: datetime, last: IncidentChange) -> list[tuple]:
    incident = Incident.model_validate(EXAMPLES["incident"]).model_copy(
        update={"id": incident_id, "started_at": started}
    )
    status = IncidentStatus.resolved if last == IncidentChange.resolved else IncidentStatus.open
    events = [
        IncidentEvent(change=IncidentChange.opened, revision=1, at=started, incident=incident),
        IncidentEvent(
            change=last,
            revision=2,
            at=started + timedelta(hours=2),
            incident=incident.model_copy(update={"status": status}),
            merged_into="other" if last == IncidentChange.merged else None,
        ),
    ]
    return [incident_row(e.to_json()) for e in events]


def test_past_alerts_and_incidents_by_range_state_area_and_page(database):
    settings = database
    upgrade(settings.database_address)
    days = [NOVEMBER + timedelta(days=n) for n in range(4)]
    alerts = lifecycle("a-1", "dong-da", days[0], resolved=True)
    alerts += lifecycle("a-2", "hoan-kiem", days[1], resolved=False)
    alerts += lifecycle("a-3", "dong-da", days[2], resolved=True)
    alerts += lifecycle("a-4", "dong-da", days[3] + timedelta(days=30), resolved=True)  # outside the range
    incidents = incident_events("i-1", days[0], IncidentChange.resolved)
    incidents += incident_events("i-2", days[1], IncidentChange.merged)  # merged into another: not listed
    store = HistoryStore(settings.database_address)
    try:
        store.write([], alerts, incidents)
    finally:
        store.close()

    span = {"from": NOVEMBER.isoformat(), "to": (NOVEMBER + timedelta(days=10)).isoformat()}
    with TestClient(create_app(settings)) as client:

        def get(path: str, **params):
            return client.get(path, params=span | params, headers=HEADERS)

        everything = get("/v1/history/alerts")
        first_page = get("/v1/history/alerts", limit=2)
        second_page = get("/v1/history/alerts", limit=2, cursor=first_page.json()["nextCursor"])
        resolved_here = get("/v1/history/alerts", state="resolved", area="dong-da")
        elsewhere = get("/v1/history/alerts", area=["hoan-kiem", "ba-dinh"])
        table = client.get(
            "/v1/history/alerts", params=span | {"limit": 2}, headers=HEADERS | {"Accept": "text/csv"}
        )
        past_incidents = get("/v1/history/incidents")
        open_incidents = get("/v1/history/incidents", state="open")
        incident_table = client.get(
            "/v1/history/incidents", params=span, headers=HEADERS | {"Accept": "text/csv"}
        )
        backwards = get("/v1/history/alerts", **{"from": span["to"], "to": span["from"]})
        forged = get("/v1/history/alerts", cursor="bm90IGEgY3Vyc29y")
        anonymous = client.get("/v1/history/alerts", params=span)

    assert everything.status_code == 200, everything.text
    ids = [(a["id"], a["status"]) for a in everything.json()["items"]]
    assert ids == [("a-3", "resolved"), ("a-2", "open"), ("a-1", "resolved")]  # newest first
    assert everything.json()["nextCursor"] is None
    assert [a["id"] for a in first_page.json()["items"]] == ["a-3", "a-2"]
    assert [a["id"] for a in second_page.json()["items"]] == ["a-1"]
    assert second_page.json()["nextCursor"] is None
    assert [a["id"] for a in resolved_here.json()["items"]] == ["a-3", "a-1"]
    assert resolved_here.json()["items"][0]["resolvedBy"] == "system"
    assert [a["id"] for a in elsewhere.json()["items"]] == ["a-2"]
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert [(r["id"], r["area"], r["status"]) for r in rows] == [
        ("a-3", "dong-da", "resolved"),
        ("a-2", "hoan-kiem", "open"),
    ]
    assert 'rel="next"' in table.headers["link"]
    assert past_incidents.status_code == 200, past_incidents.text
    assert [(i["id"], i["status"]) for i in past_incidents.json()["items"]] == [("i-1", "resolved")]
    assert open_incidents.json()["items"] == []
    [incident_row_] = list(csv.DictReader(io.StringIO(incident_table.text)))
    assert (incident_row_["id"], incident_row_["status"]) == ("i-1", "resolved")
    assert incident_row_["members"].split() == [m["alertId"] for m in EXAMPLES["incident"]["members"]]
    assert (backwards.status_code, forged.status_code, anonymous.status_code) == (422, 400, 401)


def test_v1_alerts_and_incidents_over_a_past_range_answer_from_the_store(database):
    """``GET /v1/alerts?from&to`` (and ``/v1/incidents``) answer as ``/v1/history/alerts`` does for the
    range: last week's resolved alert, which the live picture no longer holds."""
    settings = database
    upgrade(settings.database_address)
    last_week = datetime.now(ZONE).replace(microsecond=0) - timedelta(days=7)
    alerts = lifecycle("w-1", "dong-da", last_week, resolved=True)
    alerts += lifecycle("w-2", "hoan-kiem", last_week + timedelta(hours=2), resolved=False)
    incidents = incident_events("wi-1", last_week, IncidentChange.resolved)
    store = HistoryStore(settings.database_address)
    try:
        store.write([], alerts, incidents)
    finally:
        store.close()

    span = {
        "from": (last_week - timedelta(days=1)).isoformat(),
        "to": (last_week + timedelta(days=1)).isoformat(),
    }
    with TestClient(create_app(settings)) as client:

        def get(path: str, **params):
            return client.get(path, params=span | params, headers=HEADERS)

        past = get("/v1/alerts")
        history = get("/v1/history/alerts")
        resolved = get("/v1/alerts", status="resolved", district="dong-da")
        only_to = client.get("/v1/alerts", params={"to": span["to"]}, headers=HEADERS)
        table = client.get("/v1/alerts", params=span, headers=HEADERS | {"Accept": "text/csv"})
        incidents_ = get("/v1/incidents")
        history_incidents = get("/v1/history/incidents")
        open_incidents = get("/v1/incidents", status="open")
        mixed = get("/v1/alerts", since=span["from"])
        with_rule = get("/v1/alerts", rule="air.aqi_band")
        backwards = get("/v1/alerts", **{"from": span["to"], "to": span["from"]})

    assert past.status_code == 200, past.text
    assert past.json() == history.json()
    assert [(a["id"], a["status"]) for a in past.json()["items"]] == [("w-2", "open"), ("w-1", "resolved")]
    [done] = resolved.json()["items"]
    assert (done["id"], done["resolvedBy"]) == ("w-1", "system")
    assert [a["id"] for a in only_to.json()["items"]] == ["w-2", "w-1"]  # `from`: `to` − 30 days
    assert [r["id"] for r in csv.DictReader(io.StringIO(table.text))] == ["w-2", "w-1"]
    assert incidents_.status_code == 200, incidents_.text
    assert incidents_.json() == history_incidents.json()
    assert [(i["id"], i["status"]) for i in incidents_.json()["items"]] == [("wi-1", "resolved")]
    assert open_incidents.json()["items"] == []
    assert (mixed.status_code, with_rule.status_code, backwards.status_code) == (422, 422, 422)
