"""Incidents: alerts of one district close in time, across feeds, are one incident (a traffic incident
and a NO2/PM2.5 rise nearby in the same half hour).

The stage consumes the alert events (``<prefix>.alerts``) re-keyed by *district*: grouping needs every
alert of a district in one state. It publishes :class:`IncidentEvent` (key: incident id).

Grouping: the members are the district's standard and statistical alerts that are not suppressed
(device faults say nothing about the city; inhibited or silenced alerts are what operators chose not to
see). Ordered by episode start, consecutive members no more than ``RuleSet.incident_minutes`` apart
are in one incident (single linkage: A–B 20 min and B–C 20 min make A, B, C one incident). The grouping
is recomputed from the members after every event, so it depends only on the set of alerts (at their
latest revision), never on the order their events arrived in. The grouping is cheap (episode starts
only); an incident is rebuilt only when its members or one of them changed, since an incident is a
function of its members (a district holds hundreds of alerts a day, an event changes one).

Id: ``incident_id(district, earliest member episode start)``. Merges and splits follow from the
recomputation:

* an alert that bridges two incidents merges them: the one with the earlier start keeps its id and is
  **updated**; the other gets a last event **merged** with ``merged_into`` = the surviving id;
* a late alert that started before an incident's first member gives the incident a new id: the new id
  is **opened**, the old one **merged** into it;
* a member that leaves (it became suppressed) may split an incident: the part holding the earliest
  start keeps the id, the other part is **opened** with its own id; an incident left with no member is
  **dissolved**.

Status is open while any member is unresolved, **resolved** when all are (**reopened** if one joins
later). An **updated** event is published when membership, a member's status or severity, or the
incident's status change — not for a member's last-seen alone, to keep the topic small. Each incident
id has revisions that only grow, also across a merge and a later split back.

State is bounded: a resolved incident whose last member was seen more than ``retention`` before the
district's latest event time (the newest alert last-seen) is forgotten with its members, and an event
about an unknown alert last seen that long ago is ignored (a replay of forgotten history).

State (JSON, one per district)::

    {"version": 1, "district": id, "districtName": name, "clock": "<ISO>" | null,
     "alerts": {"<alert id>": {"revision": n, "eligible": bool, "member": {<IncidentMember>}}},
     "incidents": {"<incident id>": {"revision": n, "incident": {<Incident>}}},
     "retired": {"<incident id>": {"revision": n, "at": "<ISO>"}}}
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from ioc.alerts import messages
from ioc.alerts.rules import Rule, RuleSet
from ioc.city import City
from ioc.models.alert import (
    Alert,
    AlertEvent,
    AlertStatus,
    Incident,
    IncidentChange,
    IncidentEvent,
    IncidentMember,
    IncidentStatus,
    worst,
)
from ioc.models.anomaly import RuleKind

STATE_VERSION = 1
RETENTION = timedelta(hours=6)
GROUPED_KINDS = frozenset({RuleKind.standard, RuleKind.statistical})


def incident_id(district: str, started_at: datetime) -> str:
    """Stable id of an incident: its district and the earliest episode start of its members."""
    text = f"incident|{district}|{started_at.timestamp():.0f}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def new_state() -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "district": None,
        "districtName": None,
        "clock": None,
        "alerts": {},
        "incidents": {},
        "retired": {},
    }


def apply_alert_event(
    state: dict[str, Any], event: AlertEvent, rules: RuleSet, city: City
) -> list[IncidentEvent]:
    """Apply one alert event of this district; return the incident events it causes. Mutates ``state``."""
    alert = event.alert
    if alert.kind not in GROUPED_KINDS:
        return []
    known = state["alerts"].get(alert.id)
    if known is not None and event.revision <= known["revision"]:
        return []  # a retry or a replay of an event already applied
    window = timedelta(minutes=rules.incident_minutes)
    retention = max(RETENTION, 2 * window)
    clock = _time(state["clock"])
    if known is None and clock is not None and alert.last_seen < clock - retention:
        return []  # forgotten history, replayed
    state["district"], state["districtName"] = alert.district, alert.district_name
    state["clock"] = (max(clock, alert.last_seen) if clock is not None else alert.last_seen).isoformat()
    eligible, member = alert.suppressed_by is None, _member(alert).to_state()
    state["alerts"][alert.id] = {"revision": event.revision, "eligible": eligible, "member": member}
    if known is not None and known["eligible"] and eligible and _seen_again(state, known["member"], member):
        events = []  # only a member's last-seen moved: no incident changes materially
    else:
        events = _regroup(state, window, rules, city, event.at, changed=alert.id)
    _forget(state, retention)
    return events


def incidents_of(state: dict[str, Any]) -> list[Incident]:
    """The district's current incidents, as last computed."""
    return [Incident.model_validate(held["incident"]) for held in state["incidents"].values()]


