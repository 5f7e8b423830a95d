"""Known card ids pushed through a real ``ioc api`` process appear nowhere: not in any topic, any Redis key or
value, nor the API's log. Their keyed hashes do appear (so the search is looking at the right data).
"""

from __future__ import annotations

import gzip
import json
import random
import time
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition

from connectors.kafka import kafka_python_options
from connectors.redis_client import connect_sync
from ioc.privacy import pseudonymise_card
from ioc.settings import Settings
from tests.conftest import TEST_KEYS, free_port
from tests.integration.test_ingest import INTEGRATOR, INTEGRATOR_ID, count, tap
from tests.processes import IocProcess, wait_for

pytestmark = pytest.mark.integration


def every_record(settings: Settings) -> list[bytes]:
    """Key, value and headers of every record of every topic this test's namespace owns.

    The broker is shared by the whole session (the week-long end-to-end test leaves about a million records
    behind), and the API under test writes nowhere else, so other tests' topics are left out.
    """
    consumer = KafkaConsumer(**kafka_python_options(settings), enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in consumer.topics()
            if topic.startswith(f"{settings.topic_prefix}.")
            for p in consumer.partitions_for_topic(topic)
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        found: list[bytes] = []
        deadline = time.monotonic() + 120
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise AssertionError("cannot read every topic to its end")
            for messages in consumer.poll(timeout_ms=1000).values():
                for message in messages:
                    found.append((message.key or b"") + b"\x00" + (message.value or b""))
                    for name, header in message.headers or []:
                        found.append(name.encode() + b"\x00" + (header or b""))
        return found
    finally:
        consumer.close()


def every_redis_text(settings: Settings) -> list[str]:
    """Every key of the Redis database and everything stored under it, as text."""
    client = connect_sync(settings, protocol=2, decode_responses=False)
    texts = []
    try:
        for key in client.scan_iter(count=1000):
            kind = client.type(key).decode()
            if kind == "string":
                value = [client.get(key)]
            elif kind == "hash":
                value = [part for pair in client.hgetall(key).items() for part in pair]
            elif kind == "set":
                value = list(client.smembers(key))
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "zset":
                value = [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
            elif kind == "stream":
                value = [
                    part
                    for entry_id, fields in client.xrange(key)
                    for part in (entry_id, *(item for pair in fields.items() for item in pair))
                ]
            else:
                value = [client.dump(key) or b""]
            texts.append(b"\x00".join([key, *(v or b"" for v in value)]).decode(errors="replace"))
    finally:
        client.close()
    return texts


def test_raw_card_ids_are_found_nowhere(settings: Settings, tmp_path: Path) -> None:
    rng = random.SystemRandom()  # fresh ids each run: nothing a previous run wrote can match
    cards = [f"9704{rng.randrange(10**12):012d}" for _ in range(8)]
    port = free_port()
    # A SecretStr would reach the process as '**********': give the key in clear.
    card_key = "c0ffee" * 11  # a key of its own (66 hex characters), not the suite's
    api = IocProcess(["api", "--port", str(port)], settings, tmp_path / "api.log", card_hmac_key=card_key)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/healthz").status_code == 200, timeout=60, processes=[api])
        with httpx.Client(base_url=url, headers=INTEGRATOR, timeout=60) as client:
            batch = [
                tap("p1", cards[0]),  # accepted
                tap("p2", int(cards[1])),  # accepted: a card number sent as a JSON number
                tap("p3", cards[2], fare=-1),  # rejected for another reason: DLQ with the hash
                tap("p4", cards[3], deviceId=f"gate-{cards[3]}"),  # the card in another field
                tap("p5", cards[4], cardNumber=cards[4]),  # a card-named extra field
                {k: v for k, v in tap("p6", "x").items() if k != "cardId"} | {"cardIdHash": cards[5]},
            ]
            result = client.post("/v1/ingest/transit", json=batch).json()
            assert result["accepted"] == 2 and len(result["rejected"]) == 4, result
            ndjson = "\n".join(
                [json.dumps(tap("p7", cards[6])), f'{{"eventId": "p8", "cardId": "{cards[7]}", "fare": ']
            )
            response = client.post(
                "/v1/ingest/transit",
                content=gzip.compress(ndjson.encode()),
                headers={"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
            )
            assert response.json()["accepted"] == 1 and len(response.json()["rejected"]) == 1
            # Same taps again: duplicates, and a second pass through every code path.
            assert client.post("/v1/ingest/transit", json=batch).json()["duplicates"] == 2
            responses = json.dumps([result, response.json()])
    finally:
        assert api.stop() in (0, -15)

    assert count(settings, settings.raw_topic("transit")) == 3
    assert count(settings, settings.dlq_topic) == 9  # 4 + 1 + the second pass's 4: nothing dropped
    records = every_record(settings)
    redis_texts = every_redis_text(settings)
    log = (tmp_path / "api.log").read_text()
    assert "POST /v1/ingest/transit" in log and f"key={INTEGRATOR_ID}" in log  # the log is the API's

    digests = [pseudonymise_card(card, card_key.encode(), settings.card_hmac_key_id)[0] for card in cards]
    everything = b"\n".join(records)
    for digest in (digests[0], digests[1], digests[2], digests[6]):
        assert digest.encode() in everything  # the search does see the events
    assert any(settings.redis_prefix in text for text in redis_texts)  # and our Redis keys
    for card in cards:
        assert card.encode() not in everything, "a raw card id is in Kafka"
        assert not [t for t in redis_texts if card in t], "a raw card id is in Redis"
        assert card not in log, "a raw card id is in the API log"
        assert card not in responses, "a raw card id is in an HTTP response"
    for secret in [*TEST_KEYS.values(), card_key]:
        assert secret.encode() not in everything and secret not in log
        assert not [t for t in redis_texts if secret in t]


def luhn_card(rng: random.Random, prefix: str = "4", length: int = 16) -> str:
    """A made-up card number whose Luhn check digit holds (ISO/IEC 7812), fresh each run."""
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        total = 0
        for position, digit in enumerate(reversed(body + check)):
            value = int(digit) * (2 if position % 2 else 1)
            total += value - 9 if value > 9 else value
        if total % 10 == 0:
            return body + check
    raise AssertionError("unreachable: one check digit always fits")


def test_card_numbers_in_any_field_of_a_tap_are_refused_and_found_nowhere(
    settings: Settings, tmp_path: Path
) -> None:
    rng = random.SystemRandom()
    cards = [luhn_card(rng, length=12 + i) for i in range(8)]  # 12 to 19 digits
    napas = f"9704{rng.randrange(10**12):012d}"  # the kind: a NAPAS number, Luhn or not
    port = free_port()
    api = IocProcess(["api", "--port", str(port)], settings, tmp_path / "api.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/healthz").status_code == 200, timeout=60, processes=[api])
        with httpx.Client(base_url=url, headers=INTEGRATOR, timeout=60) as client:
            batch = [
                tap("c0") | {"pan": napas},  # an unknown field: was echoed in the answer and the DLQ
                tap("c1", deviceId=cards[0]),  # a known field: was accepted into Kafka
                tap("c2", deviceId=f"gate {cards[1]}"),  # inside text
                tap("c3") | {"extra": {"nested": [{cards[2]: "x"}]}},  # a nested key
                tap("c4", fare=int(cards[3])),  # a JSON number
                tap("c5", eventId=f"tap-{cards[4]}"),
                {k: v for k, v in tap("c6").items() if k != "cardId"} | {"line": cards[5]},
                tap("c7", sensorId=cards[6]),
                tap("c8", cards[7]),  # as cardId: accepted, pseudonymised
            ]
            result = client.post("/v1/ingest/transit", json=batch).json()
            assert result["accepted"] == 1, result
            rejected = {r["index"]: r for r in result["rejected"]}
            assert {i: r["field"] for i, r in rejected.items()} == {
                0: "pan",
                1: "deviceId",
                2: "deviceId",
                3: "extra",
                4: "fare",
                5: "eventId",
                6: "line",
                7: "sensorId",
            }
            assert all("holds a card number" in r["reason"] for r in rejected.values())
            responses = json.dumps(result)
    finally:
        assert api.stop() in (0, -15)

    assert count(settings, settings.raw_topic("transit")) == 1
    assert count(settings, settings.dlq_topic) == 8
    everything = b"\n".join(every_record(settings))
    log = (tmp_path / "api.log").read_text()
    assert b"holds a card number" in everything  # the search does see the dead letters
    for card in [*cards, napas]:
        assert card.encode() not in everything, "a card number is in Kafka"
        assert card not in log, "a card number is in the API log"
        assert card not in responses, "a card number is in an HTTP response"
