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
import redis
from kafka import KafkaConsumer, TopicPartition

from ioc.privacy import pseudonymise_card
from ioc.settings import Settings
from tests.conftest import TEST_KEYS, free_port
from tests.integration.test_ingest import INTEGRATOR, count, tap
from tests.processes import IocProcess, wait_for

pytestmark = pytest.mark.integration


def every_record(settings: Settings) -> list[bytes]:
    """Key, value and headers of every record of every topic this test's namespace owns.

    The broker is shared by the whole session (the week-long end-to-end test leaves about a million records
    behind), and the API under test writes nowhere else, so other tests' topics are left out.
    """
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
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


def every_redis_text(url: str) -> list[str]:
    """Every key of the Redis database and everything stored under it, as text."""
    client = redis.Redis.from_url(url, protocol=2, decode_responses=False)
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
    card_key = "privacy-test-card-key"
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
    redis_texts = every_redis_text(settings.redis_address)
    log = (tmp_path / "api.log").read_text()
    assert "POST /v1/ingest/transit" in log and "key=integrator#2" in log  # the log is the API's

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
