"""Notifications end to end: anomalies into the real broker, a real worker, API and ``ioc notify``, a real
Alertmanager with the shipped routing (short timings), a real SMTP server and webhook receiver.

An operator's acknowledgement through the API silences the alert at Alertmanager (no reminders), a worker
restarted mid-episode sends no second notification, and the condition clearing sends one resolution.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiosmtpd.controller import Controller

from connectors.kafka import create_topics
from ioc import infra
from ioc.models.anomaly import Anomaly, RuleKind, Severity, alert_id
from tests.conftest import TEST_KEYS, free_port
from tests.e2e.test_alerts_api import produce
from tests.integration.test_notify import (
    CRITICAL_REPEAT,
    WARNING_WAIT,
    ChatBridge,
    Mailbox,
    routing_for_tests,
    webhook_server,
)
from tests.processes import IocProcess, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime.now(HANOI).replace(second=0, microsecond=0) - timedelta(minutes=30)
OPERATOR = {"X-API-Key": TEST_KEYS["operator"]}

JAM = ("traffic.incident", "traffic-nga-tu-so", "traffic", "dong-da", Severity.warning)
SMOG = ("air.aqi_band", "air-hoan-kiem", "air", "hoan-kiem", Severity.critical)


def anomaly(which: tuple, at: datetime, *, firing: bool = True, value: float | None = None) -> Anomaly:
    rule, entity, feed, district, severity = which
    metric, usual, threshold = ("speed_score", 0.8, 0.7) if feed == "traffic" else ("vn_aqi", 260.0, 200.0)
    return Anomaly(
        rule=rule,
        rule_version="test",
        kind=RuleKind.statistical if feed == "traffic" else RuleKind.standard,
        feed=feed,
        entity=entity,
        district=district,
        firing=firing,
        episode_start=T0,
        observed_at=at,
        window="1h" if feed == "air" else "15m",
        metric=metric,
        value=usual if value is None else value,
        unit="1" if feed == "traffic" else "",
        threshold=threshold,
        severity=severity,
    )


def test_acknowledged_in_ioc_means_quiet_and_a_worker_restart_sends_nothing_twice(settings, tmp_path):
    mailbox, bridge = Mailbox(), ChatBridge()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    hooks = webhook_server(bridge)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    config = routing_for_tests(
        tmp_path / "alertmanager.yml", smtp.port, f"http://127.0.0.1:{hooks.server_port}/alertmanager"
    )
    am_settings = settings.model_copy(
        update={"run_dir": tmp_path / "am", "alertmanager_port": free_port(), "alertmanager_config": config}
    )
    alertmanager = infra.LocalAlertmanager(am_settings)
    create_topics(settings)
    port = free_port()
    env = {"alertmanager_urls": alertmanager.url, "notify_poll_seconds": 0.2}
    processes: list[IocProcess] = []
    smog_inbox, jam_inbox = "truc-ban.hoan-kiem@ioc.hanoi.example", "truc-ban.dong-da@ioc.hanoi.example"
    smog, jam = alert_id(SMOG[0], SMOG[1], T0), alert_id(JAM[0], JAM[1], T0)
    try:
        alertmanager.start()
        worker = IocProcess(["worker"], settings, tmp_path / "worker-1.log")
        api = IocProcess(
            ["api", "--port", str(port)], settings, tmp_path / "api.log", command_wait_seconds=20
        )
        notify = IocProcess(["notify"], settings, tmp_path / "notify.log", **env)
        processes += [worker, api, notify]
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=OPERATOR, timeout=30)
        wait_for(lambda: http.get("/healthz").status_code == 200, timeout=60, processes=processes)

        produced = time.time()
        produce(settings, anomaly(SMOG, T0 + timedelta(minutes=5)), anomaly(JAM, T0 + timedelta(minutes=5)))
        first = wait_for(lambda: mailbox.to(smog_inbox), timeout=180, processes=processes)[0]
        print(f"anomaly produced → email received (worker, picture, notifier, Alertmanager, SMTP): "
              f"{first.received - produced:.2f} s")  # fmt: skip
        assert smog in first.body and "critical" in first.subject
        wait_for(lambda: mailbox.to(jam_inbox), timeout=30, processes=processes)

        # The operator acknowledges through the API: Alertmanager silences that alert.
        acked = http.post(f"/v1/alerts/{smog}/ack", json={"note": "Đã báo phường / ward informed"})
        assert acked.status_code in (200, 202), acked.text
        acked_at = time.monotonic()

        def silenced() -> bool:
            silences = httpx.get(f"{alertmanager.url}/api/v2/silences", timeout=5).json()
            return any(
                s["status"]["state"] == "active" and s["matchers"][0]["value"] == smog for s in silences
            )

        wait_for(silenced, timeout=30, processes=processes)

        # The worker restarts mid-episode and the jam fires again: the same episode, no second email.
        worker.stop()
        worker = IocProcess(["worker"], settings, tmp_path / "worker-2.log")
        processes[0] = worker
        produce(settings, anomaly(JAM, T0 + timedelta(minutes=10), value=0.97))  # worse: the alert updates
        wait_for(
            lambda: http.get(f"/v1/alerts/{jam}").json()["peak"] == 0.97, timeout=180, processes=processes
        )
        time.sleep(3 * WARNING_WAIT)
        assert len(mailbox.to(jam_inbox)) == 1, [m.subject for m in mailbox.to(jam_inbox)]

        # Unacknowledged, the critical alert would have been mailed every CRITICAL_REPEAT seconds.
        time.sleep(max(0.0, 3 * CRITICAL_REPEAT - (time.monotonic() - acked_at)))
        assert len(mailbox.to(smog_inbox)) == 1, [m.subject for m in mailbox.to(smog_inbox)]

        # The air clears: resolved by the system, one resolution notice, the silence gone.
        produce(settings, anomaly(SMOG, T0 + timedelta(minutes=15), firing=False))
        resolution = wait_for(lambda: mailbox.to(smog_inbox)[1:], timeout=60, processes=processes)[0]
        assert "RESOLVED" in resolution.subject and smog in resolution.body
        wait_for(lambda: not silenced(), timeout=30, processes=processes)
        time.sleep(2 * CRITICAL_REPEAT)
        assert len(mailbox.to(smog_inbox)) == 2
    finally:
        for process in processes:
            process.stop()
        alertmanager.stop()
        hooks.shutdown()
        smtp.stop()
