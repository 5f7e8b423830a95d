"""The ingest edge, pure: pseudonymisation first, stamping, validation, redaction of every rejection."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.city import load_city
from ioc.feeds.air.model import AirQualityObserved
from ioc.feeds.traffic.model import TrafficFlowObserved
from ioc.ingest.body import BodyError, RawLine, decode, parse_object, split_items
from ioc.ingest.edge import (
    INVALID,
    UNPARSEABLE,
    Accepted,
    Rejected,
    card_number_fields,
    dedup_key,
    is_card_number,
    prepare,
    prepare_json,
    prepare_ngsi_ld,
    redact_card_numbers,
)
from ioc.models.ngsi_ld import to_ngsi_ld
from ioc.privacy import pseudonymise_card

CITY = load_city("hanoi")
KEY, KEY_ID = b"unit-test-key", "k7"
NOW = datetime(2026, 1, 15, 1, 0, 5, tzinfo=UTC)
OPTIONS = {"city": CITY, "card_key": KEY, "card_key_id": KEY_ID, "source": "unit", "received_at": NOW}
CARD = "9704000011112222"

AIR = {"sensorId": "air-kim-lien", "dateObserved": "2026-01-15T08:00:00+07:00", "pm25": 80.5}
TAP = {
    "sensorId": "metro-2a-cat-linh",
    "eventId": "tap-1",
    "dateObserved": "2026-01-15T08:00:00+07:00",
    "cardId": CARD,
    "cardType": "adult",
    "mode": "metro",
    "line": "2A",
    "deviceId": "cat-linh-g3",
    "direction": "ENTRY",
    "fare": 0,
}


def everything_of(rejected: Rejected) -> str:
    """Every text a rejection could leak through: DLQ record, field, reasons."""
    return rejected.dead_letter().to_json().decode() + rejected.field + rejected.detail


def test_a_valid_reading_is_stamped_keyed_and_serialised():
    outcome = prepare("air", dict(AIR, ingestTime="1999-01-01T00:00:00Z"), **OPTIONS)
    assert isinstance(outcome, Accepted)
    assert outcome.key == "air-kim-lien" and outcome.key_bytes == b"air-kim-lien"
    value = json.loads(outcome.value)
    assert value["ingestTime"] == "2026-01-15T01:00:05Z"  # ours, not the client's
    assert value["dateObserved"] == "2026-01-15T08:00:00+07:00"
    assert value["pm25"] == 80.5
    assert outcome.dedup_key.startswith("air:")


def test_a_raw_card_id_is_pseudonymised_before_validation_and_goes_nowhere():
    outcome = prepare("transit", TAP, **OPTIONS)
    assert isinstance(outcome, Accepted)
    digest, key_id = pseudonymise_card(CARD, KEY, KEY_ID)
    value = json.loads(outcome.value)
    assert value["cardIdHash"] == digest and value["cardKeyId"] == key_id
    assert "cardId" not in value and CARD not in outcome.value.decode()
    assert TAP["cardId"] == CARD  # the caller's item is not modified


def test_a_card_number_as_json_number_is_pseudonymised_too():
    outcome = prepare("transit", dict(TAP, cardId=int(CARD)), **OPTIONS)
    assert isinstance(outcome, Accepted)
    assert json.loads(outcome.value)["cardIdHash"] == pseudonymise_card(CARD, KEY, KEY_ID)[0]


def test_a_rejected_tap_keeps_the_hash_never_the_card():
    outcome = prepare("transit", dict(TAP, fare=-5), **OPTIONS)
    assert isinstance(outcome, Rejected)
    assert outcome.kind == INVALID and outcome.field == "fare"
    assert "greater than or equal to 0" in outcome.reason and "(got -5)" in outcome.reason
    assert CARD not in everything_of(outcome)
    payload = json.loads(outcome.dead_letter().payload)
    assert payload["cardIdHash"] == pseudonymise_card(CARD, KEY, KEY_ID)[0]
    assert "ingestTime" not in payload  # the original item, not our stamped copy
    letter = outcome.dead_letter()
    assert (letter.reason, letter.feed, letter.source, letter.key) == (
        "invalid",
        "transit",
        "unit",
        TAP["sensorId"],
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"deviceId": f"gate-{CARD}"}, "deviceId"),  # the raw id elsewhere in the item
        ({"cardNumber": CARD}, "cardNumber"),  # a card-named extra field
        ({"cardIdHash": CARD}, "cardId"),  # both cardId and a (bogus) hash
        ({"cardId": {"nested": CARD}}, "cardId"),  # not a string or number
    ],
)
def test_a_card_id_never_leaks_through_a_rejection(change, field):
    outcome = prepare("transit", dict(TAP, **change), **OPTIONS)
    assert isinstance(outcome, Rejected), outcome
    assert outcome.field == field
    assert CARD not in everything_of(outcome)


def test_a_card_number_sent_as_the_hash_is_refused_and_redacted():
    item = {k: v for k, v in TAP.items() if k != "cardId"} | {"cardIdHash": CARD, "cardKeyId": "k1"}
    outcome = prepare("transit", item, **OPTIONS)
    assert isinstance(outcome, Rejected)
    assert outcome.field == "cardIdHash" and "holds a card number" in outcome.reason
    assert CARD not in everything_of(outcome)
    # Not a card number, not a digest either: the model's reason, the value not quoted.
    outcome = prepare("transit", item | {"cardIdHash": "12345"}, **OPTIONS)
    assert isinstance(outcome, Rejected)
    assert outcome.field == "cardIdHash" and "value redacted" in outcome.reason


def test_an_unparseable_line_is_rejected_with_its_card_redacted():
    outcome = prepare_json("transit", f'{{"cardId": "{CARD}", "fare": '.encode(), **OPTIONS)
    assert isinstance(outcome, Rejected)
    assert outcome.kind == UNPARSEABLE and outcome.field == "(event)" and "not JSON" in outcome.reason
    assert CARD not in everything_of(outcome)
    assert outcome.dead_letter().reason == "unparseable"


@pytest.mark.parametrize("item", [CARD, int(CARD), [CARD, {"x": f"card {CARD}"}]])
def test_a_bare_card_number_on_the_transit_feed_is_redacted(item):
    outcome = prepare("transit", item, **OPTIONS)
    assert isinstance(outcome, Rejected) and CARD not in everything_of(outcome)
    outcome = prepare_json("transit", f"{CARD};{CARD[:-1]}9 tapped".encode(), **OPTIONS)
    assert isinstance(outcome, Rejected) and CARD not in everything_of(outcome)
    assert CARD[:-1] + "9" not in everything_of(outcome)


@pytest.mark.parametrize("raw", [b"NaN", b'{"pm25": Infinity}', b"[" * 100_000, b"\xff\xfe\x00", b"1" * 5000])
def test_json_that_python_would_swallow_or_choke_on_is_unparseable(raw):
    outcome = prepare_json("air", raw, **OPTIONS)
    assert isinstance(outcome, Rejected) and outcome.kind == UNPARSEABLE


def test_registry_and_feed_are_checked():
    outcome = prepare("air", dict(AIR, sensorId="air-nowhere"), **OPTIONS)
    assert isinstance(outcome, Rejected) and outcome.field == "sensorId"
    assert "unregistered:air-nowhere" in outcome.reason
    assert isinstance(prepare("air", dict(AIR, sensorId="unregistered:lowcost-1"), **OPTIONS), Accepted)
    outcome = prepare("air", dict(AIR, sensorId="traffic-nga-tu-so"), **OPTIONS)
    assert isinstance(outcome, Rejected) and "traffic sensor" in outcome.reason


def test_every_problem_is_listed_and_the_first_is_the_field():
    outcome = prepare("air", {"sensorId": "air-kim-lien", "pm25": -1, "colour": "grey"}, **OPTIONS)
    assert isinstance(outcome, Rejected)
    assert [p.field for p in outcome.problems] == ["dateObserved", "pm25", "colour"]
    assert outcome.field == "dateObserved" and outcome.reason == "Field required"


@pytest.mark.parametrize("item", [None, 3, "air", [AIR], True])
def test_an_item_that_is_not_an_object_is_rejected(item):
    outcome = prepare("air", item, **OPTIONS)
    assert isinstance(outcome, Rejected) and outcome.field == "(event)"
    assert "JSON object" in outcome.reason


def test_unknown_feed_and_naive_time_are_programming_errors():
    with pytest.raises(ValueError, match="unknown feed"):
        prepare("noise", AIR, **OPTIONS)
    with pytest.raises(ValueError, match="timezone-aware"):
        prepare("air", AIR, **(OPTIONS | {"received_at": datetime(2026, 1, 1)}))


def test_dedup_key_is_the_sensor_and_event_id_else_sensor_time_and_lane():
    a = prepare("air", dict(AIR, eventId="e-1"), **OPTIONS)
    b = prepare(
        "air", dict(AIR, eventId="e-1", pm25=1.0, dateObserved="2026-01-15T07:00:00+07:00"), **OPTIONS
    )
    assert isinstance(a, Accepted) and isinstance(b, Accepted) and a.dedup_key == b.dedup_key
    # An id is unique per source only: another sensor's "e-1" is another event.
    other = prepare("air", dict(AIR, sensorId="air-minh-khai", eventId="e-1"), **OPTIONS)
    assert isinstance(other, Accepted) and other.dedup_key != a.dedup_key
    # Without an id: the same instant in another offset is the same reading.
    c = prepare("air", AIR, **OPTIONS)
    d = prepare("air", dict(AIR, dateObserved="2026-01-15T01:00:00+00:00", pm25=1.0), **OPTIONS)
    assert isinstance(c, Accepted) and isinstance(d, Accepted) and c.dedup_key == d.dedup_key
    assert c.dedup_key != a.dedup_key
    lane = {
        "sensorId": "traffic-nga-tu-so",
        "dateObserved": "2026-01-15T08:00:00+07:00",
        "intervalSeconds": 60,
    }
    lanes = [TrafficFlowObserved.model_validate(lane | {"intensity": 5, "laneId": n}) for n in (1, 2)]
    assert dedup_key(lanes[0]) != dedup_key(lanes[1])


def test_ngsi_ld_entities_in_both_forms_become_the_same_event():
    event = AirQualityObserved.model_validate(AIR)
    normalized = prepare_ngsi_ld(to_ngsi_ld(event), **OPTIONS)
    key_values = prepare_ngsi_ld(to_ngsi_ld(event, key_values=True), **OPTIONS)
    assert isinstance(normalized, Accepted) and isinstance(key_values, Accepted)
    assert normalized.value == key_values.value and normalized.feed == "air"
    assert json.loads(normalized.value)["pm25"] == 80.5


def test_ngsi_ld_entities_are_checked_against_the_registry_and_their_envelope():
    entity = to_ngsi_ld(AirQualityObserved.model_validate(dict(AIR, sensorId="air-nowhere")))
    outcome = prepare_ngsi_ld(entity, **OPTIONS)
    assert isinstance(outcome, Rejected) and outcome.feed == "air" and outcome.field == "sensorId"
    outcome = prepare_ngsi_ld({"id": "urn:x", "type": "Parking"}, **OPTIONS)
    assert isinstance(outcome, Rejected) and outcome.feed == "ngsi-ld" and outcome.field == "type"
    outcome = prepare_ngsi_ld(dict(entity, id="urn:ngsi-ld:AirQualityObserved:"), **OPTIONS)
    assert isinstance(outcome, Rejected) and outcome.field == "id"
    outcome = prepare_ngsi_ld(["not", "an", "entity"], **OPTIONS)
    assert isinstance(outcome, Rejected) and outcome.feed == "ngsi-ld"


def test_ngsi_ld_card_attributes_go_nowhere():
    # An attribute an air entity does not have is dropped (issue 18): the card number is not kept, and
    # a card number as an attribute's name is redacted where the dropped names are reported.
    entity = to_ngsi_ld(AirQualityObserved.model_validate(AIR)) | {
        "cardId": {"type": "Property", "value": CARD},
        CARD: {"type": "Property", "value": 1},
    }
    outcome = prepare_ngsi_ld(entity, **OPTIONS)
    assert isinstance(outcome, Accepted) and CARD.encode() not in outcome.value
    assert outcome.dropped == ("cardId", "[redacted]")
    outcome = prepare_ngsi_ld(entity | {"pm25": -1}, **OPTIONS)
    assert isinstance(outcome, Rejected) and CARD not in everything_of(outcome)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    feed=st.sampled_from(["air", "water", "traffic", "transit"]),
    extra=st.dictionaries(st.sampled_from([*TAP, "pm25", "laneId", "card_id", "x"]), json_values, max_size=6),
)
def test_any_item_gets_an_answer_and_the_card_never_leaks(feed, extra):
    outcome = prepare(feed, dict(TAP, **extra), **OPTIONS)
    if isinstance(outcome, Accepted):
        assert CARD not in outcome.value.decode()
    else:
        assert outcome.problems and CARD not in everything_of(outcome)


def test_bodies_json_ndjson_gzip_and_limits():
    items = [AIR, dict(AIR, pm25=1)]
    assert split_items(json.dumps(items).encode(), "application/json; charset=utf-8", max_items=5) == items
    assert split_items(json.dumps(AIR).encode(), None, max_items=5) == [AIR]  # one object: a batch of one
    ndjson = b'{"a": 1}\n\n  \nnot json\r\n'
    assert split_items(ndjson, "application/x-ndjson", max_items=5) == [
        RawLine(b'{"a": 1}'),
        RawLine(b"not json"),
    ]
    with pytest.raises(BodyError) as error:
        split_items(json.dumps(items).encode(), "application/json", max_items=1)
    assert error.value.status == 413
    for body, status in ((b"[1,", 400), (b'"text"', 400), (b"\xff", 400)):
        with pytest.raises(BodyError) as error:
            split_items(body, "application/json", max_items=5)
        assert error.value.status == status
    with pytest.raises(BodyError) as error:
        split_items(b"a,b", "text/csv", max_items=5)
    assert error.value.status == 415

    assert decode(gzip.compress(b"[]"), "gzip", max_bytes=1024) == b"[]"
    assert decode(b"[]", "identity", max_bytes=1024) == b"[]"
    for raw, encoding, status in (
        (gzip.compress(b" " * 5000), "gzip", 413),  # a small body that expands too much
        (b"x" * 2000, None, 413),
        (b"not gzip", "gzip", 400),
        (gzip.compress(b"[]")[:-12], "gzip", 400),  # truncated
        (b"[]", "br", 415),
    ):
        with pytest.raises(BodyError) as error:
            decode(raw, encoding, max_bytes=1024)
        assert error.value.status == status, (raw[:10], encoding)

    assert parse_object(b'{"type": "Notification"}') == {"type": "Notification"}
    with pytest.raises(BodyError):
        parse_object(b"[]")


@pytest.mark.parametrize(
    ("digits", "card"),
    [
        ("4111111111111111", True),  # Luhn holds
        ("4111111111111112", False),
        ("9704000012345678", True),  # NAPAS (IIN 9704, 16 digits): no Luhn asked
        ("79927398713", False),  # Luhn holds but 11 digits: no card number
        ("1234567890123456789", False),
    ],
)
def test_a_card_number_is_12_to_19_digits_passing_luhn_or_a_napas_one(digits, card):
    assert is_card_number(digits) is card


def test_a_card_number_anywhere_in_a_tap_is_refused_and_redacted_everywhere():
    card = "4111111111111111"
    for extra in ({"pan": card}, {"deviceId": f"gate-{card}"}, {"x": [{card: 1}]}, {"fare": int(card)}):
        outcome = prepare("transit", TAP | extra, **OPTIONS)
        assert isinstance(outcome, Rejected) and outcome.kind == INVALID
        assert "holds a card number" in outcome.reason
        assert card not in everything_of(outcome) and CARD not in everything_of(outcome)
    # A digest's hex can hold a run of digits that passes Luhn by chance: it is no card number.
    digest = "4111111111111111" + "a" * 48
    assert card_number_fields({"cardIdHash": digest, "cardKeyId": "k7"}) == []


def test_an_ngsi_ld_entity_of_no_feed_keeps_no_card_number():
    card = "4111111111111111"
    entity = {
        "id": f"urn:ngsi-ld:FareTap:{card}",
        "type": "FareTap",
        "pan": {"type": "Property", "value": card},
        card: {"type": "Property", "value": 1},
    }
    outcome = prepare_ngsi_ld(entity, **OPTIONS)
    assert isinstance(outcome, Rejected) and outcome.feed == "ngsi-ld"
    assert card not in everything_of(outcome)


def test_a_rejected_taps_card_hash_is_kept_whole_though_it_holds_a_run_of_digits():
    # A 64-hex HMAC may hold 12+ decimal digits in a row; it is the pseudonym, not a card number.
    digest = "2d94f084ce" + "123456789012345" + "cb4" + "a" * 36
    assert len(digest) == 64
    payload = {"cardIdHash": digest, "cardKeyId": "k1", "note": "card 4111111111111111"}
    redacted = redact_card_numbers(payload)
    assert redacted["cardIdHash"] == digest
    assert "4111111111111111" not in redacted["note"]
