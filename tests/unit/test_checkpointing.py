"""Where an offset stands against the last one counted of its partition (streams.checkpointing)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from faust.types import TP

from streams.checkpointing import Admission, Batch, Checkpointer, admission, position_key, stalled


@pytest.mark.parametrize(
    ("last", "offset", "expected"),
    [
        (None, 0, Admission.NEXT),  # a partition with no state yet takes what comes first
        (None, 5_000, Admission.NEXT),
        (41, 42, Admission.NEXT),
        (41, 41, Admission.REPEAT),  # read again after a restart whose commit had not happened
        (41, 0, Admission.REPEAT),
        (41, 43, Admission.AHEAD),  # offset 42 was dropped
        (41, 1_000, Admission.AHEAD),
    ],
)
def test_admission(last: int | None, offset: int, expected: Admission):
    assert admission(last, offset) is expected


def test_each_topic_partition_has_its_own_key():
    keys = {
        position_key(TP(topic, partition))
        for topic in ("ioc.raw.air", "ioc.anomalies")
        for partition in (0, 1)
    }
    assert keys == {"ioc.raw.air[0]", "ioc.raw.air[1]", "ioc.anomalies[0]", "ioc.anomalies[1]"}


# --- the commit sequence, with fake events (no broker) ------------------------------------------------


class Outputs:
    """Records each topic's send; Kafka "acknowledges" only when the test says so."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.pending: list[asyncio.Future] = []

    async def send_all(self, records) -> list[asyncio.Future]:
        for topic in records:
            self.log.append(f"send {topic}")
            future = asyncio.get_running_loop().create_future()
            future.add_done_callback(lambda _, topic=topic: self.log.append(f"acked {topic}"))
            self.pending.append(future)
        return list(self.pending)


class Table(dict):
    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__()
        self.name, self.log = name, log

    def __setitem__(self, key, value) -> None:
        self.log.append(f"write {self.name}[{key}]")
        super().__setitem__(key, value)


class App:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.outputs = Outputs(log)
        self.consumer_generation_id = 1

    def Table(self, name: str, **_: object) -> Table:  # noqa: N802 (Faust's name)
        return Table(name, self.log)


class Event:
    """What the checkpoint reads of a Faust event (weak-referencable, as Faust's are)."""

    def __init__(self, partition: int, offset: int, topic: str) -> None:
        self.key, self.value = b"k", b"v"
        self.message = SimpleNamespace(
            tp=TP(topic, partition), partition=partition, offset=offset, topic=topic
        )


def event(partition: int, offset: int, topic: str = "raw") -> Event:
    return Event(partition, offset, topic)


def test_a_batch_is_saved_only_after_kafka_has_its_outputs():
    async def scenario() -> list[str]:
        log: list[str] = []
        app = App(log)
        checkpointer = Checkpointer(app, "agent", "unused:9092", 2)
        checkpointer.outputs = app.outputs
        state = Table("state", log)

        async def handle(events, batch: Batch) -> None:
            batch.send("out", b"k", b"v")
            batch.after_outputs(lambda: asyncio.sleep(0, log.append("effect")))
            batch.write(state, "sensor", {"n": len(events)}, 1)

        task = asyncio.create_task(checkpointer._batch([event(1, 0), event(1, 1)], handle))
        await asyncio.sleep(0.01)
        assert log == ["send out"]  # nothing saved while Kafka has not acknowledged the output
        app.outputs.pending[0].set_result(None)
        counted = await task
        assert [e.message.offset for e in counted] == [0, 1]
        assert state["sensor"] == {"n": 2} and checkpointer.offsets["raw[1]"] == 1
        return log

    log = asyncio.run(scenario())
    assert log == ["send out", "acked out", "effect", "write state[sensor]", "write agent-offsets[raw[1]]"]


def test_repeats_are_handed_on_and_the_last_offset_never_goes_back():
    async def scenario() -> tuple[list, dict]:
        app = App([])
        checkpointer = Checkpointer(app, "agent", "unused:9092", 2)
        checkpointer.offsets.update({"raw[0]": 5})
        seen = []

        async def handle(events, batch) -> None:
            seen.extend((e.message.offset, verdict) for e, verdict in events)

        await checkpointer._batch([event(0, 4), event(0, 5), event(0, 6)], handle)
        return seen, dict(checkpointer.offsets)

    seen, offsets = asyncio.run(scenario())
    assert seen == [(4, Admission.REPEAT), (5, Admission.REPEAT), (6, Admission.NEXT)]
    assert offsets == {"raw[0]": 6}


def test_a_gap_is_filled_before_the_event_that_revealed_it():
    async def scenario() -> tuple[list, dict]:
        app = App([])
        checkpointer = Checkpointer(app, "agent", "unused:9092", 2)
        checkpointer.offsets.update({"raw[0]": 1})

        async def missing(message, last):  # what the gap filler reads back from Kafka
            return [event(0, offset) for offset in range(last + 1, message.offset)]

        checkpointer.gaps.missing = missing
        seen = []

        async def handle(events, batch) -> None:
            seen.extend((e.message.offset, verdict) for e, verdict in events)

        await checkpointer._batch([event(0, 4), event(0, 5)], handle)
        return seen, dict(checkpointer.offsets)

    seen, offsets = asyncio.run(scenario())
    assert [offset for offset, _ in seen] == [2, 3, 4, 5]
    assert offsets == {"raw[0]": 5}


def test_a_partition_is_stalled_when_kafka_holds_more_and_its_last_counted_offset_stands_still():
    a, b, c, d = (TP("raw", p) for p in range(4))
    ends = {a: 10, b: 10, c: 10, d: None}
    counted = {a: 5, b: 9, c: 5, d: 3}
    before = {a: 5, b: 7, c: 4, d: 3}
    # a: behind and still; b: caught up; c: behind but moving; d: its end not known yet.
    assert stalled(ends, counted, before) == [a]
    assert stalled({a: 1}, {a: None}, {a: None}) == [a]  # nothing counted yet, a record waiting
    assert stalled({a: 0}, {a: None}, {a: None}) == []  # an empty partition
    assert stalled(ends, counted, {}) == []  # the first look: nothing to compare with
