"""The audit trail is derived from what the alert manager applied and from the silences' versions."""

from __future__ import annotations

from ioc.alerts import audit, manager
from ioc.alerts.audit import AuditAction
from ioc.alerts.silence import Matchers, Silence
from tests.unit.test_alert_manager import aqi, command, minutes, run


def test_operators_acknowledgement_and_resolution_are_entries_the_system_and_refusals_are_not():
    state = manager.new_state()
    [opened] = run(state, [aqi(0, 172)])
    assert audit.of_alert_event(opened) is None

    [acked] = manager.apply_command(
        state, command("acknowledge", opened, by="operator#1", note="on it")
    ).events
    entry = audit.of_alert_event(acked)
    assert entry is not None
    assert (entry.id, entry.action, entry.by, entry.at, entry.note) == (
        f"alert:{opened.alert.id}:acknowledged",
        AuditAction.acknowledged,
        "operator#1",
        minutes(30),
        "on it",
    )
    assert (entry.alert_id, entry.entity, entry.district) == (opened.alert.id, "air-kim-lien", "dong-da")
    assert entry.alert_title == opened.alert.title

    refused = manager.apply_command(state, command("acknowledge", opened, by="operator#2", minute=31))
    assert not refused.ok and refused.events == []  # nothing published, so nothing audited

    [resolved] = manager.apply_command(state, command("resolve", opened, by="admin#3", minute=40)).events
    assert audit.of_alert_event(resolved).id == f"alert:{opened.alert.id}:resolved"
    assert audit.of_alert_event(resolved) == audit.of_alert_event(resolved)  # a replay: the same entry

    other = manager.new_state()
    run(other, [aqi(0, 172)])
    [cleared] = run(other, [aqi(50, 120, firing=False)])
    assert cleared.alert.resolved_by == manager.SYSTEM and audit.of_alert_event(cleared) is None


def test_a_silence_is_audited_when_created_and_when_ended_early():
    created = Silence(
        id="s-1",
        matchers=Matchers(rule="air.*", district="dong-da"),
        starts_at=minutes(0),
        ends_at=minutes(180),
        created_by="operator#1",
        created_at=minutes(-1),
        comment="bụi công trình / construction dust",
    )
    ended = created.model_copy(update={"ends_at": minutes(60), "ended_by": "admin#3"})
    silenced, unsilenced = audit.of_silence(created), audit.of_silence(ended)
    assert (silenced.id, silenced.action, silenced.by, silenced.at) == (
        "silence:s-1:silenced",
        AuditAction.silenced,
        "operator#1",
        minutes(-1),
    )
    assert (unsilenced.id, unsilenced.action, unsilenced.by, unsilenced.at) == (
        "silence:s-1:unsilenced",
        AuditAction.unsilenced,
        "admin#3",
        minutes(60),
    )
    assert unsilenced.matchers == created.matchers and unsilenced.note == created.comment
    # Published without createdAt (by a tool, not the API): the start stands for it.
    bare = created.model_copy(update={"created_at": None})
    assert audit.of_silence(bare).at == minutes(0) == created.starts_at