# --- grouping ---------------------------------------------------------------------------------------


def _member(alert: Alert) -> IncidentMember:
    return IncidentMember(
        alert_id=alert.id,
        rule=alert.rule,
        kind=alert.kind,
        feed=alert.feed,
        entity=alert.entity,
        entity_name=alert.entity_name,
        severity=alert.severity,
        status=alert.status,
        episode_start=alert.episode_start,
        last_seen=alert.last_seen,
        title=alert.title,
    )


def _groups(members: dict[str, dict[str, Any]], window: timedelta) -> list[tuple[datetime, list[str]]]:
    """Single linkage on episode starts: (the group's start, its alert ids in order), from the members'
    held state (no model built: most groups are unchanged)."""
    ordered = sorted((_time(member["episodeStart"]), aid) for aid, member in members.items())
    groups: list[tuple[datetime, list[str]]] = []
    last: datetime | None = None
    for start, aid in ordered:
        if last is not None and start - last <= window:
            groups[-1][1].append(aid)
        else:
            groups.append((start, [aid]))
        last = start
    return groups


def _incident(
    state: dict[str, Any], iid: str, members: list[IncidentMember], rules: RuleSet, city: City
) -> Incident:
    district, district_name = state["district"], state["districtName"]
    severity = worst(*(m.severity for m in members))
    names = list(dict.fromkeys(m.rule for m in members))
    return Incident(
        id=iid,
        district=district,
        district_name=district_name,
        status=IncidentStatus.resolved
        if all(m.status == AlertStatus.resolved for m in members)
        else IncidentStatus.open,
        severity=severity,
        started_at=members[0].episode_start,
        last_seen=max(m.last_seen for m in members),
        feeds=list(dict.fromkeys(m.feed for m in members)),
        members=members,
        title=messages.incident_title([messages.rule_name(_rule(rules, r), r) for r in names], district_name),
        text=messages.incident_text(members, district_name, severity, city.timezone),
    )


def _rule(rules: RuleSet, rule_id: str) -> Rule | None:
    try:
        return rules.get(rule_id)
    except KeyError:
        return None


def _material(incident: dict[str, Any]) -> dict[str, Any]:
    """What an update is published for: everything but last-seen times."""
    members = [{k: v for k, v in m.items() if k != "lastSeen"} for m in incident["members"]]
    return {k: v for k, v in incident.items() if k not in ("lastSeen", "members", "text")} | {
        "members": members
    }


