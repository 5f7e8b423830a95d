"""The alert manager: lifecycle, idempotency, restart from JSON state, operator commands."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from ioc.alerts import manager
from ioc.alerts.rules import load_rules
from ioc.alerts.silence import Silence
from ioc.city import load_city
from ioc.models.alert import AlertChange, AlertCommand, AlertEvent, AlertStatus
from ioc.models.anomaly import Anomaly, Severity, alert_id

RULES = load_rules("hanoi")
CITY = load_city("hanoi")
# 14:05 on 23 November in Hanoi; given in UTC on purpose: messages must show the city's time.
T0 = datetime(2026, 11, 23, 7, 5, tzinfo=UTC)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def report(
    rule_id: str,
    entity: str,
    minute: float,
    value: float | None,
    *,
    firing: bool = True,
    start: float = 0,
    severity: Severity | None = None,
    band: str | None = None,
    baseline: float | None = None,
    threshold: float | None = None,
) -> Anomaly:
    """What a detector would send for ``rule_id`` on ``entity``, ``minute`` minutes after T0."""
    rule = RULES.get(rule_id)
    sensor = CITY.sensor(entity)
    assert sensor is not None
    return Anomaly(
        rule=rule.id,
        rule_version=RULES.version,
        kind=rule.kind,
        feed=rule.feed or sensor.kind,
        entity=entity,
        district=sensor.district,
        firing=firing,
        episode_start=minutes(start),
        observed_at=minutes(minute),
        window=rule.window,
        metric=rule.metric,
        value=value,
        unit=rule.unit,
        threshold=threshold if threshold is not None else rule.trigger.limit if rule.trigger else None,
        baseline=baseline,
        severity=severity or rule.severity_of(value),
        band=band,
    )


def aqi(minute: float, value: float, **kw) -> Anomaly:
    return report("air.aqi_band", "air-kim-lien", minute, value, band=kw.pop("band", "xau"), **kw)


def run(state: dict, anomalies: Iterable[Anomaly], silences: Iterable[Silence] = ()) -> list[AlertEvent]:
    return [e for a in anomalies for e in manager.apply_anomaly(state, a, RULES, CITY, list(silences))]


def command(action: str, event: AlertEvent, by: str = "op-lan", minute: float = 30, note: str | None = None):
    return AlertCommand(
        action=action,
        alert_id=event.alert.id,
        entity=event.alert.entity,
        by=by,
        at=minutes(minute),
        note=note,
    )


def test_first_firing_report_opens_an_alert_with_its_episode_id_and_evidence():
    state = manager.new_state()
    [event] = run(state, [aqi(0, 172)])
    alert = event.alert
    assert (event.change, event.revision, event.at) == (AlertChange.opened, 1, minutes(0))
    assert alert.id == alert_id("air.aqi_band", "air-kim-lien", minutes(0))
    assert (alert.fingerprint, alert.rule_version) == ("air.aqi_band|air-kim-lien", RULES.version)
    assert (alert.entity_name, alert.district, alert.district_name) == ("Kim Liên", "dong-da", "Đống Đa")
    assert (alert.status, alert.severity, alert.count, alert.peak) == (
        AlertStatus.open,
        Severity.warning,
        1,
        172,
    )
    assert alert.episode_start == alert.last_seen == minutes(0)
    evidence = alert.evidence
    assert (evidence.value, evidence.threshold, evidence.metric, evidence.window, evidence.band) == (
        172,
        150,
        "vn_aqi",
        "1h",
        "xau",
    )
    assert alert.suppressed_by is None and alert.incident is None
    wire = json.loads(event.to_json())
    assert wire["alert"]["episodeStart"] and wire["alert"]["entityName"] == "Kim Liên"


def test_updates_are_tracked_always_and_published_when_an_operator_would_see_a_difference():
    state = manager.new_state()
    published = run(
        state,
        [
            aqi(0, 172),  # opened
            aqi(1, 175),  # peak +1.7 %: quiet
            aqi(2, 195),  # peak +13 % over the published 172: updated
            aqi(3, 190),  # quiet
            aqi(4, 205, severity=Severity.critical),  # severity rose (peak only +5 %): updated
            aqi(5, 160),  # back to warning: quiet, the alert stays critical
            aqi(19, 165),  # 15 min after the last publication: heartbeat
        ],
    )
    assert [(e.change, e.alert.count, e.alert.peak) for e in published] == [
        (AlertChange.opened, 1, 172),
        (AlertChange.updated, 3, 195),
        (AlertChange.updated, 5, 205),
        (AlertChange.updated, 7, 205),
    ]
    last = published[-1].alert
    assert last.severity == Severity.critical and last.evidence.severity == Severity.warning
    assert (last.last_seen, last.evidence.value) == (minutes(19), 165)
    assert [e.revision for e in published] == [1, 2, 3, 4]
    assert len({e.alert.id for e in published}) == 1


def test_the_peak_follows_the_rule_direction():
    state = manager.new_state()
    events = run(
        state, [report("water.do_low", "water-ho-tay", m, v) for m, v in [(0, 1.9), (5, 1.5), (10, 1.7)]]
    )
    assert [e.change for e in events] == [AlertChange.opened, AlertChange.updated]
    assert events[-1].alert.peak == 1.5
    assert manager.alerts_of(state)[0].peak == 1.5 and manager.alerts_of(state)[0].count == 3


def test_a_cleared_condition_resolves_the_alert_by_system_at_the_clearing_time():
    state = manager.new_state()
    events = run(state, [aqi(0, 172), aqi(50, 135, firing=False)])
    assert [e.change for e in events] == [AlertChange.opened, AlertChange.resolved]
    resolved = events[-1].alert
    assert (resolved.status, resolved.resolved_by, resolved.resolved_at) == (
        AlertStatus.resolved,
        "system",
        minutes(50),
    )
    assert (
        resolved.last_seen == minutes(0) and resolved.count == 1
    )  # a clear is not an observation of the condition


def test_the_same_anomaly_twice_opens_once_and_counts_once():
    state = manager.new_state()
    assert len(run(state, [aqi(0, 172)])) == 1
    assert run(state, [aqi(0, 172)]) == []
    run(state, [aqi(1, 175), aqi(1, 175), aqi(0, 172)])  # a retry, and an older one redelivered
    assert manager.alerts_of(state)[0].count == 2
    assert len(run(state, [aqi(9, 130, firing=False)])) == 1
    assert run(state, [aqi(9, 130, firing=False), aqi(8, 170)]) == []


def test_a_whole_sequence_redelivered_after_a_crash_changes_nothing():
    sequence = [
        aqi(0, 172),
        aqi(3, 195),
        aqi(20, 210, severity=Severity.critical),
        aqi(60, 120, firing=False),
    ]
    state = manager.new_state()
    assert len(run(state, sequence)) == 4
    before = json.dumps(state, sort_keys=True)
    assert run(state, sequence) == []
    assert json.dumps(state, sort_keys=True) == before


def test_a_clear_at_the_same_instant_as_the_firing_report_still_resolves():
    # A health rule with no hold time may fire and clear on one event time; the clear must not be
    # mistaken for a duplicate.
    state = manager.new_state()
    stale = [
        report("health.stale", "air-kim-lien", 0, 4),
        report("health.stale", "air-kim-lien", 0, 0, firing=False),
    ]
    assert [e.change for e in run(state, stale)] == [AlertChange.opened, AlertChange.resolved]
    assert run(state, stale) == []


def _episode_mix() -> list[Anomaly]:
    fault = "health.flatline"
    return [
        aqi(0, 172),
        aqi(1, 176),
        aqi(2, 199),
        report(fault, "air-kim-lien", 3, 12, start=3),  # inhibits the AQI alert
        aqi(4, 230, severity=Severity.critical),
        aqi(21, 180),
        report(fault, "air-kim-lien", 25, 0, firing=False, start=3),
        aqi(26, 176),
        aqi(40, 135, firing=False),
        aqi(70, 160, start=70),  # the next episode
        aqi(71, 240, start=70, severity=Severity.critical),
    ]


SILENCE = Silence(
    id="s-1",
    matchers={"rule": "air.*"},
    starts_at=minutes(60),
    ends_at=minutes(120),
    created_by="op-lan",
    comment="sensor recalibration",
)


def test_state_reloaded_from_json_mid_episode_gives_identical_output():
    sequence = _episode_mix()
    straight = manager.new_state()
    expected = [e.to_json() for e in run(straight, sequence, [SILENCE])]
    assert len(expected) >= 8
    for cut in range(1, len(sequence)):
        state = manager.new_state()
        first = [e.to_json() for e in run(state, sequence[:cut], [SILENCE])]
        reloaded = json.loads(json.dumps(state))  # what a Faust table gives back after a restart
        rest = [e.to_json() for e in run(reloaded, sequence[cut:], [SILENCE])]
        assert first + rest == expected, f"differs when restarted after {cut} anomalies"
        assert json.dumps(reloaded, sort_keys=True) == json.dumps(straight, sort_keys=True)


def test_revisions_grow_by_one_per_alert():
    events = run(manager.new_state(), _episode_mix(), [SILENCE])
    by_alert: dict[str, list[int]] = {}
    for event in events:
        by_alert.setdefault(event.alert.id, []).append(event.revision)
    assert len(by_alert) == 3  # two AQI episodes and one fault
    assert all(revisions == list(range(1, len(revisions) + 1)) for revisions in by_alert.values())


def test_flapping_reports_give_one_alert_per_episode():
    # The detector's hysteresis decides episodes; whatever it sends, the manager makes exactly one alert
    # per episode start, and values hovering at the threshold inside an episode reopen nothing.
    state = manager.new_state()
    sequence = [
        aqi(0, 152),
        aqi(1, 149),
        aqi(2, 151),
        aqi(3, 148),  # hovering: one episode
        aqi(34, 139, firing=False),
        aqi(35, 153, start=35),
        aqi(66, 139, firing=False, start=35),
        aqi(67, 151, start=67),
        aqi(30, 152),  # a late report of the first episode
    ]
    events = run(state, sequence)
    opened = [e.alert for e in events if e.change == AlertChange.opened]
    assert [a.episode_start for a in opened] == [minutes(0), minutes(35), minutes(67)]
    assert len({a.id for a in opened}) == 3
    assert [e.change for e in events] == [AlertChange.opened, AlertChange.resolved] * 2 + [AlertChange.opened]
    assert (
        sum(1 for e in events if e.change == AlertChange.opened and e.alert.episode_start == minutes(0)) == 1
    )


def test_a_new_episode_without_a_clear_resolves_the_old_alert_first():
    state = manager.new_state()
    events = run(state, [aqi(0, 172), aqi(90, 180, start=85)])
    assert [(e.change, e.alert.episode_start) for e in events] == [
        (AlertChange.opened, minutes(0)),
        (AlertChange.resolved, minutes(0)),
        (AlertChange.opened, minutes(85)),
    ]
    assert events[1].alert.resolved_by == "system" and events[1].revision == 2 and events[2].revision == 1


def test_acknowledge_then_auto_resolve():
    state = manager.new_state()
    [opened] = run(state, [aqi(0, 172)])
    result = manager.apply_command(state, command("acknowledge", opened, note="đã báo đội môi trường"))
    assert result.ok
    [acked] = result.events
    assert (acked.change, acked.revision, acked.at) == (AlertChange.acknowledged, 2, minutes(30))
    assert (acked.alert.status, acked.alert.acknowledged_by, acked.alert.acknowledged_note) == (
        AlertStatus.acknowledged,
        "op-lan",
        "đã báo đội môi trường",
    )
    [update] = run(state, [aqi(31, 200, severity=Severity.critical)])
    assert update.alert.status == AlertStatus.acknowledged  # updates keep the acknowledgement
    [resolved] = run(state, [aqi(80, 130, firing=False)])
    assert (resolved.alert.status, resolved.alert.resolved_by, resolved.alert.acknowledged_by) == (
        AlertStatus.resolved,
        "system",
        "op-lan",
    )


def test_an_operator_resolved_alert_stays_resolved_while_its_episode_fires():
    state = manager.new_state()
    [opened] = run(state, [aqi(0, 172)])
    [resolved] = manager.apply_command(state, command("resolve", opened, minute=10, note="known")).events
    assert (resolved.alert.resolved_by, resolved.alert.resolved_at, resolved.alert.resolved_note) == (
        "op-lan",
        minutes(10),
        "known",
    )
    assert (
        run(state, [aqi(11, 190), aqi(30, 260, severity=Severity.critical), aqi(50, 130, firing=False)]) == []
    )
    [reopened] = run(state, [aqi(60, 175, start=60)])
    assert reopened.change == AlertChange.opened and reopened.alert.id != opened.alert.id
    assert reopened.alert.id == alert_id("air.aqi_band", "air-kim-lien", minutes(60))


def test_commands_that_the_lifecycle_does_not_allow_are_errors_that_change_nothing():
    state = manager.new_state()
    [opened] = run(state, [aqi(0, 172)])
    unknown = AlertCommand(
        action="acknowledge", alert_id="nope", entity="air-kim-lien", by="op", at=minutes(1)
    )
    result = manager.apply_command(state, unknown)
    assert not result.ok and "nope" in result.error and result.events == []

    ack = command("acknowledge", opened)
    assert len(manager.apply_command(state, ack).events) == 1
    again = manager.apply_command(state, ack)  # the same command redelivered
    assert again.ok and again.events == []
    other = manager.apply_command(state, command("acknowledge", opened, by="op-minh", minute=31))
    assert not other.ok and "already acknowledged by op-lan" in other.error

    resolve = command("resolve", opened, minute=40)
    assert [e.change for e in manager.apply_command(state, resolve).events] == [AlertChange.resolved]
    assert manager.apply_command(state, resolve).events == []
    before = json.dumps(state, sort_keys=True)
    for late in (
        command("resolve", opened, by="op-minh", minute=41),
        command("acknowledge", opened, by="x", minute=42),
    ):
        result = manager.apply_command(state, late)
        assert not result.ok and "already resolved" in result.error
    assert json.dumps(state, sort_keys=True) == before


def test_state_keeps_one_alert_per_fingerprint():
    state = manager.new_state()
    first = run(state, [aqi(0, 172), aqi(40, 130, firing=False)])[0]
    for episode in range(1, 6):
        start = episode * 100
        run(state, [aqi(start, 172, start=start), aqi(start + 40, 130, firing=False, start=start)])
    assert len(state["fingerprints"]) == 1 and len(manager.alerts_of(state)) == 1
    assert manager.alerts_of(state)[0].episode_start == minutes(500)
    result = manager.apply_command(state, command("acknowledge", first))
    assert not result.ok and "unknown" in result.error


def test_an_anomaly_of_a_rule_the_manager_does_not_know_still_opens_an_alert():
    state = manager.new_state()
    novel = aqi(0, 172).model_copy(update={"rule": "air.pm25_new"})
    [event] = run(state, [novel])
    assert event.alert.rule == "air.pm25_new" and "air.pm25_new" in event.alert.title.en
    assert "172" in event.alert.text.en


@pytest.mark.parametrize("firing", [True, False])
def test_a_report_of_an_older_episode_changes_nothing(firing):
    state = manager.new_state()
    run(state, [aqi(0, 172, start=0), aqi(60, 172, start=55)])
    assert run(state, [aqi(61, 190, start=0, firing=firing)]) == []
    [alert] = manager.alerts_of(state)
    assert alert.status == AlertStatus.open and alert.episode_start == minutes(55)
