"""Incidents: a district's alerts close in time, across feeds, grouped with order-independent ids."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest

from ioc.alerts import incidents, manager
from ioc.models.alert import AlertEvent, IncidentChange, IncidentStatus
from ioc.models.anomaly import Anomaly, Severity
from tests.unit.test_alert_manager import CITY, RULES, minutes, report

WINDOW = RULES.incident_minutes
# Sensors of three feeds in Đống Đa.
JAM, AIR, STATION = "traffic-nga-tu-so", "air-kim-lien", "metro-2a-cat-linh"
# Hoàn Kiếm lake (issue 21): the walking street's crowd zone and a segment of the lake's ring road.
LAKE_ZONE, LAKE_ROAD = "crowd-ho-guom-walking-street", "traffic-dinh-tien-hoang"


class Alerts:
    """The alert manager for several entities (one state each, as the agent keeps them)."""

    def __init__(self) -> None:
        self.states: dict[str, dict] = {}

    def send(self, *anomalies: Anomaly) -> list[AlertEvent]:
        events = []
        for anomaly in anomalies:
            state = self.states.setdefault(anomaly.entity, manager.new_state())
            events += manager.apply_anomaly(state, anomaly, RULES, CITY)
        return events


def jam(minute: float, start: float | None = None, *, firing: bool = True, entity: str = JAM) -> Anomaly:
    value = 0.3 if firing else 0.8
    start = minute if start is None else start
    return report(
        "traffic.incident", entity, minute, value, firing=firing, start=start, severity=Severity.warning
    )


def smog(minute: float, start: float | None = None, *, firing: bool = True, value: float = 172) -> Anomaly:
    return report("air.aqi_band", AIR, minute, value, firing=firing, start=minute if start is None else start)


def crowd(minute: float, start: float | None = None, *, firing: bool = True) -> Anomaly:
    return report(
        "transit.crowding", STATION, minute, 4.0, firing=firing, start=minute if start is None else start
    )


def over_capacity(minute: float, start: float | None = None, *, value: float = 95) -> Anomaly:
    return report("crowd.over_capacity", LAKE_ZONE, minute, value, start=minute if start is None else start)


def group(state: dict, events: list[AlertEvent]):
    return [i for e in events for i in incidents.apply_alert_event(state, e, RULES, CITY)]


def test_a_traffic_jam_and_an_air_quality_rise_nearby_are_one_incident():
    alerts, state = Alerts(), incidents.new_state()
    [opened] = group(state, alerts.send(jam(0)))
    expected_id = incidents.incident_id("dong-da", minutes(0))
    assert (opened.change, opened.revision, opened.incident.id) == (IncidentChange.opened, 1, expected_id)
    [joined] = group(state, alerts.send(smog(20)))
    incident = joined.incident
    assert (joined.change, joined.revision, incident.id) == (IncidentChange.updated, 2, expected_id)
    assert [m.rule for m in incident.members] == ["traffic.incident", "air.aqi_band"]
    assert incident.feeds == ["traffic", "air"] and incident.district_name == "Đống Đa"
    assert (incident.status, incident.started_at) == (IncidentStatus.open, minutes(0))
    assert incident.title.en == "Traffic incident + Bad air quality in Đống Đa"
    assert incident.title.vi == "Sự cố giao thông + Chất lượng không khí Xấu tại Đống Đa"
    assert incident.text.en.startswith(
        "2 alerts (traffic, air) in Đống Đa since 14:05 23/11: Ngã Tư Sở, Kim Liên."
    )
    assert incident.text.vi.startswith("2 cảnh báo (giao thông, không khí) tại Đống Đa từ 14:05 ngày 23/11")


def test_alerts_further_apart_than_the_window_are_separate_incidents():
    alerts, state = Alerts(), incidents.new_state()
    first = group(state, alerts.send(jam(0)))
    second = group(state, alerts.send(smog(WINDOW + 1)))
    assert [e.change for e in first + second] == [IncidentChange.opened, IncidentChange.opened]
    assert second[0].incident.id == incidents.incident_id("dong-da", minutes(WINDOW + 1))
    assert len(incidents.incidents_of(state)) == 2


@pytest.mark.parametrize("apart", [0, WINDOW / 2, WINDOW])
def test_a_crowd_at_the_lake_and_a_jam_on_its_ring_road_are_one_incident(apart):
    # Issue 21, with the shipped registry and rules: both sensors are in Hoàn Kiếm, so the alerts meet.
    assert CITY.sensor(LAKE_ZONE).district == CITY.sensor(LAKE_ROAD).district == "hoan-kiem"
    alerts, state = Alerts(), incidents.new_state()
    [opened] = group(state, alerts.send(over_capacity(0)))
    [joined] = group(state, alerts.send(jam(apart, entity=LAKE_ROAD)))
    incident = joined.incident
    assert (joined.change, incident.id) == (IncidentChange.updated, opened.incident.id)
    assert incident.id == incidents.incident_id("hoan-kiem", minutes(0))
    assert [(m.rule, m.entity) for m in incident.members] == [
        ("crowd.over_capacity", LAKE_ZONE),
        ("traffic.incident", LAKE_ROAD),
    ]
    assert (incident.district, incident.district_name, incident.feeds) == (
        "hoan-kiem",
        "Hoàn Kiếm",
        ["crowd", "traffic"],
    )
    assert [i.id for i in incidents.incidents_of(state)] == [incident.id]


def test_a_crowd_at_the_lake_and_a_later_jam_on_its_ring_road_are_two_incidents():
    alerts, state = Alerts(), incidents.new_state()
    first = group(state, alerts.send(over_capacity(0)))
    second = group(state, alerts.send(jam(WINDOW + 1, entity=LAKE_ROAD)))
    assert [e.change for e in first + second] == [IncidentChange.opened, IncidentChange.opened]
    assert {i.id: [m.entity for m in i.members] for i in incidents.incidents_of(state)} == {
        incidents.incident_id("hoan-kiem", minutes(0)): [LAKE_ZONE],
        incidents.incident_id("hoan-kiem", minutes(WINDOW + 1)): [LAKE_ROAD],
    }


def test_grouping_is_single_linkage_on_episode_starts():
    alerts, state = Alerts(), incidents.new_state()
    step = WINDOW - 5
    group(state, alerts.send(jam(0), smog(step), crowd(2 * step)))  # first and last are 2×step apart
    [incident] = incidents.incidents_of(state)
    assert [m.feed for m in incident.members] == ["traffic", "air", "transit"]


def test_an_alert_that_bridges_two_incidents_merges_them_into_the_earlier_one():
    alerts, state = Alerts(), incidents.new_state()
    apart = WINDOW + 10
    group(state, alerts.send(jam(0), crowd(apart)))
    early, late = (incidents.incident_id("dong-da", minutes(m)) for m in (0, apart))
    assert {i.id for i in incidents.incidents_of(state)} == {early, late}
    events = group(state, alerts.send(smog(apart / 2)))
    assert [(e.change, e.incident.id, e.merged_into) for e in events] == [
        (IncidentChange.updated, early, None),
        (IncidentChange.merged, late, early),
    ]
    assert [i.id for i in incidents.incidents_of(state)] == [early]
    assert len(incidents.incidents_of(state)[0].members) == 3


def test_a_late_alert_that_started_earlier_gives_the_incident_the_earlier_id():
    alerts, state = Alerts(), incidents.new_state()
    group(state, alerts.send(smog(20)))
    events = group(state, alerts.send(jam(25, start=5)))  # the jam began at 5; its first report came at 25
    earlier, later = (incidents.incident_id("dong-da", minutes(m)) for m in (5, 20))
    assert [(e.change, e.incident.id, e.merged_into) for e in events] == [
        (IncidentChange.opened, earlier, None),
        (IncidentChange.merged, later, earlier),
    ]


def _scenario() -> list[AlertEvent]:
    alerts = Alerts()
    return alerts.send(
        jam(0),
        smog(12),
        jam(13, start=0),
        report("transit.crowding", "metro-2a-la-thanh", 14, 3.5, start=14),  # never clears here
        smog(20, start=12, value=215).model_copy(update={"severity": Severity.critical}),
        crowd(70),  # more than the window after 14: a second incident
        jam(80, start=0, firing=False),
        crowd(95, start=70),
        smog(120, start=12, firing=False),
        crowd(100, start=70, firing=False),
        jam(150),  # a new episode of the first jam: a third incident
    )


def _final(state: dict) -> dict:
    return {
        i.id: (i.status, i.severity, [(m.alert_id, m.status) for m in i.members])
        for i in incidents.incidents_of(state)
    }


def test_incident_ids_and_members_do_not_depend_on_arrival_order():
    events = _scenario()
    assert len(events) >= 10
    in_order = incidents.new_state()
    group(in_order, events)
    expected = _final(in_order)
    assert len(expected) == 3 and {i.status for i in incidents.incidents_of(in_order)} == {
        IncidentStatus.open,
        IncidentStatus.resolved,
    }
    shuffler = random.Random(7)
    for _ in range(30):
        shuffled = events[:]
        shuffler.shuffle(shuffled)
        state = incidents.new_state()
        group(state, shuffled)
        assert _final(state) == expected


def test_after_every_event_the_held_incidents_are_those_of_the_alerts_so_far():
    # Only incidents whose members changed are rebuilt: none may be left stale along the way.
    events = _scenario()
    shuffler = random.Random(11)
    for _ in range(20):
        shuffled = events[:]
        shuffler.shuffle(shuffled)
        state = incidents.new_state()
        for count, event in enumerate(shuffled, 1):
            group(state, [event])
            latest: dict[str, AlertEvent] = {}
            for each in shuffled[:count]:
                if each.alert.id not in latest or each.revision > latest[each.alert.id].revision:
                    latest[each.alert.id] = each
            fresh = incidents.new_state()
            group(fresh, list(latest.values()))
            assert incidents.incidents_of(state) == incidents.incidents_of(fresh)


def test_revisions_grow_by_one_per_incident_and_replays_change_nothing():
    events = _scenario()
    state = incidents.new_state()
    published = group(state, events)
    by_id: dict[str, list[int]] = {}
    for event in published:
        by_id.setdefault(event.incident.id, []).append(event.revision)
    assert all(revisions == list(range(1, len(revisions) + 1)) for revisions in by_id.values())
    before = json.dumps(state, sort_keys=True)
    assert group(state, events) == []
    assert json.dumps(state, sort_keys=True) == before


def test_state_reloaded_from_json_gives_identical_output():
    events = _scenario()
    expected = [e.to_json() for e in group(incidents.new_state(), events)]
    for cut in range(1, len(events)):
        state = incidents.new_state()
        first = [e.to_json() for e in group(state, events[:cut])]
        rest = [e.to_json() for e in group(json.loads(json.dumps(state)), events[cut:])]
        assert first + rest == expected


def test_device_faults_form_no_incident_and_an_inhibited_alert_leaves_its_incident():
    alerts, state = Alerts(), incidents.new_state()
    [opened] = group(state, alerts.send(jam(0)))
    stale = report("health.stale", JAM, 5, 6, start=2)
    fault_events = alerts.send(stale)
    assert [e.alert.rule for e in fault_events] == ["health.stale", "traffic.incident"]  # opened, suppressed
    [dissolved] = group(state, fault_events)
    assert (dissolved.change, dissolved.incident.id, dissolved.revision) == (
        IncidentChange.dissolved,
        opened.incident.id,
        2,
    )
    assert incidents.incidents_of(state) == []
    # The fault clears: the jam alert is visible again and its incident comes back with the same id.
    [back] = group(state, alerts.send(report("health.stale", JAM, 9, 0, start=2, firing=False)))
    assert (back.change, back.incident.id, back.revision) == (IncidentChange.opened, opened.incident.id, 3)


def test_an_incident_resolves_with_its_last_member_and_reopens_when_one_joins():
    alerts, state = Alerts(), incidents.new_state()
    group(state, alerts.send(jam(0), smog(10)))
    [member_resolved] = group(state, alerts.send(jam(20, start=0, firing=False)))
    assert (member_resolved.change, member_resolved.incident.status) == (
        IncidentChange.updated,
        IncidentStatus.open,
    )
    [resolved] = group(state, alerts.send(smog(25, start=10, firing=False)))
    assert (resolved.change, resolved.incident.status) == (IncidentChange.resolved, IncidentStatus.resolved)
    [reopened] = group(state, alerts.send(crowd(30)))
    assert (reopened.change, reopened.incident.status) == (IncidentChange.reopened, IncidentStatus.open)
    assert reopened.incident.id == resolved.incident.id and len(reopened.incident.members) == 3


def test_an_alert_update_that_changes_only_last_seen_publishes_no_incident_event():
    alerts, state = Alerts(), incidents.new_state()
    group(state, alerts.send(jam(0)))
    heartbeat = alerts.send(jam(20, start=0))  # the manager's heartbeat: count and last-seen only
    assert [e.change.value for e in heartbeat] == ["updated"]
    assert group(state, heartbeat) == []
    critical = alerts.send(jam(21, start=0).model_copy(update={"severity": Severity.critical}))
    [updated] = group(state, critical)
    assert updated.change == IncidentChange.updated and updated.incident.severity == Severity.critical


def test_old_resolved_incidents_are_forgotten_and_their_replays_ignored():
    alerts, state = Alerts(), incidents.new_state()
    history = []
    for day_hour in range(0, 48, 2):  # a two-hour episode every other hour for two days
        start = day_hour * 60
        history += alerts.send(smog(start, start=start), smog(start + 60, start=start, firing=False))
    group(state, history)
    retention = max(incidents.RETENTION, 2 * timedelta(minutes=WINDOW))
    kept = incidents.incidents_of(state)
    assert 0 < len(kept) <= retention / timedelta(hours=2) + 1
    assert len(state["alerts"]) == len(kept) and len(state["retired"]) <= retention / timedelta(hours=2) + 1
    assert group(state, history[:4]) == []  # the first day, redelivered
