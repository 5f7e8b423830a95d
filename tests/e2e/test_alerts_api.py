"""The operators' API end to end: anomalies into the real broker, a real worker and API process, Redis.

List, filter and page alerts; acknowledge and resolve them (and be refused what the lifecycle forbids);
silence and unsilence; list incidents; read the audit trail — and rebuild all of it from Kafka after the
Redis keys are gone. Plus: every new endpoint refuses callers without a key (401) and integrators (403).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors.kafka import EventProducer, create_topics
from connectors.sinks.redis_picture import RedisPicture, connect
from ioc.api import create_app
from ioc.api.examples import EXAMPLES
from ioc.models.alert import Alert, AlertChange, AlertEvent
from ioc.models.anomaly import Anomaly, RuleKind, Severity, alert_id
from tests.conftest import TEST_KEYS, free_port
from tests.processes import IocProcess, empty_redis, read_topic, wait_for

pytestmark = pytest.mark.e2e

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
# Silences are judged at event time and ended at wall-clock time: the story happens in the last hours.
T0 = datetime.now(HANOI).replace(second=0, microsecond=0) - timedelta(hours=2)

OPERATOR, ADMIN, INTEGRATOR = ({"X-API-Key": TEST_KEYS[role]} for role in ("operator", "admin", "integrator"))
# The API process below names its operator and admin keys (name:role:key); the audit trail shows the names.
OPERATOR_ID, ADMIN_ID = "duty-operator", "duty-admin"
NAMED_KEYS = (
    f"{OPERATOR_ID}:operator:{TEST_KEYS['operator']},integrator:{TEST_KEYS['integrator']},"
    f"{ADMIN_ID}:admin:{TEST_KEYS['admin']}"
)

JAM = ("traffic.incident", "traffic-nga-tu-so", "traffic", "dong-da")
AIR = ("air.aqi_band", "air-kim-lien", "air", "dong-da")
LAKE = ("water.do_low", "water-ho-tay", "water", "tay-ho")
OLD_TOWN = ("air.aqi_band", "air-hoan-kiem", "air", "hoan-kiem")
STARTS = {JAM: 0, AIR: 10, LAKE: 20, OLD_TOWN: 30}  # episode starts, minutes after T0
METRICS = {
    "traffic": ("speed_score", 0.93, 0.7),
    "air": ("vn_aqi", 172.0, 150.0),
    "water": ("dissolved_oxygen", 1.2, 1.5),
}


def anomaly(which: tuple[str, str, str, str], at: datetime, *, firing: bool = True) -> Anomaly:
    rule, entity, feed, district = which
    metric, value, threshold = METRICS[feed]
    return Anomaly(
        rule=rule,
        rule_version="test",
        kind=RuleKind.statistical if feed == "traffic" else RuleKind.standard,
        feed=feed,
        entity=entity,
        district=district,
        firing=firing,
        episode_start=T0 + timedelta(minutes=STARTS[which]),
        observed_at=at,
        window="1h" if feed == "air" else "15m",
        metric=metric,
        value=value,
        unit="mg/L" if feed == "water" else "",
        threshold=threshold,
        severity=Severity.critical if which == AIR else Severity.warning,
    )


def ident(which: tuple[str, str, str, str]) -> str:
    return alert_id(which[0], which[1], T0 + timedelta(minutes=STARTS[which]))


def produce(settings, *anomalies: Anomaly) -> None:
    async def send() -> None:
        async with EventProducer(settings) as producer:
            await producer.send_many((settings.anomalies_topic, a.entity, a.to_json()) for a in anomalies)

    asyncio.run(send())


def test_operators_work_the_alerts_and_the_trail_survives_a_redis_flush(settings, tmp_path):
    create_topics(settings)
    produce(
        settings,
        anomaly(JAM, T0 + timedelta(minutes=5)),
        anomaly(AIR, T0 + timedelta(minutes=60)),
        anomaly(LAKE, T0 + timedelta(minutes=30)),
        anomaly(OLD_TOWN, T0 + timedelta(minutes=40)),
        anomaly(OLD_TOWN, T0 + timedelta(minutes=50), firing=False),  # cleared: resolved by system
    )
    port = free_port()
    worker = IocProcess(["worker"], settings, tmp_path / "worker-1.log")
    # A long wait costs nothing when the worker keeps up, and keeps a busy machine from turning 200 into 202.
    api = IocProcess(
        ["api", "--port", str(port)],
        settings,
        tmp_path / "api.log",
        command_wait_seconds=20,
        api_keys=NAMED_KEYS,
    )
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=OPERATOR, timeout=30)
    processes = [worker, api]

    def alerts(**params) -> dict:
        response = http.get("/v1/alerts", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def ids(page: dict) -> list[str]:
        return [item["id"] for item in page["items"]]

    def muted_by(alert: str) -> str | None:
        return (http.get(f"/v1/alerts/{alert}").json()["suppressedBy"] or {}).get("silence")

    def all_silences() -> list[dict]:
        return http.get("/v1/silences", params={"all": "true"}).json()["items"]

    try:
        # --- list, filter, page ---------------------------------------------------------------------
        newest_first = [ident(OLD_TOWN), ident(LAKE), ident(AIR), ident(JAM)]
        wait_for(lambda: ids(alerts()) == newest_first and alerts(status="resolved")["items"],
                 timeout=120, processes=processes)  # fmt: skip
        page = alerts()
        assert page["nextCursor"] is None
        assert [a["status"] for a in page["items"]] == ["resolved", "open", "open", "open"]
        assert page["items"][0]["resolvedBy"] == "system"
        air = page["items"][2]
        assert air["entityName"] == "Kim Liên" and air["districtName"] == "Đống Đa"
        assert "Kim Liên" in air["title"]["vi"] and "Bad air quality" in air["title"]["en"]

        assert ids(alerts(status="resolved")) == [ident(OLD_TOWN)]
        assert ids(alerts(status=["open", "acknowledged"])) == newest_first[1:]
        assert ids(alerts(severity="critical")) == [ident(AIR)]
        assert ids(alerts(feed="air")) == [ident(OLD_TOWN), ident(AIR)]
        assert ids(alerts(district=["dong-da", "tay-ho"])) == newest_first[1:]
        assert ids(alerts(rule="air.aqi_band", district="hoan-kiem")) == [ident(OLD_TOWN)]
        in_range = alerts(
            since=(T0 + timedelta(minutes=10)).isoformat(), until=(T0 + timedelta(minutes=30)).isoformat()
        )
        assert ids(in_range) == [ident(LAKE), ident(AIR)]  # since ≤ start < until
        assert http.get("/v1/alerts", params={"feed": "noise"}).status_code == 422
        assert http.get("/v1/alerts", params={"since": "2026-11-23T08:00:00"}).status_code == 422  # no offset
        assert http.get("/v1/alerts", params={"cursor": "not-a-cursor"}).status_code == 400

        first = alerts(limit=3)
        assert ids(first) == newest_first[:3] and first["nextCursor"]
        second = alerts(limit=3, cursor=first["nextCursor"])
        assert ids(second) == newest_first[3:] and second["nextCursor"] is None
        paged, cursor = [], None
        while True:
            page = alerts(limit=1, status="open", **({"cursor": cursor} if cursor else {}))
            paged += ids(page)
            if (cursor := page["nextCursor"]) is None:
                break
        assert paged == newest_first[1:]

        one = http.get(f"/v1/alerts/{ident(AIR)}")
        assert one.status_code == 200 and one.json()["evidence"]["value"] == 172.0
        missing = http.get("/v1/alerts/nope")
        assert missing.status_code == 404 and missing.json()["detail"] == "No alert nope in the picture."

        # --- incidents: the jam and the bad air in Đống Đa are one; Hồ Tây another; Hoàn Kiếm resolved ----
        def incidents(**params) -> list[dict]:
            response = http.get("/v1/incidents", params=params)
            assert response.status_code == 200, response.text
            return response.json()["items"]

        wait_for(lambda: len(incidents()) == 2 and len(incidents(status="resolved")) == 1,
                 timeout=60, processes=processes)  # fmt: skip
        open_incidents = incidents()
        assert [i["district"] for i in open_incidents] == ["tay-ho", "dong-da"]  # newest start first
        assert {m["alertId"] for m in open_incidents[1]["members"]} == {ident(JAM), ident(AIR)}
        assert [i["district"] for i in incidents(district="dong-da")] == ["dong-da"]
        assert [i["district"] for i in incidents(status="resolved")] == ["hoan-kiem"]
        assert len(incidents(status="all")) == 3
        assert incidents(status="all", limit=1, district="tay-ho")[0]["district"] == "tay-ho"

        # --- acknowledge and resolve ------------------------------------------------------------------
        acked = http.post(f"/v1/alerts/{ident(JAM)}/ack", json={"note": "Đã cử CSGT / traffic police sent"})
        assert acked.status_code == 200, acked.text
        acked = acked.json()
        assert acked["status"] == "acknowledged" and acked["acknowledgedBy"] == OPERATOR_ID
        assert acked["acknowledgedNote"] == "Đã cử CSGT / traffic police sent"
        assert ids(alerts(status="acknowledged")) == [ident(JAM)]

        again = http.post(f"/v1/alerts/{ident(JAM)}/ack")
        assert again.status_code == 409
        assert again.json()["detail"].startswith(
            f"Alert {ident(JAM)} is already acknowledged by {OPERATOR_ID}"
        )
        assert http.post("/v1/alerts/nope/ack").status_code == 404
        refused = http.post(f"/v1/alerts/{ident(OLD_TOWN)}/ack")
        assert refused.status_code == 409 and "already resolved by system" in refused.json()["detail"]

        resolved = http.post(f"/v1/alerts/{ident(JAM)}/resolve", headers=ADMIN)
        assert resolved.status_code == 200, resolved.text
        resolved = resolved.json()
        assert (resolved["status"], resolved["resolvedBy"]) == ("resolved", ADMIN_ID)
        assert resolved["acknowledgedBy"] == OPERATOR_ID  # the lifecycle keeps who acknowledged
        again = http.post(f"/v1/alerts/{ident(JAM)}/resolve")
        assert again.status_code == 409 and "a resolved alert is final" in again.json()["detail"]

        # --- silences -------------------------------------------------------------------------------------
        invalid = http.post(
            "/v1/silences", json={"matchers": {"rule": "*"}, "duration": "PT1H", "comment": "x"}
        )
        assert invalid.status_code == 422
        assert invalid.json()["detail"] == "matchers made only of '*' would silence every alert"
        backwards = {"matchers": {"rule": "air.*"}, "startsAt": T0.isoformat(),
                     "endsAt": (T0 - timedelta(hours=1)).isoformat(), "comment": "x"}  # fmt: skip
        assert http.post("/v1/silences", json=backwards).json()["detail"] == "endsAt must be after startsAt"
        past = backwards | {"startsAt": (T0 - timedelta(hours=2)).isoformat()}
        assert (
            http.post("/v1/silences", json=past).json()["detail"].endswith("the silence would mute nothing")
        )
        both = {"matchers": {"rule": "air.*"}, "duration": 60, "endsAt": T0.isoformat(), "comment": "x"}
        assert http.post("/v1/silences", json=both).json()["detail"] == "give either endsAt or duration"

        # Bad air in Đống Đa is known (construction dust): mute it, from the start of the story, for 3 hours.
        created = http.post(
            "/v1/silences",
            json={
                "matchers": {"rule": "air.*", "district": "dong-da"},
                "startsAt": T0.isoformat(),
                "duration": "PT3H",
                "comment": "Bụi công trình đã biết / known construction dust",
            },
        )
        assert created.status_code == 201, created.text
        silence = created.json()
        assert (silence["createdBy"], silence["status"], silence["endedBy"]) == (OPERATOR_ID, "active", None)
        assert datetime.fromisoformat(silence["endsAt"]) == T0 + timedelta(hours=3)
        wait_for(lambda: muted_by(ident(AIR)) == silence["id"], timeout=60, processes=processes)
        assert http.get(f"/v1/alerts/{ident(LAKE)}").json()["suppressedBy"] is None  # not matched
        listed = http.get("/v1/silences").json()["items"]
        assert [s["id"] for s in listed] == [silence["id"]]
        assert http.get(f"/v1/silences/{silence['id']}").json()["comment"].startswith("Bụi công trình")

        ended = http.delete(f"/v1/silences/{silence['id']}", headers=ADMIN)
        assert ended.status_code == 200, ended.text
        ended = ended.json()
        assert (ended["status"], ended["endedBy"], ended["createdBy"]) == ("expired", ADMIN_ID, OPERATOR_ID)
        ended_at = datetime.fromisoformat(ended["endsAt"])
        assert abs((ended_at - datetime.now(HANOI)).total_seconds()) < 30
        assert http.get("/v1/silences").json()["items"] == []
        assert [s["id"] for s in all_silences()] == [silence["id"]]
        gone = http.delete(f"/v1/silences/{silence['id']}")
        assert gone.status_code == 409 and "has ended already" in gone.json()["detail"]
        assert http.delete("/v1/silences/nope").status_code == 404

        # Judged at event time: the bad air stays muted until its readings pass the silence's new end.
        assert muted_by(ident(AIR)) == silence["id"]
        produce(settings, anomaly(AIR, ended_at + timedelta(minutes=1)))
        wait_for(lambda: http.get(f"/v1/alerts/{ident(AIR)}").json()["suppressedBy"] is None,
                 timeout=60, processes=processes)  # fmt: skip

        # --- the audit trail ----------------------------------------------------------------------------
        expected = [
            ("unsilenced", ADMIN_ID, None, silence["id"]),
            ("silenced", OPERATOR_ID, None, silence["id"]),
            ("resolved", ADMIN_ID, ident(JAM), None),
            ("acknowledged", OPERATOR_ID, ident(JAM), None),
        ]

        def trail() -> list[dict]:
            return http.get("/v1/audit").json()["items"]

        def summary(entries: list[dict]) -> list[tuple]:
            return [(e["action"], e["by"], e["alertId"], e["silenceId"]) for e in entries]

        wait_for(lambda: summary(trail()) == expected, timeout=60, processes=processes)
        entries = trail()
        assert entries[3]["note"] == "Đã cử CSGT / traffic police sent"
        assert entries[3]["at"] == acked["acknowledgedAt"] and entries[2]["at"] == resolved["resolvedAt"]
        assert entries[0]["at"] == ended["endsAt"] and entries[1]["at"] == silence["createdAt"]
        assert "Ngã Tư Sở" in entries[3]["alertTitle"]["vi"]
        first = http.get("/v1/audit", params={"limit": 3}).json()
        rest = http.get("/v1/audit", params={"limit": 3, "cursor": first["nextCursor"]}).json()
        assert summary(first["items"] + rest["items"]) == expected and rest["nextCursor"] is None

        # --- Redis loses this test's keys; ``ioc picture rebuild`` puts them back from Kafka -------------
        before = {
            "alerts": alerts()["items"],
            "silences": all_silences(),
            "audit": entries,
        }
        empty_redis(settings)
        assert alerts()["items"] == [] and trail() == []

        rebuild = IocProcess(["picture", "rebuild"], settings, tmp_path / "rebuild.log")
        assert rebuild.process.wait(120) == 0, rebuild.log_file.read_text()
        # At once: the command returns when every record is written.
        assert trail() == before["audit"]
        assert all_silences() == before["silences"]
        rebuilt = alerts()
        assert ids(rebuilt) == newest_first and rebuilt["items"] == before["alerts"]
        statuses = {a["id"]: (a["status"], a["acknowledgedBy"], a["resolvedBy"]) for a in rebuilt["items"]}
        assert statuses[ident(JAM)] == ("resolved", OPERATOR_ID, ADMIN_ID)
        assert statuses[ident(OLD_TOWN)] == ("resolved", None, "system")
    finally:
        http.close()
        api.stop()
        worker.stop()


ENDPOINTS = [
    ("GET", "/v1/alerts", None),
    ("GET", "/v1/alerts/a1", None),
    ("POST", "/v1/alerts/a1/ack", {"note": "x"}),
    ("POST", "/v1/alerts/a1/resolve", None),
    ("GET", "/v1/incidents", None),
    ("GET", "/v1/audit", None),
    ("GET", "/v1/silences", None),
    ("GET", "/v1/silences/s1", None),
    ("POST", "/v1/silences", {"matchers": {"rule": "air.*"}, "duration": "PT1H", "comment": "dust"}),
    ("DELETE", "/v1/silences/s1", None),
]


def test_every_operator_endpoint_needs_an_operator_or_admin_key(settings):
    with TestClient(create_app(settings)) as client:
        for method, path, body in ENDPOINTS:
            anonymous = client.request(method, path, json=body)
            assert anonymous.status_code == 401, (method, path)
            assert "X-API-Key" in anonymous.json()["detail"]
            integrator = client.request(method, path, json=body, headers=INTEGRATOR)
            assert integrator.status_code == 403, (method, path)
            assert integrator.json()["detail"] == (
                "This endpoint needs the admin or operator role; your key has integrator."
            )
        # Reads answer operators (an empty picture); unknown ids are 404 with a sentence.
        assert client.get("/v1/alerts", headers=OPERATOR).json() == {"items": [], "nextCursor": None}
        assert client.get("/v1/audit", headers=ADMIN).json() == {"items": [], "nextCursor": None}
        assert client.get("/v1/silences/s1", headers=OPERATOR).json() == {"detail": "No silence s1."}

        document = client.get("/openapi.json").json()
        for method, path, _ in ENDPOINTS:
            path = path.replace("a1", "{alert_id}").replace("s1", "{silence_id}")
            operation = document["paths"][path][method.lower()]
            assert operation["summary"] and operation["description"], path
            success = operation["responses"]["201" if method == "POST" and "silences" in path else "200"]
            assert success["content"]["application/json"]["example"], path


def test_a_command_the_picture_does_not_show_yet_is_202_and_without_kafka_503(settings):
    """No worker runs here: the command is in Kafka (keyed by the alert's entity) but never applied."""
    create_topics(settings, [settings.alert_commands_topic, settings.silences_topic])
    alert = Alert.model_validate(EXAMPLES["open_alert"])

    async def write() -> None:
        client = connect(settings)
        try:
            await RedisPicture(settings, client).write_alert(
                AlertEvent(change=AlertChange.opened, revision=1, at=alert.last_seen, alert=alert)
            )
        finally:
            await client.aclose()

    asyncio.run(write())
    lagging = settings.model_copy(update={"command_wait_seconds": 0.5, "api_keys": SecretStr(NAMED_KEYS)})
    with TestClient(create_app(lagging)) as client:
        response = client.post(f"/v1/alerts/{alert.id}/ack", headers=OPERATOR, json={"note": "đang xử lý"})
    assert response.status_code == 202, response.text
    command = response.json()["command"]
    assert (command["action"], command["alertId"], command["by"], command["note"]) == (
        "acknowledge",
        alert.id,
        OPERATOR_ID,
        "đang xử lý",
    )
    [record] = read_topic(settings, settings.alert_commands_topic, expect=1)
    assert record == {"key": alert.entity, "value": command}

    no_kafka = settings.model_copy(
        update={"kafka_bootstrap": f"127.0.0.1:{free_port()}", "command_kafka_timeout_seconds": 1}
    )
    with TestClient(create_app(no_kafka)) as client:
        response = client.post(f"/v1/alerts/{alert.id}/resolve", headers=OPERATOR)
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        assert "nothing was done" in response.json()["detail"]
        body = {
            "matchers": {"rule": "traffic.*"},
            "duration": "PT1H",
            "comment": "kẹt xe đã biết / known jam",
        }
        response = client.post("/v1/silences", headers=OPERATOR, json=body)
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
