"""Notifications through a real Prometheus Alertmanager (Debian's binary, the shipped routing example with
short timings), a real SMTP server (aiosmtpd) and a real webhook receiver, with ``ioc notify`` as a real
process reading a real Redis picture.

The picture is written with ``RedisPicture.write_alert``, the worker's own sink, so these tests start
where the notifier starts: an alert as operators see it. Each test uses areas of its own (the inbox is
truc-ban.<area>@…), so tests never count each other's messages.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiosmtpd.controller import Controller

from connectors.redis_client import connect_sync
from connectors.sinks.redis_picture import RedisPicture, connect
from ioc import infra
from ioc.api.examples import EXAMPLES
from ioc.infra.alertmanager import EXAMPLE_CONFIG
from ioc.models.alert import Alert, AlertChange, AlertEvent, AlertStatus, Suppression
from ioc.models.anomaly import Severity
from ioc.notify.runner import metrics_key
from ioc.settings import Settings
from tests.conftest import free_port, settings_env

pytestmark = pytest.mark.timeout(240)

CRITICAL_REPEAT = 4.0  # seconds: a critical alert nobody acknowledged is mailed again this often
WARNING_WAIT = 3.0  # seconds: the group wait of warnings
# How long Alertmanager stays down in the outage test: a minute, as operations would see it.
OUTAGE_SECONDS = float(os.environ.get("IOC_NOTIFY_OUTAGE_SECONDS", "60"))


# --- a mailbox and a chat bridge ------------------------------------------------------------------------


@dataclass
class Mail:
    to: list[str]
    subject: str
    body: str
    received: float  # time.time()


@dataclass
class Mailbox:
    messages: list[Mail] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        part = message.get_body(("plain",)) if message.is_multipart() else message
        body = part.get_content() if part is not None else ""
        self.messages.append(Mail(list(envelope.rcpt_tos), str(message["Subject"]), body, time.time()))
        return "250 OK"

    def to(self, inbox: str) -> list[Mail]:
        return [m for m in self.messages if inbox in m.to]


@dataclass
class ChatBridge:
    posts: list[dict[str, Any]] = field(default_factory=list)


def webhook_server(bridge: ChatBridge) -> ThreadingHTTPServer:
    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server)
            length = int(self.headers.get("Content-Length", 0))
            bridge.posts.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", free_port()), Receiver)


def routing_for_tests(path: Path, smtp_port: int, webhook_url: str) -> Path:
    """The shipped example with this test's mailbox and bridge, and timings in seconds, not minutes."""
    config = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    config["global"]["smtp_smarthost"] = f"127.0.0.1:{smtp_port}"
    config["templates"] = [str(EXAMPLE_CONFIG.parent / "templates" / "*.tmpl")]
    config["route"].update(group_wait="1s", group_interval="2s", repeat_interval="1h")
    timings = {
        "chat-bridge": {"group_wait": "1s"},
        'severity="critical"': {"group_wait": "0s", "group_interval": "2s", "repeat_interval": "4s"},
        'severity="warning"': {"group_wait": "3s", "group_interval": "2s", "repeat_interval": "1h"},
    }
    for route in config["route"]["routes"]:
        key = route["receiver"] if route["receiver"] == "chat-bridge" else route["matchers"][0]
        route.update(timings.get(key, {}))
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook_url
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


@dataclass
class Rig:
    settings: Settings  # Redis, the Alertmanager; a namespace per test via ``fresh``
    alertmanager: infra.LocalAlertmanager
    mailbox: Mailbox
    bridge: ChatBridge

    @property
    def am(self) -> str:
        return self.alertmanager.url


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    run_dir = tmp_path_factory.mktemp("notify-run")
    mailbox, bridge = Mailbox(), ChatBridge()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    hooks = webhook_server(bridge)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    config = routing_for_tests(
        run_dir / "alertmanager.yml", smtp.port, f"http://127.0.0.1:{hooks.server_port}/alertmanager"
    )
    settings = Settings(
        run_dir=run_dir,
        redis_url=None,
        redis_port=free_port(),
        alertmanager_urls=None,
        alertmanager_port=free_port(),
        alertmanager_config=config,
        notify_poll_seconds=0.2,
        console_url="https://ioc.hanoi.example/",
    )
    local_redis, alertmanager = infra.LocalRedis(settings), infra.LocalAlertmanager(settings)
    try:
        local_redis.start()
        alertmanager.start()
        yield Rig(settings, alertmanager, mailbox, bridge)
    finally:
        alertmanager.stop()
        local_redis.stop()
        hooks.shutdown()
        smtp.stop()


