"""The worker's outputs against the same reading path run offline over the records it read.

``streamed`` reads what the worker wrote (each window's last aggregate, each entity's anomalies in order,
the pipeline's dead letters); ``offline`` reads the raw topics back — key, value, partition, offset and
timestamp, exactly what the worker consumed — and runs ``ioc.step.FeedStep`` over them in one process,
then the neighbourhood stage over the deviations they publish. Two agents write anomalies, so an
entity's are kept per stage (``NEIGHBOURHOOD``): their interleaving is the broker's, not the data's.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from connectors.kafka import kafka_python_options
from ioc.alerts.rules import load_rules
from ioc.city import load_city
from ioc.detectors import clock
from ioc.detectors.neighbourhood import Deviation, Neighbourhood
from ioc.feeds import REGISTRY
from ioc.settings import Settings
from ioc.step import FeedStep, NeighbourhoodRun, SourceRecord, new_sensor
from tests.processes import committed_offsets

# (feed, window label, sensor id, window start): one window of one sensor.
WindowKey = tuple[str, str, str, int]
NEIGHBOURHOOD = " (neighbourhood)"  # after an entity: the neighbourhood stage's anomalies of it


def neighbourhood_rules(settings: Settings) -> set[str]:
    rules, city = load_rules(settings.rules), load_city(settings.city)
    return {rule.id for feed in REGISTRY for rule in Neighbourhood(feed, rules, city).rules}


@dataclass
class Outputs:
    aggregates: dict[WindowKey, bytes] = field(default_factory=dict)  # each window's last aggregate
    anomalies: dict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))  # per entity
    dead_letters: Counter[bytes] = field(default_factory=Counter)

    def without_repeats(self) -> Outputs:
        """Each entity's anomalies and each dead letter once: a worker that crashed may have published a
        batch's outputs twice (never a different one)."""
        anomalies = defaultdict(
            list, {entity: list(dict.fromkeys(seq)) for entity, seq in self.anomalies.items()}
        )
        return Outputs(dict(self.aggregates), anomalies, Counter(set(self.dead_letters)))

    def differences(self, other: Outputs, limit: int = 3) -> list[str]:
        """What differs, in a few lines (empty when byte-identical)."""
        found = []
        for name in ("aggregates", "anomalies"):
            mine, theirs = getattr(self, name), getattr(other, name)
            keys = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
            for key in keys[:limit]:
                found.append(f"{name} {key}: {mine.get(key)!r} != {theirs.get(key)!r}")
            if keys:
                found.append(f"{name}: {len(keys)} keys differ of {len(mine)} and {len(theirs)}")
        if self.dead_letters != other.dead_letters:
            only = (self.dead_letters - other.dead_letters, other.dead_letters - self.dead_letters)
            found.append(f"dead letters differ: only in the first {only[0]}, only in the second {only[1]}")
        return found


def records(settings: Settings, topics: list[str]) -> Iterator[ConsumerRecord]:
    """Every record of ``topics`` up to their end offsets now, partition by partition in offset order."""
    consumer = KafkaConsumer(**kafka_python_options(settings), enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        ends = consumer.end_offsets(partitions)
        for partition in partitions:
            if not ends[partition]:
                continue
            consumer.assign([partition])
            consumer.seek_to_beginning(partition)
            done = False
            while not done:
                for record in consumer.poll(timeout_ms=1000, max_records=5000).get(partition, []):
                    yield record
                    done = record.offset + 1 >= ends[partition]
                    if done:
                        break
    finally:
        consumer.close()


def streamed(settings: Settings, feeds: list[str]) -> Outputs:
    """What the worker published."""
    out = Outputs()
    for feed in feeds:
        for spec in settings.windows_of(feed):
            for record in records(settings, [settings.agg_topic(feed, spec.label)]):
                window = orjson.loads(record.value)
                start = int(datetime.fromisoformat(window["windowStart"]).timestamp())
                out.aggregates[(feed, spec.label, window["sensorId"], start)] = record.value
    staged = neighbourhood_rules(settings)
    for record in records(settings, [settings.anomalies_topic]):
        stage = NEIGHBOURHOOD if orjson.loads(record.value)["rule"] in staged else ""
        out.anomalies[record.key.decode() + stage].append(record.value)
    raw = {settings.raw_topic(feed) for feed in feeds}
    for record in records(settings, [settings.dlq_topic]):
        if orjson.loads(record.value)["source"] in raw:  # the pipeline's, not the edge's
            out.dead_letters[record.value] += 1
    return out


def offline(settings: Settings, feeds: list[str]) -> Outputs:
    """The raw topics as the worker read them, through the reading path in this process."""
    rules, city = load_rules(settings.rules), load_city(settings.city)
    out = Outputs()
    for feed in feeds:
        source = settings.raw_topic(feed)
        step = FeedStep.of(
            feed, settings.windows_of(feed), rules, city, source, settings.future_tolerance_seconds
        )
        sensors: dict[str, dict] = defaultdict(new_sensor)
        clocks: dict[int, dict] = defaultdict(clock.new_clock)
        batch: list[SourceRecord] = []
        for record in records(settings, [source]):
            batch.append(
                SourceRecord(record.key, record.value, record.partition, record.offset, record.timestamp)
            )
        # One batch per partition, as a worker that owns it alone could have read it.
        by_partition = defaultdict(list)
        for record in batch:
            by_partition[record.partition].append(record)
        deviations: list[tuple[str, Deviation]] = []
        for partition_records in by_partition.values():
            result = step.run(partition_records, sensors.__getitem__, clocks.__getitem__)
            for (label, sensor_id, start), window in result.aggregates.items():
                out.aggregates[(feed, label, sensor_id, start)] = window.json
            for anomaly in result.anomalies:
                out.anomalies[anomaly.entity].append(anomaly.to_json())
            out.dead_letters.update(letter.to_json() for letter in result.dead_letters)
            deviations += result.neighbours
        # Merged in event time: the stage's judgements do not depend on the order of the senders while
        # they stay within its MAX_WAIT of each other, and one partition after the other would not.
        deviations.sort(key=lambda received: received[1].at)
        for anomaly in NeighbourhoodRun(step.detector.neighbourhoods[feed]).run(deviations):
            out.anomalies[anomaly.entity + NEIGHBOURHOOD].append(anomaly.to_json())
    return out


def settled(settings: Settings, feeds: list[str]) -> bool:
    """Whether the worker's consumer group has committed every record of the raw topics and of the
    anomalies (so the pipeline and the alert manager are done)."""
    topics = [settings.raw_topic(feed) for feed in feeds] + [settings.anomalies_topic]
    topics += [settings.neighbours_topic(feed) for feed in feeds if REGISTRY[feed].neighbourhood]
    positions = committed_offsets(settings, settings.worker_id, topics)
    return all(end == 0 or (done or 0) >= end for done, end in positions.values())