def _regroup(
    state: dict[str, Any], window: timedelta, rules: RuleSet, city: City, at: datetime, changed: str
) -> list[IncidentEvent]:
    """The incident events after alert ``changed`` was applied: the district's eligible alerts grouped
    again, and each incident whose members differ from the held one, or hold ``changed``, rebuilt."""
    eligible = {aid: held["member"] for aid, held in state["alerts"].items() if held["eligible"]}
    groups = _groups(eligible, window)
    held: dict[str, dict[str, Any]] = state["incidents"]
    ids = {incident_id(state["district"], start): (start, members) for start, members in groups}
    events: list[IncidentEvent] = []

    for iid, (_, member_ids) in ids.items():
        before = held.get(iid)
        if before is not None and changed not in member_ids and member_ids == _member_ids(before["incident"]):
            continue  # the same members as they were: the same incident
        members = [IncidentMember.model_validate(eligible[aid]) for aid in member_ids]
        incident = _incident(state, iid, members, rules, city)
        snapshot = incident.to_state()
        if before is None:
            revision = state["retired"].pop(iid, {"revision": 0})["revision"]
            held[iid] = {"revision": revision, "incident": snapshot}
            events.append(_publish(held[iid], IncidentChange.opened, incident, at))
            continue
        previous = before["incident"]
        before["incident"] = snapshot
        if _material(previous) == _material(snapshot):
            continue
        change = IncidentChange.updated
        if previous["status"] != snapshot["status"]:
            change = (
                IncidentChange.resolved
                if incident.status == IncidentStatus.resolved
                else IncidentChange.reopened
            )
        events.append(_publish(before, change, incident, at))

    home = {aid: iid for iid, (_, member_ids) in ids.items() for aid in member_ids}
    for iid in sorted(set(held) - set(ids)):
        gone = held.pop(iid)
        incident = Incident.model_validate(gone["incident"])
        targets = [home[m.alert_id] for m in incident.members if m.alert_id in home]
        # Merged into the incident that took most of its members (ties: the earliest-starting one).
        target = min(set(targets), key=lambda t: (-targets.count(t), ids[t][0])) if targets else None
        change = IncidentChange.merged if target is not None else IncidentChange.dissolved
        events.append(_publish(gone, change, incident, at, merged_into=target))
        state["retired"][iid] = {"revision": gone["revision"], "at": state["clock"]}
    return events


def _seen_again(state: dict[str, Any], before: dict[str, Any], member: dict[str, Any]) -> bool:
    """When ``member`` differs from ``before`` in its last-seen only (most alert events: an episode still
    firing), put it into its held incident as a rebuild would, and say True; otherwise False."""
    if {**before, "lastSeen": member["lastSeen"]} != member:
        return False
    for held in state["incidents"].values():
        incident = held["incident"]
        members = incident["members"]
        for i, each in enumerate(members):
            if each["alertId"] == member["alertId"]:
                members[i] = dict(member)
                # The first of the latest, as ``max`` over the members in order picks it.
                incident["lastSeen"] = max(members, key=lambda m: _time(m["lastSeen"]))["lastSeen"]
                return True
    return False


def _member_ids(incident: dict[str, Any]) -> list[str]:
    return [member["alertId"] for member in incident["members"]]


def _publish(
    held: dict[str, Any],
    change: IncidentChange,
    incident: Incident,
    at: datetime,
    merged_into: str | None = None,
) -> IncidentEvent:
    held["revision"] += 1
    return IncidentEvent(
        change=change, revision=held["revision"], at=at, incident=incident, merged_into=merged_into
    )


def _forget(state: dict[str, Any], retention: timedelta) -> None:
    """Drop resolved incidents (and their members) and ineligible resolved alerts older than retention."""
    horizon = _time(state["clock"]) - retention
    for iid, held in list(state["incidents"].items()):
        incident = held["incident"]
        if incident["status"] == IncidentStatus.resolved and _time(incident["lastSeen"]) < horizon:
            for aid in _member_ids(incident):
                state["alerts"].pop(aid, None)
            del state["incidents"][iid]
            state["retired"][iid] = {"revision": held["revision"], "at": state["clock"]}
    for aid, held in list(state["alerts"].items()):
        member = held["member"]
        if (
            not held["eligible"]
            and member["status"] == AlertStatus.resolved
            and _time(member["lastSeen"]) < horizon
        ):
            del state["alerts"][aid]
    for iid, retired in list(state["retired"].items()):
        if _time(retired["at"]) < horizon:
            del state["retired"][iid]


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None