def fresh(rig: Rig, **overrides: object) -> Settings:
    name = f"t{uuid.uuid4().hex[:10]}"
    return rig.settings.model_copy(update={"redis_prefix": name, **overrides})


# --- alerts in the picture and the notifier ---------------------------------------------------------------


def new_alert(area: str, severity: str = "critical", rule: str = "traffic.incident", n: int = 0) -> Alert:
    base = Alert.model_validate(EXAMPLES["open_alert"])
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    return base.model_copy(
        update={
            "id": uuid.uuid4().hex[:20],
            "rule": rule,
            "entity": f"traffic-test-{n}",
            "entity_name": f"Nút giao {n}",
            "district": area,
            "district_name": f"Quận {area}",
            "severity": Severity(severity),
            "episode_start": start,
            "last_seen": start,
        }
    )


class Picture:
    """Writes alert events as the worker does, with a revision per alert."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.revisions: dict[str, int] = {}

    def write(self, alert: Alert, change: AlertChange) -> None:
        revision = self.revisions[alert.id] = self.revisions.get(alert.id, 0) + 1
        event = AlertEvent(change=change, revision=revision, at=datetime.now(UTC), alert=alert)

        async def write() -> None:
            client = connect(self.settings)
            try:
                assert await RedisPicture(self.settings, client).write_alert(event)
            finally:
                await client.aclose()

        asyncio.run(write())

    def open(self, alert: Alert) -> None:
        self.write(alert, AlertChange.opened)

    def acknowledge(self, alert: Alert) -> Alert:
        acked = alert.model_copy(
            update={"status": AlertStatus.acknowledged, "acknowledged_by": "op-1", "acknowledged_at": _now()}
        )
        self.write(acked, AlertChange.acknowledged)
        return acked

    def resolve(self, alert: Alert) -> Alert:
        done = alert.model_copy(
            update={"status": AlertStatus.resolved, "resolved_by": "system", "resolved_at": _now()}
        )
        self.write(done, AlertChange.resolved)
        return done


def _now() -> datetime:
    return datetime.now(UTC)


class NotifierProcess:
    def __init__(self, settings: Settings, log_file: Path) -> None:
        self.env = settings_env(settings)
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ioc", "notify"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


@pytest.fixture
def notifier_for(rig: Rig, tmp_path: Path) -> Iterator[Callable[[Settings], NotifierProcess]]:
    started: list[NotifierProcess] = []

    def start(settings: Settings) -> NotifierProcess:
        process = NotifierProcess(settings, tmp_path / f"notify-{len(started)}.log")
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 30, log: Callable[[], str] = str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s\n{log()}")


def am_alerts(rig: Rig, alert_ids: set[str], **params: str) -> list[dict[str, Any]]:
    held = httpx.get(f"{rig.am}/api/v2/alerts", params={"filter": 'source="ioc"', **params}, timeout=5)
    return [a for a in held.json() if a["labels"]["alert_id"] in alert_ids]


def ioc_silences(rig: Rig, alert_id: str) -> list[dict[str, Any]]:
    silences = httpx.get(f"{rig.am}/api/v2/silences", timeout=5).json()
    return [
        s
        for s in silences
        if s["status"]["state"] == "active" and any(m["value"] == alert_id for m in s["matchers"])
    ]


# --- the tests --------------------------------------------------------------------------------------------


def test_one_episode_one_email_one_resolution_and_quiet_after_acknowledgement(
    rig: Rig, notifier_for: Callable[[Settings], NotifierProcess]
) -> None:
    settings = fresh(rig)
    area = f"hoan-kiem-{uuid.uuid4().hex[:6]}"
    inbox = f"truc-ban.{area}@ioc.hanoi.example"
    picture = Picture(settings)
    notifier = notifier_for(settings)

    alert = new_alert(area, "critical")
    opened = time.time()
    picture.open(alert)
    first = wait_for("the first email", lambda: rig.mailbox.to(inbox), log=notifier.log)[0]
    print(f"alert opened → email received: {first.received - opened:.2f} s")
    assert first.to == [inbox]
    assert "ĐANG MỞ / OPEN" in first.subject and "critical" in first.subject
    assert alert.title.vi in first.body and alert.title.en in first.body
    assert alert.text.vi in first.body and alert.text.en in first.body
    assert f"https://ioc.hanoi.example/#alert={alert.id}" in first.body
    # The chat bridge heard it too, with the labels ioc sets.
    post = wait_for(
        "the chat bridge's post",
        lambda: [p for p in rig.bridge.posts if p["groupLabels"].get("area") == area],
    )
    labels = post[0]["alerts"][0]["labels"]
    assert labels == {
        "alertname": alert.rule,
        "severity": "critical",
        "feed": alert.feed,
        "area": area,
        "entity": alert.entity,
        "alert_id": alert.id,
        "source": "ioc",
    }
    assert post[0]["alerts"][0]["annotations"]["started"] == alert.episode_start.strftime("%Y-%m-%d %H:%M %z")
    assert f"Started: {alert.episode_start.strftime('%Y-%m-%d %H:%M %z')}" in first.body

    acked = picture.acknowledge(alert)
    wait_for("the acknowledgement's silence", lambda: ioc_silences(rig, alert.id), log=notifier.log)
    held = am_alerts(rig, {alert.id}, silenced="true")
    assert held and held[0]["status"]["state"] == "suppressed"
    # Unacknowledged, a critical alert is mailed again every CRITICAL_REPEAT seconds; acknowledged, never.
    time.sleep(3 * CRITICAL_REPEAT)
    assert len(rig.mailbox.to(inbox)) == 1, [m.subject for m in rig.mailbox.to(inbox)]

    resolved_at = time.time()
    picture.resolve(acked)
    mails = wait_for("the resolution notice", lambda: rig.mailbox.to(inbox)[1:], log=notifier.log)
    print(f"resolved → resolution notice: {mails[0].received - resolved_at:.2f} s")
    assert "ĐÃ KẾT THÚC / RESOLVED" in mails[0].subject
    wait_for("the silence deleted", lambda: not ioc_silences(rig, alert.id))
    time.sleep(2 * CRITICAL_REPEAT)
    assert len(rig.mailbox.to(inbox)) == 2  # one firing, one resolved
    assert not am_alerts(rig, {alert.id}, silenced="true", active="true")


def test_alerts_of_one_area_within_the_group_wait_arrive_in_one_message(
    rig: Rig, notifier_for: Callable[[Settings], NotifierProcess]
) -> None:
    settings = fresh(rig)
    area, other = f"dong-da-{uuid.uuid4().hex[:6]}", f"cau-giay-{uuid.uuid4().hex[:6]}"
    picture = Picture(settings)
    notifier_for(settings)
    alerts = [new_alert(area, "warning", "air.pm25", n) for n in range(3)]
    elsewhere = new_alert(other, "warning", "air.pm25", 9)
    # Apart by well under the group wait (3 s), even on a busy machine.
    for alert in [*alerts, elsewhere]:
        picture.open(alert)
        time.sleep(0.1)
    wait_for("the area's message", lambda: rig.mailbox.to(f"truc-ban.{area}@ioc.hanoi.example"))
    time.sleep(WARNING_WAIT + 2)  # a second message, if grouping failed, would be here by now
    mails = rig.mailbox.to(f"truc-ban.{area}@ioc.hanoi.example")
    assert len(mails) == 1, [m.subject for m in mails]
    assert all(alert.id in mails[0].body for alert in alerts)
    assert elsewhere.id not in mails[0].body
    assert "3 điểm đo / sensors" in mails[0].subject
    # The other area's alert went to its own inbox, alone.
    other_mails = rig.mailbox.to(f"truc-ban.{other}@ioc.hanoi.example")
    assert len(other_mails) == 1 and elsewhere.id in other_mails[0].body


def test_alertmanager_down_and_back_holds_every_open_alert_again(
    rig: Rig, notifier_for: Callable[[Settings], NotifierProcess]
) -> None:
    settings = fresh(rig)
    area = f"long-bien-{uuid.uuid4().hex[:6]}"
    picture = Picture(settings)
    notifier = notifier_for(settings)
    before = [new_alert(area, "warning", "water.level", n) for n in range(2)]
    for alert in before:
        picture.open(alert)
    ids = {alert.id for alert in before}
    wait_for("Alertmanager holding both", lambda: len(am_alerts(rig, ids)) == 2, log=notifier.log)

    rig.alertmanager.stop()
    during = new_alert(area, "warning", "water.level", 7)  # opened while Alertmanager is down
    picture.open(during)
    ended = picture.resolve(before[1])  # and one resolved meanwhile
    store = connect_sync(settings, decode_responses=True)

    def metrics() -> dict[str, str]:
        return store.hgetall(metrics_key(settings))

    wait_for("failures counted", lambda: int(metrics().get(f"failures|{rig.am}", 0)) >= 2, log=notifier.log)
    assert int(metrics()[f"queue|{rig.am}"]) == 2  # the new alert and the resolution wait
    assert metrics()[f"up|{rig.am}"] == "0"
    time.sleep(OUTAGE_SECONDS)
    failures = int(metrics()[f"failures|{rig.am}"])
    # Backed off: at most one attempt per 30 s once the back-off has grown, not one per 0.2 s poll.
    assert failures < 10 + OUTAGE_SECONDS / 30, failures
    rig.alertmanager.start()

    open_ids = {before[0].id, during.id}
    held = wait_for(
        "every open alert held again",
        lambda: (a := am_alerts(rig, open_ids)) and len(a) == 2 and a,
        timeout=60,
    )
    assert {a["labels"]["alert_id"] for a in held} == open_ids
    assert all(a["status"]["state"] == "active" for a in held)
    assert not am_alerts(rig, {ended.id})  # resolved while it was down: not open there
    wait_for(
        "the queue drained",
        lambda: metrics().get(f"queue|{rig.am}") == "0" and metrics()[f"up|{rig.am}"] == "1",
    )
    store.close()


def test_notifier_restarted_mid_episode_sends_no_second_notification(
    rig: Rig, notifier_for: Callable[[Settings], NotifierProcess]
) -> None:
    settings = fresh(rig)
    area = f"ba-dinh-{uuid.uuid4().hex[:6]}"
    inbox = f"truc-ban.{area}@ioc.hanoi.example"
    picture = Picture(settings)
    first = notifier_for(settings)
    alert = new_alert(area, "warning", "air.pm25")
    picture.open(alert)
    wait_for("the email", lambda: rig.mailbox.to(inbox), log=first.log)
    first.stop()
    notifier_for(settings)  # a new process: it knows nothing, Alertmanager does
    time.sleep(3 * WARNING_WAIT)
    assert len(rig.mailbox.to(inbox)) == 1
    assert len(am_alerts(rig, {alert.id})) == 1


def test_delivery_latency_from_alert_opened_to_email(
    rig: Rig, notifier_for: Callable[[Settings], NotifierProcess]
) -> None:
    """Critical alerts, each its own group, with the notifier's default poll (1 s): p50/p99 printed."""
    settings = fresh(rig, notify_poll_seconds=Settings.model_fields["notify_poll_seconds"].default)
    area = f"thanh-xuan-{uuid.uuid4().hex[:6]}"
    inbox = f"truc-ban.{area}@ioc.hanoi.example"
    picture = Picture(settings)
    notifier = notifier_for(settings)
    count = int(os.environ.get("IOC_NOTIFY_LATENCY_ALERTS", "30"))
    opened: dict[str, float] = {}
    for n in range(count):
        alert = new_alert(area, "critical", f"latency.rule-{n}", n)
        opened[alert.id] = time.time()
        picture.open(alert)
        time.sleep(0.37)  # not in step with the poll

    def first_mails() -> dict[str, float]:  # alert id → when its first email came (repeats follow)
        received: dict[str, float] = {}
        for mail in rig.mailbox.to(inbox):
            for alert_id in opened:
                if alert_id in mail.body and alert_id not in received:
                    received[alert_id] = mail.received
        return received

    wait_for("every email", lambda: len(first_mails()) == count, timeout=60, log=notifier.log)
    latencies = sorted(received - opened[alert_id] for alert_id, received in first_mails().items())
    assert len(latencies) == count
    p50 = statistics.median(latencies)
    p99 = latencies[min(count - 1, round(0.99 * (count - 1)))]
    print(
        f"delivery latency over {count} alerts: p50 {p50:.2f} s, p99 {p99:.2f} s, max {latencies[-1]:.2f} s"
    )
    assert p99 < 5


