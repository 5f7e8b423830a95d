"""The pure half of ``ioc notify``: alerts as Alertmanager alerts and silences, the plan of what to send,
and its report in ``/metrics``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.sinks.redis_metrics import RedisSnapshot
from ioc.api.examples import EXAMPLES
from ioc.api.metrics import families, render
from ioc.models.alert import Alert, AlertStatus, Suppression
from ioc.models.anomaly import Severity
from ioc.notify.alertmanager import (
    alert_id_of,
    silence_changes,
    silenced_alert_id,
    to_alertmanager,
    to_silence,
    wants_silence,
)
from ioc.notify.runner import Target

CONSOLE = "https://ioc.hanoi.example/"
NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def an_alert(**update: object) -> Alert:
    return Alert.model_validate(EXAMPLES["open_alert"]).model_copy(update=update)


def test_an_open_alert_has_its_labels_bilingual_annotations_and_no_end() -> None:
    alert = an_alert()
    posted = to_alertmanager(alert, CONSOLE, NOW)
    assert posted["labels"] == {
        "alertname": "traffic.incident",
        "severity": "critical",
        "feed": "traffic",
        "area": "dong-da",
        "entity": "traffic-nga-tu-so",
        "alert_id": alert.id,
        "source": "ioc",
    }
    annotations = posted["annotations"]
    assert annotations["title_vi"] == alert.title.vi and annotations["title_en"] == alert.title.en
    assert annotations["description_vi"] == alert.text.vi and annotations["description_en"] == alert.text.en
    assert annotations["console_url"] == posted["generatorURL"] == f"{CONSOLE}#alert={alert.id}"
    assert annotations["started"] == "2026-11-23 07:15 +0700"  # the episode's start, for people
    # Alertmanager's clock: when ioc first told it, so its group wait gathers a burst. The episode began
    # minutes before its window closed; as startsAt, it would flush the group with its first alert alone.
    assert posted["startsAt"] == NOW.isoformat()
    resent = to_alertmanager(alert, CONSOLE, NOW + timedelta(minutes=9), "2026-11-23T01:00:00Z")
    assert resent["startsAt"] == "2026-11-23T01:00:00Z"
    assert "endsAt" not in posted and "ended" not in annotations


def test_a_resolved_alert_ends_when_ioc_says_so_and_shows_when_it_resolved() -> None:
    resolved = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
    alert = an_alert(status=AlertStatus.resolved, resolved_at=resolved)
    posted = to_alertmanager(alert, CONSOLE, NOW, "2026-11-23T00:50:00+00:00")
    # endsAt never precedes startsAt (Alertmanager refuses that), though the resolution's event time may.
    assert posted["startsAt"] == "2026-11-23T00:50:00+00:00" and posted["endsAt"] == NOW.isoformat()
    assert posted["annotations"]["ended"] == "2026-11-23 00:30 +0000"


def test_acknowledged_and_ioc_silenced_alerts_want_a_silence_on_their_id() -> None:
    assert not wants_silence(an_alert())
    acked = an_alert(status=AlertStatus.acknowledged, acknowledged_by="op-1")
    silenced = an_alert(suppressed_by=Suppression(silence="s-1"))
    inhibited = an_alert(suppressed_by=Suppression(inhibited_by="a-2"))
    assert wants_silence(acked) and wants_silence(silenced) and not wants_silence(inhibited)
    assert not wants_silence(acked.model_copy(update={"status": AlertStatus.resolved}))
    silence = to_silence(acked, NOW, timedelta(days=30))
    assert silence["matchers"] == [{"name": "alert_id", "value": acked.id, "isRegex": False, "isEqual": True}]
    assert silence["createdBy"] == "ioc" and "op-1" in silence["comment"]
    assert silence["endsAt"] == (NOW + timedelta(days=30)).isoformat()


def _existing(silence_id: str, alert_id: str, by: str = "ioc", state: str = "active") -> dict:
    return {
        "id": silence_id,
        "createdBy": by,
        "status": {"state": state},
        "matchers": [{"name": "alert_id", "value": alert_id, "isRegex": False, "isEqual": True}],
    }


def test_silences_are_created_for_what_is_wanted_and_ours_deleted_when_not() -> None:
    existing = [
        _existing("s1", "a"),  # wanted, kept
        _existing("s2", "a"),  # a duplicate: deleted
        _existing("s3", "b"),  # no longer wanted: deleted
        _existing("s4", "c", by="someone"),  # not ours: never touched
        _existing("s5", "d", state="expired"),  # over already
    ]
    missing, delete = silence_changes({"a", "d"}, existing)
    assert missing == {"d"} and delete == ["s2", "s3"]
    assert silenced_alert_id(_existing("x", "c", by="someone")) is None
    assert alert_id_of({"labels": {"alert_id": "a", "source": "ioc"}}) == "a"
    assert alert_id_of({"labels": {"alert_id": "a"}}) is None


def test_the_queue_holds_changes_resends_due_and_resolutions() -> None:
    target = Target(am=None)  # type: ignore[arg-type]  # queue() never calls it
    alert = an_alert(severity=Severity.warning)
    target.queue({alert.id: alert}, {}, CONSOLE, NOW, clock=100.0, resend=60)
    assert [key[0] for key in target.outbox] == [alert.id]
    target.outbox.clear()
    target.sent_at[alert.id] = 100.0
    later = NOW + timedelta(seconds=30)
    target.queue({alert.id: alert}, {}, CONSOLE, later, clock=130.0, resend=60)
    assert target.outbox == {}  # unchanged (startsAt is still the first send's), not due
    peaked = alert.model_copy(update={"peak": 0.1, "count": 5})
    target.queue({alert.id: peaked}, {}, CONSOLE, NOW, clock=131.0, resend=60)
    assert target.outbox == {}  # nothing Alertmanager sees changed
    worse = alert.model_copy(update={"severity": Severity.critical})
    target.queue({alert.id: worse}, {}, CONSOLE, NOW, clock=132.0, resend=60)
    # At once, not at the re-send; and the warning, a different alert to Alertmanager, ends.
    sent = sorted(target.outbox.values(), key=lambda payload: payload["labels"]["severity"])
    assert [(p["labels"]["severity"], p.get("endsAt")) for p in sent] == [
        ("critical", None),
        ("warning", NOW.isoformat()),
    ]
    target.outbox.clear()
    target.queue({alert.id: worse}, {}, CONSOLE, NOW, clock=133.0, resend=60)
    assert target.outbox == {}
    target.queue({alert.id: worse}, {}, CONSOLE, NOW, clock=161.0, resend=60)
    assert [p["labels"]["severity"] for p in target.outbox.values()] == ["critical"]  # due again
    target.outbox.clear()
    # Resolved: gone from the unresolved alerts; its record says when.
    resolved = worse.model_copy(update={"status": AlertStatus.resolved, "resolved_at": NOW})
    target.queue({}, {alert.id: resolved}, CONSOLE, NOW, clock=162.0, resend=60)
    [payload] = target.outbox.values()
    assert payload["endsAt"] == NOW.isoformat() and alert.id not in target.open
    assert payload["startsAt"] == NOW.isoformat()  # the first send's, as Alertmanager holds it
    # Gone from the picture altogether (Redis flushed): not resolved, no longer re-sent either.
    target.outbox.clear()
    other = an_alert(id="other")
    target.queue({"other": other}, {}, CONSOLE, NOW, clock=163.0, resend=60)
    target.outbox.clear()
    target.queue({}, {"other": None}, CONSOLE, NOW, clock=164.0, resend=60)
    assert target.outbox == {} and "other" not in target.open


def test_the_notifier_report_is_in_metrics_per_alertmanager() -> None:
    fields = {
        "queue|http://am1:9093": "3",
        "failures|http://am1:9093": "7",
        "delivered|http://am1:9093": "12",
        "up|http://am1:9093": "0",
        "updated": "1764800000",
    }
    text = render(families(None, RedisSnapshot(notify=fields), 0.01)).decode()
    assert 'ioc_notify_queue{alertmanager="http://am1:9093"} 3.0' in text
    assert 'ioc_notify_failures_total{alertmanager="http://am1:9093"} 7.0' in text
    assert 'ioc_notify_delivered_total{alertmanager="http://am1:9093"} 12.0' in text
    assert 'ioc_notify_up{alertmanager="http://am1:9093"} 0.0' in text
    assert "ioc_notify_last_cycle_timestamp_seconds 1.7648e+09" in text
