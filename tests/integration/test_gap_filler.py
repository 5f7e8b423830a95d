"""The records Faust dropped, read back straight from a real broker (``streams.checkpointing.GapFiller``)."""

from __future__ import annotations

import asyncio
import logging

import faust
import pytest
from faust.types import TP, ConsumerMessage
from kafka import KafkaAdminClient, KafkaProducer
from kafka.structs import TopicPartition

from connectors.kafka import create_topics, faust_broker_options, kafka_python_options
from ioc.settings import Settings
from streams.checkpointing import Admission, GapFiller

pytestmark = pytest.mark.integration


def produce(settings: Settings, topic: str, count: int) -> None:
    producer = KafkaProducer(**kafka_python_options(settings), acks="all")
    for offset in range(count):
        producer.send(topic, key=f"s{offset % 3}".encode(), value=f'{{"n": {offset}}}'.encode(), partition=1)
    producer.flush()
    producer.close()


def arrived(topic: str, offset: int) -> ConsumerMessage:
    """The message that revealed the gap, as Faust hands it to an agent."""
    return ConsumerMessage(topic, 1, offset, 0.0, 0, [], b"s0", b"{}", None, tp=TP(topic, 1))


def test_the_dropped_records_come_back_as_events_in_offset_order(settings: Settings):
    topic = settings.raw_topic("air")
    create_topics(settings, [topic])
    produce(settings, topic, 50)
    app = faust.App(settings.worker_id, **faust_broker_options(settings))
    filler = GapFiller(app, settings.bootstrap_servers, "test")

    revealing = faust.Event(app, b"s1", b'{"n": 40}', [], arrived(topic, 40))

    verdict, events = asyncio.run(filler.in_order(revealing, last=11))

    assert verdict is Admission.AHEAD
    assert events[-1] is revealing  # counted after the gap's events
    events = events[:-1]
    assert [event.message.offset for event in events] == list(range(12, 40))
    assert [event.value for event in events] == [f'{{"n": {n}}}'.encode() for n in range(12, 40)]
    assert [event.key for event in events] == [f"s{n % 3}".encode() for n in range(12, 40)]
    assert asyncio.run(filler.in_order(revealing, last=39)) == (Admission.NEXT, [revealing])
    assert asyncio.run(filler.in_order(revealing, last=45)) == (Admission.REPEAT, [revealing])
    first = events[0].message
    assert (first.topic, first.partition, first.tp) == (topic, 1, TP(topic, 1))
    assert not first.acked  # the agent acknowledges it once counted, so Faust commits past the gap


def test_a_gap_that_retention_deleted_is_read_from_the_earliest_left(settings: Settings, caplog):
    topic = settings.raw_topic("water")
    create_topics(settings, [topic])
    produce(settings, topic, 30)
    admin = KafkaAdminClient(**kafka_python_options(settings))
    try:  # what retention does to the oldest segment
        admin.delete_records({TopicPartition(topic, 1): 20})
    finally:
        admin.close()
    app = faust.App(settings.worker_id, **faust_broker_options(settings))
    filler = GapFiller(app, settings.bootstrap_servers, "test")

    with caplog.at_level(logging.WARNING, logger="streams.checkpointing"):
        events = asyncio.run(filler.missing(arrived(topic, 25), last=4))

    assert [event.message.offset for event in events] == [20, 21, 22, 23, 24]
    assert "offsets 5–19 were deleted by retention before counted" in caplog.text
    assert "offsets 20–24 were dropped by the consumer; reading from Kafka" in caplog.text