def test_every_listed_alertmanager_gets_alerts_and_ioc_silences_and_one_down_holds_back_nothing(
    rig: Rig, notifier_for: Callable[[Settings], NotifierProcess], tmp_path: Path
) -> None:
    second = infra.LocalAlertmanager(
        rig.settings.model_copy(update={"run_dir": tmp_path / "second", "alertmanager_port": free_port()})
    )
    second.start()
    try:
        first_url, second_url = rig.am, second.url
        settings = fresh(rig, alertmanager_urls=f"{first_url},{second_url}")
        area = f"hai-ba-trung-{uuid.uuid4().hex[:6]}"
        picture = Picture(settings)
        notifier = notifier_for(settings)
        loud, quiet = new_alert(area, "warning", "air.pm25", 1), new_alert(area, "warning", "air.pm25", 2)
        picture.open(loud)
        silenced = quiet.model_copy(update={"suppressed_by": Suppression(silence="s-roadworks")})
        picture.write(silenced, AlertChange.suppressed)  # an ioc silence covers it

        def holds(url: str, ids: set[str]) -> bool:
            held = httpx.get(f"{url}/api/v2/alerts", params={"filter": 'source="ioc"'}, timeout=5).json()
            return ids <= {a["labels"]["alert_id"] for a in held}

        def silenced_at(url: str, alert_id: str) -> bool:
            silences = httpx.get(f"{url}/api/v2/silences", timeout=5).json()
            return any(
                s["status"]["state"] == "active"
                and s["createdBy"] == "ioc"
                and s["matchers"][0]["value"] == alert_id
                for s in silences
            )

        for url in (first_url, second_url):
            wait_for(f"{url} holding both", lambda u=url: holds(u, {loud.id, quiet.id}), log=notifier.log)
            wait_for(
                f"{url} silencing the silenced one", lambda u=url: silenced_at(u, quiet.id), log=notifier.log
            )
            assert not silenced_at(url, loud.id)

        second.stop()
        late = new_alert(area, "warning", "air.pm25", 3)
        started = time.monotonic()
        picture.open(late)
        wait_for("the first holding the new alert", lambda: holds(first_url, {late.id}), log=notifier.log)
        assert time.monotonic() - started < 3  # the second, down, held nothing back
        picture.write(quiet.model_copy(update={"suppressed_by": None}), AlertChange.unsuppressed)
        wait_for("the silence gone at the first", lambda: not silenced_at(first_url, quiet.id))

        second.start()  # it kept its silences on disk, and forgot its alerts
        wait_for("the second holding all three", lambda: holds(second_url, {loud.id, quiet.id, late.id}))
        wait_for("the stale silence gone at the second", lambda: not silenced_at(second_url, quiet.id))
    finally:
        second.stop()
