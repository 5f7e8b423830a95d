"""``ioc notify``: keeps every Alertmanager listed in step with the live picture.

A separate process rather than a Faust agent: it compares the picture (what operators see, in Redis)
with what each Alertmanager holds, every ``IOC_NOTIFY_POLL_SECONDS``, so it is level-triggered. Nothing
is lost while an Alertmanager is down or this process restarts: the picture still holds every open
alert, and Alertmanager itself holds what was sent (its alerts; its silences and notification log on
disk). An HTTP call that hangs for a minute never stalls the stream's partitions or commits. Run one.

Per Alertmanager, each cycle: (1) its uptime; a new one (first contact, or it restarted and forgot its
alerts) means resend everything, and whatever of ours it holds that is no longer open gets resolved;
(2) queue what changed, resolutions (endsAt) and the re-sends that fall due (``IOC_NOTIFY_RESEND_SECONDS``,
well inside its resolve_timeout); (3) post the queue; (4) make its ioc silences match the acknowledged and
silenced alerts. A failure keeps the queue (one entry per alert, the latest) and backs off, doubling up to
``MAX_BACKOFF``. Queue depth, failures and deliveries go to Redis (``<prefix>:notify``), and from there
into the API's ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from connectors.sinks.redis_picture import RedisPicture, connect
from ioc.models.alert import Alert
from ioc.notify.alertmanager import (
    ID_LABEL,
    SOURCE,
    alert_id_of,
    silence_changes,
    to_alertmanager,
    to_silence,
    wants_silence,
)
from ioc.notify.client import Alertmanager, AlertmanagerError
from ioc.settings import Settings, mask_password

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0  # seconds between attempts at an Alertmanager that keeps failing


REPORTED = ("queue", "failures", "delivered", "up")  # per Alertmanager, in the ``<prefix>:notify`` hash


def metrics_key(settings: Settings) -> str:
    return settings.redis_key("notify")


def read_report(fields: dict[str, str]) -> dict[str, dict[str, int]]:
    """The ``<prefix>:notify`` hash as {what: {Alertmanager URL: number}}, what in ``REPORTED``."""
    report: dict[str, dict[str, int]] = {what: {} for what in REPORTED}
    for name, value in fields.items():
        what, sep, url = name.partition("|")
        if sep and what in report:
            report[what][url] = int(value)
    return report


def outbox_key(payload: dict[str, Any]) -> tuple[str, str]:
    labels = payload["labels"]
    return labels[ID_LABEL], json.dumps(labels, sort_keys=True)


@dataclass
class Target:
    """One Alertmanager and what this process knows it holds."""

    am: Alertmanager
    open: dict[str, dict[str, Any]] = field(default_factory=dict)  # alert id → latest open payload
    # (alert id, its labels) → the payload to deliver: one entry per Alertmanager alert, the latest.
    outbox: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    sent_at: dict[str, float] = field(default_factory=dict)  # open alert id → monotonic time delivered
    uptime: str | None = None
    retry_at: float = 0.0
    backoff: float = 0.0
    failures: int = 0
    delivered: int = 0
    up: bool = False

    def queue(
        self,
        current: dict[str, Alert],
        ended: dict[str, Alert | None],
        console_url: str,
        now: datetime,
        clock: float,
        resend: float,
    ) -> None:
        """Queue what this Alertmanager should hear: new and changed open alerts, re-sends due, and the
        resolution of every alert it may hold open that the picture no longer lists as unresolved."""
        for alert_id, alert in current.items():
            before = self.open.get(alert_id)
            payload = to_alertmanager(alert, console_url, now, before["startsAt"] if before else None)
            due = clock - self.sent_at.get(alert_id, float("-inf")) >= resend
            if before is not None and before["labels"] != payload["labels"]:
                # Its severity rose: a new alert to Alertmanager, so the old one ends (or it would linger
                # until resolve_timeout).
                self.outbox[outbox_key(before)] = {**before, "endsAt": now.isoformat()}
            if due or before != payload:
                self.outbox[outbox_key(payload)] = payload
            self.open[alert_id] = payload
        for alert_id in [i for i in self.open if i not in current]:
            alert = ended.get(alert_id)
            if alert is not None and alert.unresolved:
                continue  # the index and the record disagree for a moment: ask again next cycle
            if alert is not None:
                payload = to_alertmanager(alert, console_url, now, self.open[alert_id]["startsAt"])
                self.outbox[outbox_key(payload)] = payload
            # No record at all (Redis flushed or restarted empty, a rebuild under way): ioc does not know
            # it resolved, so it is not sent as resolved; it is no longer re-sent and Alertmanager lets it
            # expire after resolve_timeout, unless the rebuilt picture brings it back first (no new
            # notification then: same labels).
            del self.open[alert_id]
            self.sent_at.pop(alert_id, None)

    def failed(self, clock: float, error: Exception, poll: float) -> None:
        self.failures += 1
        self.up = False
        self.backoff = min(max(self.backoff * 2, poll), MAX_BACKOFF)
        self.retry_at = clock + self.backoff
        log.warning(
            "Alertmanager %s: %s; retrying in %.0f s", mask_password(self.am.url), error, self.backoff
        )


class Notifier:
    def __init__(self, settings: Settings, redis: Redis, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.redis = redis
        self.picture = RedisPicture(settings, redis)
        self.targets = [Target(Alertmanager(url, client)) for url in settings.alertmanager_addresses]
        self.longest_silence = timedelta(seconds=settings.silence_max_duration_seconds)

    async def cycle(self) -> None:
        """One comparison of the picture with every Alertmanager."""
        clock = time.monotonic()
        reachable = [t for t in self.targets if clock >= t.retry_at]
        for target in reachable:
            try:
                await self.reconnect(target)
            except AlertmanagerError as error:
                target.failed(clock, error, self.settings.notify_poll_seconds)
        current = {alert.id: alert for alert in await self.picture.unresolved_alerts()}
        gone = {i for t in self.targets for i in t.open if i not in current}
        ended = {alert_id: await self.picture.alert(alert_id) for alert_id in gone}
        now = datetime.now(UTC)
        for target in self.targets:
            target.queue(
                current, ended, self.settings.console_url, now, clock, self.settings.notify_resend_seconds
            )
        for target in self.targets:
            if clock < target.retry_at:
                continue
            try:
                await self.deliver(target, current, now)
            except AlertmanagerError as error:
                target.failed(clock, error, self.settings.notify_poll_seconds)
        await self.report()

    async def reconnect(self, target: Target) -> None:
        """On first contact or after a restart: resend every open alert, and learn which of ours it holds
        (those no longer open get resolved by ``queue``)."""
        uptime = await target.am.uptime()
        if uptime == target.uptime:
            return
        held = await target.am.alerts(SOURCE)
        for am_alert in held:
            alert_id = alert_id_of(am_alert)
            if alert_id and alert_id not in target.open:
                target.open[alert_id] = {
                    key: am_alert[key] for key in ("labels", "annotations", "startsAt", "generatorURL")
                }
        target.sent_at.clear()
        if target.uptime is not None:
            log.info(
                "Alertmanager %s restarted: sending every open alert again", mask_password(target.am.url)
            )
        target.uptime = uptime

    async def deliver(self, target: Target, current: dict[str, Alert], now: datetime) -> None:
        outbox = dict(target.outbox)
        await target.am.post_alerts(list(outbox.values()))
        delivered_at = time.monotonic()
        for key, payload in outbox.items():
            if target.outbox.get(key) is payload:
                del target.outbox[key]
            if "endsAt" not in payload:
                target.sent_at[key[0]] = delivered_at
        target.delivered += len(outbox)
        # Resolutions are posted before their silences go, so a resolved alert is never briefly loud.
        wanted = {alert_id: alert for alert_id, alert in current.items() if wants_silence(alert)}
        missing, stale = silence_changes(wanted, await target.am.silences())
        for alert_id in sorted(missing):
            await target.am.post_silence(to_silence(wanted[alert_id], now, self.longest_silence))
        for silence_id in stale:
            await target.am.delete_silence(silence_id)
        target.up, target.backoff, target.retry_at = True, 0.0, 0.0

    async def report(self) -> None:
        """Per Alertmanager: queue depth, failed attempts and alerts delivered, for ``GET /metrics``."""
        fields: dict[str, str | int] = {}
        for target in self.targets:
            shown = mask_password(target.am.url)  # the report is read by /metrics, which anyone may scrape
            fields[f"queue|{shown}"] = len(target.outbox)
            fields[f"failures|{shown}"] = target.failures
            fields[f"delivered|{shown}"] = target.delivered
            fields[f"up|{shown}"] = int(target.up)
        fields["updated"] = int(time.time())
        await self.redis.hset(metrics_key(self.settings), mapping=fields)


async def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Cycle every ``notify_poll_seconds`` until ``stop`` is set; Redis errors are logged and retried."""
    stop = stop or asyncio.Event()
    redis = connect(settings, socket_timeout=5)
    async with httpx.AsyncClient() as client:
        notifier = Notifier(settings, redis, client)
        log.info("notifying %s", ", ".join(mask_password(t.am.url) for t in notifier.targets))
        try:
            while not stop.is_set():
                try:
                    await notifier.cycle()
                except (RedisError, OSError) as error:  # the picture comes back; nothing queued is lost
                    log.warning("live picture unreadable: %s", error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), settings.notify_poll_seconds)
        finally:
            await redis.aclose()
