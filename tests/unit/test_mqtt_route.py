"""The MQTT bridge's pure part (topic and payload → edge outcomes) and the DLQ tools' pure helpers."""

import json
from datetime import UTC, datetime

import pytest

from connectors.dlq import Candidate, DlqError, Position, candidates_from_fix, prepare_candidates
from connectors.sources.mqtt import Edge, route
from ioc.city import load_city
from ioc.infra.mosquitto import MqttAddress, parse_mqtt_url
from ioc.ingest.edge import Accepted, Rejected, prepare
from ioc.settings import Settings

AT = datetime(2026, 1, 15, 1, 0, 5, tzinfo=UTC)
EDGE = Edge(load_city("hanoi"), b"test-key", "k9")
AIR = "air-trung-yen"
CARD = "9704555566667777"


def reading(sensor: str = AIR, pm25: float = 50.0) -> dict:
    return {"sensorId": sensor, "dateObserved": "2026-01-15T08:00:00+07:00", "pm25": pm25}


def outcomes(topic: str, payload: object, root: str = "ioc") -> list[Accepted | Rejected]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return route(topic, body, root=root, edge=EDGE, received_at=AT)


def test_an_item_on_its_sensors_topic_is_accepted_and_stamped():
    (outcome,) = outcomes(f"ioc/air/{AIR}", reading())
    assert isinstance(outcome, Accepted)
    assert (outcome.feed, outcome.key) == ("air", AIR)
    value = json.loads(outcome.value)
    assert value["pm25"] == 50.0 and value["ingestTime"].startswith("2026-01-15T01:00:05")


def test_an_array_gives_one_outcome_per_item_in_order():
    got = outcomes(f"ioc/air/{AIR}", [reading(pm25=1), reading(pm25=-1), reading(pm25=2)])
    assert [type(o).__name__ for o in got] == ["Accepted", "Rejected", "Accepted"]
    assert got[1].kind == "invalid" and got[1].field == "pm25" and got[1].source == f"mqtt:ioc/air/{AIR}"


def test_a_root_of_several_levels():
    (outcome,) = outcomes(f"city/hanoi/air/{AIR}", reading(), root="city/hanoi")
    assert isinstance(outcome, Accepted)


@pytest.mark.parametrize(
    ("topic", "feed", "detail"),
    [
        (f"ioc/noise/{AIR}", "mqtt", "(topic): names no feed: 'noise'"),  # not a metric label
        ("ioc/air", "air", "(topic): must be ioc/<feed>/<sensor id>"),
        (f"ioc/air/{AIR}/extra", "air", "(topic): must be ioc/<feed>/<sensor id>"),
        ("ioc//x", "mqtt", "(topic): must be"),
        (f"other/air/{AIR}", "mqtt", "(topic): must be"),
    ],
)
def test_a_topic_that_names_no_feed_and_sensor_is_rejected_whole(topic, feed, detail):
    (outcome,) = outcomes(topic, [reading(), reading()])
    assert isinstance(outcome, Rejected)
    assert (outcome.kind, outcome.feed) == ("invalid", feed) and outcome.detail.startswith(detail)
    assert json.loads(outcome.payload_bytes()) == [reading(), reading()]  # the payload is kept


def test_the_item_must_be_for_the_topics_sensor():
    (outcome,) = outcomes("ioc/air/air-minh-khai", reading())
    assert isinstance(outcome, Rejected) and outcome.field == "sensorId"
    assert "names sensor 'air-minh-khai'" in outcome.reason
    # The payload is replayable as it is, once sent to the right place: the edge accepts it.
    payload = json.loads(outcome.payload_bytes())
    assert "ingestTime" not in payload
    again = prepare(
        "air", payload, city=EDGE.city, card_key=b"k", card_key_id="k", source="t", received_at=AT
    )
    assert isinstance(again, Accepted)


def test_a_mismatch_joins_the_items_other_problems():
    (outcome,) = outcomes("ioc/air/air-minh-khai", reading(pm25=-5))
    assert [p.field for p in outcome.problems] == ["pm25", "sensorId"]


def test_not_json_is_unparseable_with_card_ids_redacted():
    (outcome,) = outcomes("ioc/transit/metro-2a-cat-linh", f'{{"cardId": "{CARD}", '.encode())
    assert isinstance(outcome, Rejected) and outcome.kind == "unparseable"
    assert outcome.key == "metro-2a-cat-linh"  # the topic's sensor keys the dead letter
    assert CARD not in outcome.payload_bytes().decode() and CARD not in outcome.detail


def test_a_raw_card_id_is_pseudonymised_and_never_kept():
    tap = {
        "sensorId": "metro-2a-cat-linh",
        "dateObserved": "2026-01-15T08:00:00+07:00",
        "eventId": "e1",
        "cardId": CARD,
        "cardType": "adult",
        "mode": "metro",
        "line": "2A",
        "deviceId": "g1",
        "direction": "ENTRY",
        "fare": 0,
    }
    accepted, rejected = outcomes("ioc/transit/metro-2a-cat-linh", [tap, tap | {"fare": -1}])
    assert isinstance(accepted, Accepted) and CARD not in accepted.value.decode()
    assert json.loads(accepted.value)["cardKeyId"] == "k9"
    assert isinstance(rejected, Rejected) and CARD not in rejected.dead_letter().to_json().decode()


def test_an_empty_array_is_rejected():
    (outcome,) = outcomes(f"ioc/air/{AIR}", [])
    assert isinstance(outcome, Rejected) and "empty array" in outcome.detail


def test_mqtt_urls():
    assert parse_mqtt_url("mqtt://127.0.0.1:1884") == MqttAddress("127.0.0.1", 1884)
    assert parse_mqtt_url("broker.example") == MqttAddress("broker.example", 1883)
    secure = parse_mqtt_url("mqtts://ioc%40bridge:s3cr%3At@mqtt.example")
    assert secure == MqttAddress("mqtt.example", 8883, True, "ioc@bridge", "s3cr:t")
    assert "s3cr" not in str(secure)
    with pytest.raises(ValueError, match="not an MQTT URL"):
        parse_mqtt_url("http://x:1883")


def test_positions():
    assert Position.parse("2:17") == Position(2, 17) and str(Position(2, 17)) == "2:17"
    assert Position.parse("17") == Position(0, 17)
    with pytest.raises(DlqError):
        Position.parse("a:b")


def test_a_fix_file_without_offsets_needs_a_feed(tmp_path):
    fix = tmp_path / "fix.jsonl"
    fix.write_text(json.dumps(reading()) + "\n" + json.dumps({"feed": "air", "item": reading(pm25=9)}) + "\n")
    settings = Settings(kafka_bootstrap="127.0.0.1:1")  # no offsets: Kafka is never asked
    with pytest.raises(DlqError, match="which feed"):
        candidates_from_fix(fix, settings)
    bare, tagged = candidates_from_fix(fix, settings, default_feed="air")
    assert (bare.origin, bare.feed, bare.item) == ("fix.jsonl:1", "air", reading())
    assert (tagged.feed, tagged.item["pm25"]) == ("air", 9)


def test_replay_skips_what_names_no_feed():
    settings = Settings(kafka_bootstrap="127.0.0.1:1")
    results = prepare_candidates(
        [Candidate("0:1", "noise", item=reading()), Candidate("0:2", "air", text="{oops")],
        settings,
        edge=EDGE,
        now=AT,
    )
    assert results[0].outcome is None and "not one of" in results[0].skipped
    assert isinstance(results[1].outcome, Rejected) and results[1].outcome.kind == "unparseable"
    assert results[1].outcome.source == f"replay of {settings.dlq_topic} 0:2"
