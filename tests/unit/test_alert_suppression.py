"""Inhibition by device faults and operators' silences."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ioc.alerts import manager
from ioc.alerts import silence as book_module
from ioc.alerts.inhibit import inhibitor, inhibits
from ioc.alerts.silence import Silence, matches, silencing
from ioc.models.alert import AlertChange, AlertStatus, Suppression
from ioc.models.anomaly import Severity
from tests.unit.test_alert_manager import command, minutes, report, run

JAM = "traffic-nga-tu-so"  # Đống Đa


def jam(minute: float, value: float = 0.2, **kw):
    return report("traffic.incident", JAM, minute, value, severity=kw.pop("severity", Severity.warning), **kw)


def stale(minute: float, start: float, *, firing: bool = True, entity: str = JAM):
    return report("health.stale", entity, minute, 5 if firing else 0, firing=firing, start=start)


def silence(**kw) -> Silence:
    fields = {
        "id": "s-1",
        "matchers": {"rule": "traffic.incident"},
        "starts_at": minutes(10),
        "ends_at": minutes(40),
        "created_by": "op-lan",
        "comment": "roadworks at the junction",
    }
    return Silence.model_validate(fields | kw)


# --- inhibition ---------------------------------------------------------------------------------------


def test_a_device_fault_inhibits_the_entitys_anomaly_alerts_until_it_resolves():
    state = manager.new_state()
    [opened] = run(state, [jam(0)])
    fault_opened, inhibited = run(state, [stale(5, start=2)])
    assert (fault_opened.change, fault_opened.alert.rule) == (AlertChange.opened, "health.stale")
    assert fault_opened.alert.suppressed_by is None  # a fault is never inhibited by a fault
    assert (inhibited.change, inhibited.alert.id, inhibited.revision) == (
        AlertChange.suppressed,
        opened.alert.id,
        2,
    )
    assert inhibited.alert.suppressed_by == Suppression(inhibited_by=fault_opened.alert.id)

    # Still tracked while inhibited: the update is counted and published with its suppression.
    [update] = run(state, [jam(6, 0.1, severity=Severity.critical)])
    assert (update.change, update.alert.count, update.alert.suppressed_by) == (
        AlertChange.updated,
        2,
        inhibited.alert.suppressed_by,
    )

    # A second fault: the inhibitor stays the earliest-starting fault.
    [flatline] = run(state, [report("health.flatline", JAM, 7, 11, start=7)])
    assert (
        flatline.change == AlertChange.opened and flatline.alert.suppressed_by is None
    )  # faults do not inhibit faults

    # The first fault resolves: the second one takes over the inhibition (a new reason, same step).
    fault_resolved, handed_over = run(state, [stale(20, start=2, firing=False)])
    assert (fault_resolved.change, fault_resolved.alert.status) == (
        AlertChange.resolved,
        AlertStatus.resolved,
    )
    assert (handed_over.change, handed_over.alert.id, handed_over.alert.suppressed_by) == (
        AlertChange.suppressed,
        opened.alert.id,
        Suppression(inhibited_by=flatline.alert.id),
    )
    # The last fault resolves: the traffic alert, still open, is released.
    _, released = run(state, [report("health.flatline", JAM, 25, 0, firing=False, start=7)])
    assert (released.change, released.alert.id, released.alert.suppressed_by) == (
        AlertChange.unsuppressed,
        opened.alert.id,
        None,
    )
    assert released.alert.status == AlertStatus.open and released.revision == 5


def test_an_anomaly_alert_opening_under_an_open_fault_opens_inhibited_in_one_event():
    state = manager.new_state()
    [fault] = run(state, [stale(0, start=0)])
    [opened] = run(state, [jam(5, start=5)])
    assert opened.change == AlertChange.opened
    assert opened.alert.suppressed_by == Suppression(inhibited_by=fault.alert.id)


def test_an_operator_resolving_the_fault_releases_the_inhibited_alerts():
    state = manager.new_state()
    run(state, [jam(0)])
    [fault, _] = run(state, [stale(5, start=2)])
    result = manager.apply_command(state, command("resolve", fault, minute=9))
    assert [(e.change, e.alert.rule) for e in result.events] == [
        (AlertChange.resolved, "health.stale"),
        (AlertChange.unsuppressed, "traffic.incident"),
    ]
    assert run(state, [stale(10, start=2)]) == []  # the resolved fault's episode goes on: stays resolved


def test_an_alert_that_resolves_while_inhibited_keeps_its_suppression():
    state = manager.new_state()
    run(state, [jam(0), stale(5, start=2)])
    [resolved] = run(state, [jam(15, 0.5, firing=False)])
    assert resolved.alert.status == AlertStatus.resolved and resolved.alert.suppressed_by is not None
    fault_resolved = run(state, [stale(20, start=2, firing=False)])
    assert [e.alert.rule for e in fault_resolved] == ["health.stale"]  # nothing to release


def test_inhibition_is_by_entity_and_only_faults_inhibit_only_anomaly_alerts():
    state = manager.new_state()
    [traffic] = run(state, [jam(0)])
    [fault] = run(manager.new_state(), [stale(0, start=0, entity="traffic-cau-giay")])
    assert not inhibits(fault.alert, traffic.alert)  # another entity
    [own_fault, _] = run(state, [stale(1, start=1)])
    assert inhibits(own_fault.alert, traffic.alert)
    assert not inhibits(traffic.alert, own_fault.alert)
    assert not inhibits(own_fault.alert, own_fault.alert)
    resolved_fault = own_fault.alert.model_copy(update={"status": AlertStatus.resolved})
    assert not inhibits(resolved_fault, traffic.alert)
    later = own_fault.alert.model_copy(update={"id": "b-later", "episode_start": minutes(3)})
    assert inhibitor(traffic.alert, [later, own_fault.alert]).id == own_fault.alert.id
    assert inhibitor(traffic.alert, [own_fault.alert, later]).id == own_fault.alert.id


# --- silences -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ends_at": minutes(10)}, "after"),
        ({"ends_at": minutes(5)}, "after"),
        ({"matchers": {}}, "at least one matcher"),
        ({"matchers": {"rule": "*", "entity": "**"}}, "every alert"),
        ({"comment": ""}, "comment"),
    ],
)
def test_a_silence_must_be_bounded_and_specific(change, message):
    with pytest.raises(ValidationError) as error:
        silence(**change)
    assert message in str(error.value)


def _alert(rule: str = "traffic.incident", entity: str = JAM):
    [event] = run(manager.new_state(), [report(rule, entity, 0, 0.2 if rule.startswith("traffic") else 172)])
    return event.alert


@pytest.mark.parametrize(
    ("matchers", "expected"),
    [
        ({"rule": "traffic.incident"}, True),
        ({"rule": "traffic.*"}, True),
        ({"rule": "*.incident"}, True),
        ({"rule": "air.*"}, False),
        ({"rule": "traffic.incid"}, False),  # exact unless a * says otherwise
        ({"district": "dong-da"}, True),
        ({"district": "dong-*"}, True),
        ({"district": "ba-dinh"}, False),
        ({"entity": JAM}, True),
        ({"entity": "traffic-*"}, True),
        ({"entity": "traffic-cau-giay"}, False),
        ({"entity": "traffic-nga-tu-s?"}, False),  # only * is a wildcard
        ({"rule": "traffic.*", "district": "dong-da", "entity": JAM}, True),
        ({"rule": "traffic.*", "district": "ba-dinh"}, False),  # every given matcher must match
    ],
)
def test_silence_matchers(matchers, expected):
    assert matches(silence(matchers=matchers), _alert(), minutes(20)) is expected


def test_a_silence_is_active_from_its_start_until_before_its_end():
    muted = silence(matchers={"entity": JAM})
    alert = _alert()
    assert [matches(muted, alert, minutes(m)) for m in (9, 10, 39, 40, 41)] == [
        False,
        True,
        True,
        False,
        False,
    ]


def test_of_several_matching_silences_the_one_ending_last_is_named():
    short = silence(id="s-a", ends_at=minutes(20))
    long_b = silence(id="s-b", ends_at=minutes(60))
    long_c = silence(id="s-c", ends_at=minutes(60))
    for order in ([short, long_b, long_c], [long_c, short, long_b]):
        assert silencing(_alert(), order, minutes(15)).id == "s-b"
    assert silencing(_alert(), [short], minutes(25)) is None


def test_the_manager_suppresses_by_silence_on_the_anomalys_event_time():
    muted = silence()
    state = manager.new_state()
    [before] = run(state, [jam(0)], [muted])
    assert before.alert.suppressed_by is None
    [during] = run(state, [jam(12, 0.1, severity=Severity.critical)], [muted])  # also a severity rise
    assert (during.change, during.alert.suppressed_by) == (AlertChange.suppressed, Suppression(silence="s-1"))
    assert during.alert.severity == Severity.critical
    assert run(state, [jam(20, 0.12)], [muted]) == []  # nothing new to show
    [after] = run(state, [jam(41, 0.12)], [muted])
    assert (after.change, after.alert.suppressed_by) == (AlertChange.unsuppressed, None)


def test_an_alert_opening_inside_a_silence_opens_silenced():
    state = manager.new_state()
    [opened] = run(state, [jam(15, start=15)], [silence()])
    assert opened.change == AlertChange.opened and opened.alert.suppressed_by == Suppression(silence="s-1")


def test_inhibition_takes_precedence_and_a_silence_takes_over_when_the_fault_resolves():
    muted = silence(matchers={"district": "dong-da"}, starts_at=minutes(0), ends_at=minutes(90))
    state = manager.new_state()
    # The fault itself is silenced too (same district); the traffic alert is inhibited.
    run(state, [jam(1, start=1)], [muted])
    fault, traffic = run(state, [stale(5, start=2)], [muted])
    assert fault.alert.suppressed_by == Suppression(silence="s-1")
    assert traffic.alert.suppressed_by == Suppression(inhibited_by=fault.alert.id)
    _, handed_over = run(state, [stale(30, start=2, firing=False)], [muted])
    assert (handed_over.change, handed_over.alert.suppressed_by) == (
        AlertChange.suppressed,
        Suppression(silence="s-1"),
    )


# --- a silence arriving while an alert is open; the per-partition book ------------------------------------


def test_a_new_silence_mutes_an_open_alert_without_waiting_for_its_next_anomaly():
    state = manager.new_state()
    [opened] = run(state, [jam(12)])
    [muted] = manager.apply_silences(state, [silence()], minutes(15))
    assert (muted.change, muted.alert.id, muted.alert.suppressed_by) == (
        AlertChange.suppressed,
        opened.alert.id,
        Suppression(silence="s-1"),
    )
    assert manager.apply_silences(state, [silence()], minutes(16)) == []  # nothing new to say
    [released] = manager.apply_silences(state, [silence()], minutes(40))  # ends_at is exclusive
    assert (released.change, released.alert.suppressed_by) == (AlertChange.unsuppressed, None)
    assert manager.has_unresolved(state)
    run(state, [jam(45, firing=False)])
    assert not manager.has_unresolved(state)


def test_the_book_reports_when_event_time_crosses_a_silences_start_or_end():
    book = book_module.new_book()
    book_module.keep(book, silence())
    assert book_module.advance(book, minutes(5)) is False  # the first time seen: nothing to compare with
    assert book_module.advance(book, minutes(9)) is False
    assert book_module.advance(book, minutes(10)) is True  # starts_at reached
    assert book_module.advance(book, minutes(8)) is False  # the clock never goes back
    assert book_module.clock_of(book) == minutes(10)
    assert book_module.advance(book, minutes(39)) is False
    assert book_module.advance(book, minutes(41)) is True  # ended
    # Ending early is publishing the silence again with an earlier end: the book keeps the newest version.
    book_module.keep(book, silence(ends_at=minutes(20)))
    assert [s.ends_at for s in book_module.silences_in(book)] == [minutes(20)]
    # An ended silence is forgotten a day (of event time) after its end.
    book_module.advance(book, minutes(20 + 24 * 60 + 1))
    assert book_module.silences_in(book) == []


def test_the_book_lists_the_entities_with_unresolved_alerts_once_each():
    book = book_module.new_book()
    for entity, unresolved in [("b", True), ("a", True), ("b", True), ("b", False), ("c", False)]:
        book_module.mark(book, entity, unresolved)
    assert book["unresolved"] == ["a"]


# --- what a silence's matchers match, among the ids that exist --------------------------------------------

KNOWN = {
    "rule": frozenset({"air.aqi_band", "traffic.incident", "health.stale"}),
    "district": frozenset({"dong-da", "ba-dinh"}),
    "entity": frozenset({"air-kim-lien", "traffic-nga-tu-so"}),
}


@pytest.mark.parametrize(
    ("matchers", "reason"),
    [
        (
            {"rule": "*.*"},
            "rule '*.*' matches every rule of the rules file: the silence would mute every alert",
        ),
        ({"rule": "*.*", "entity": "*-*"}, "would mute every alert"),
        ({"district": "*-*"}, "would mute every alert"),
        ({"entity": "*i*"}, "would mute every alert"),
        ({"entity": "?*"}, "entity '?*' matches no sensor of the registry (only * is a wildcard)"),
        ({"rule": "air.aqi"}, "rule 'air.aqi' matches no rule of the rules file"),
        ({"rule": "air.*", "district": "hoan-kiem"}, "district 'hoan-kiem' matches no district"),
    ],
)
def test_a_silence_must_mute_something_and_not_everything(matchers, reason):
    refused = book_module.refusal(book_module.Matchers(**matchers), KNOWN)
    assert refused is not None and reason in refused, refused


@pytest.mark.parametrize(
    "matchers",
    [
        {"rule": "air.*"},
        {"rule": "*.*", "district": "dong-da"},  # every rule, in one district
        {"entity": "air-*"},
        {"entity": "unregistered:lowcost-*"},  # not in the registry, but alerts can name them
        {"entity": "unreg*"},
        {"rule": "traffic.incident", "district": "dong-da", "entity": "traffic-nga-tu-so"},
    ],
)
def test_a_silence_that_mutes_some_alerts_is_allowed(matchers):
    assert book_module.refusal(book_module.Matchers(**matchers), KNOWN) is None


@given(
    st.text(alphabet="ab.*", min_size=1, max_size=8),
    st.text(alphabet="ab.", max_size=12),
)
def test_a_glob_matches_as_a_regex_of_its_parts_would(pattern: str, value: str):
    expected = re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), value, re.DOTALL)
    assert book_module._matches_pattern(pattern, value) == (expected is not None)


@pytest.mark.timeout(10)  # a guard, not a speed target: the regex it replaces took minutes on this
def test_a_glob_with_many_stars_is_judged_without_backtracking():
    pattern = "*a" * 8 + "*b"
    assert not book_module._matches_pattern(pattern, "a" * 60)
    assert book_module._matches_pattern(pattern, "a" * 60 + "b")


def test_matchers_are_bounded_in_length_and_stars():
    at, until = minutes(0), minutes(60)
    common = dict(id="s", starts_at=at, ends_at=until, created_by="op", comment="why")
    with pytest.raises(ValidationError, match="at most 8"):
        Silence(matchers={"entity": "a*" * 9}, **common)
    with pytest.raises(ValidationError, match="at most 200"):
        Silence(matchers={"entity": "a" * 201}, **common)
    assert Silence(matchers={"entity": "air-*-kiem*"}, **common)
