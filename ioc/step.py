"""One feed's reading path, pure: a batch of raw records and the state they touch → outputs and new state.

Validate → event-time windows → detectors (with the sensor's indices) → silence ticks, for every record
in order; a reading the sensor's recent readings already hold (the same identity as the edge's duplicate
marks) is counted once. The Faust agent (``streams/pipeline.py``), ``ioc backtest``, ``ioc detect``'s
offline runs and the fault harness all call ``FeedStep.run``; nothing else walks a reading through the
pipeline, so online and offline cannot disagree.

Records carry what Kafka gives them: key, value, partition, offset and the record's timestamp (when the
edge produced it; a dead letter's time, so a re-run writes the same dead letter). That timestamp is also
the receiving clock an event time is bounded by: a record dated more than the future tolerance
(``IOC_FUTURE_TOLERANCE_SECONDS``) after it is a ``future`` dead letter before any window or detector
sees it, so a producer that bypasses the ingest edge cannot move its sensor's watermark past every real
reading; and the partition's silence clock never runs ahead of it (``ioc.detectors.clock``), so no
sensor can make the others look silent. Offline the event's own time stands in for it, so nothing is
refused there. State is per sensor
(its windows, its detectors, the last offset counted) and per partition (a clock of event time, for
silent sensors); the caller keeps both, in a Faust table or a dict, and gets back the keys the batch
changed. A sensor's records all come from one partition (keyed by sensor id), so its position — the
last (partition, offset) counted — makes a record read again after a restart a no-op.

Per batch, each window of each sensor (window, sensor, start) comes out once, at its latest: a batch
that updates a window many times publishes the one it ends with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from hashlib import blake2b
from typing import Any

from kafka.partitioner.default import murmur2
from pydantic import ValidationError

from ioc.alerts.rules import RuleSet
from ioc.city import City
from ioc.detectors import clock
from ioc.detectors.neighbourhood import Deviation, Neighbourhood
from ioc.detectors.neighbourhood import new_state as new_neighbourhood
from ioc.detectors.sensor import SensorDetector, identify_rejected, new_sensor_state
from ioc.feeds import MODELS
from ioc.ingest.edge import FUTURE, reading_identity, too_far_ahead
from ioc.models.anomaly import Anomaly
from ioc.models.dead_letter import DeadLetter, dead_letter, describe_validation_error
from ioc.models.time_range import clamped_ms
from ioc.recording import RecordedEvent
from ioc.settings import DEFAULT_FUTURE_TOLERANCE_SECONDS, Settings
from ioc.windows import Late, PublishedWindow, WindowSpec, add_event, aggregate_of, new_state

STATE_VERSION = 2
# Per sensor, the identities of the readings last counted: a repeat of one of them is dropped. The edge
# keeps its own marks in Redis; these catch what gets past them: a retry after the edge died between
# Kafka's acknowledgement and its mark, a producer that bypasses the edge. Such a repeat follows its
# first copy within seconds, a few readings of that sensor later.
RECENT_READINGS = 32

# (window label, sensor id, window start as epoch seconds): one window of one sensor.
WindowKey = tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class SourceRecord:
    key: bytes | None
    value: bytes
    partition: int
    offset: int
    timestamp_ms: int  # the record's time in Kafka: when the edge produced it (the receiving clock)


@dataclass
class StepResult:
    """What a batch produced, and the state keys it changed (to be written back by the caller)."""

    aggregates: dict[WindowKey, PublishedWindow] = field(default_factory=dict)  # each window at its latest
    anomalies: list[Anomaly] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    records: int = 0
    repeats: int = 0  # readings counted before (same identity), dropped
    sensors: dict[str, int] = field(default_factory=dict)  # sensor id → its partition
    clocks: set[int] = field(default_factory=set)  # partitions whose clock moved
    # (receiving sensor, deviation) for the neighbourhood stage (``ioc.detectors.neighbourhood``)
    neighbours: list[tuple[str, Deviation]] = field(default_factory=list)


def new_sensor() -> dict[str, Any]:
    """A sensor's state: its windows by label, its detectors, the last (partition, offset) counted and the
    identities of its recent readings."""
    return {"v": STATE_VERSION, "windows": {}, "detect": new_sensor_state(), "position": None, "recent": []}


def upgrade_sensor(state: dict[str, Any]) -> dict[str, Any]:
    """A sensor's state as an earlier version wrote it, in today's format (a worker upgraded in place)."""
    version = state.get("v", 0)
    if version == STATE_VERSION:
        return state
    if version not in (0, 1):
        raise ValueError(f"sensor state version {version!r} is newer than this worker's {STATE_VERSION}")
    if version == 0:
        state = _upgrade_v0(state)
    # Version 1 kept no recent readings: none is known to be a repeat yet.
    return {**state, "v": STATE_VERSION, "recent": []}


def _upgrade_v0(state: dict[str, Any]) -> dict[str, Any]:
    # Version 0 (no version field): a window's field stats were dicts; now [n, sum, min, max, last, time].
    windows = {}
    for label, by_label in state.get("windows", {}).items():
        windows[label] = {
            "watermark": by_label["watermark"],
            "windows": {
                start: {
                    **window,
                    "fields": {name: _stats_v1(stats) for name, stats in window["fields"].items()},
                }
                for start, window in by_label["windows"].items()
            },
        }
    detect = state.get("detect", new_sensor_state())
    return {"v": 1, "windows": windows, "detect": detect, "position": state.get("position")}


def _stats_v1(stats: dict[str, Any]) -> list[Any]:
    return [stats["n"], stats["sum"], stats["min"], stats["max"], stats["last"], stats["last_time"]]


def clock_key(partition: int) -> str:
    """The table key of a partition's clock (written from that partition, so it moves with it)."""
    return f"p{partition}"


class FeedStep:
    """The reading path of one feed; ``run`` is the whole of it."""

    def __init__(
        self,
        feed: str,
        specs: list[WindowSpec],
        detector: SensorDetector,
        source: str,
        future_tolerance_seconds: float = DEFAULT_FUTURE_TOLERANCE_SECONDS,
    ) -> None:
        self.feed = feed
        self.model = MODELS[feed]
        self.units = {m.field: m.unit for m in self.model.measures}
        self.specs = specs
        self.detector = detector
        self.city: City = detector.city
        self.source = source  # the raw topic, named in dead letters
        # How far an event time may be after its record's Kafka time (settings.future_tolerance_seconds).
        self.future_tolerance = timedelta(seconds=future_tolerance_seconds)

    @classmethod
    def of(
        cls,
        feed: str,
        specs: list[WindowSpec],
        rules: RuleSet,
        city: City,
        source: str,
        future_tolerance_seconds: float = DEFAULT_FUTURE_TOLERANCE_SECONDS,
    ) -> FeedStep:
        return cls(feed, specs, SensorDetector(rules, city), source, future_tolerance_seconds)

    def run(
        self,
        records: Iterable[SourceRecord],
        sensor: Callable[[str], dict[str, Any]],
        partition_clock: Callable[[int], dict[str, Any]],
    ) -> StepResult:
        """Count ``records`` in order. ``sensor(id)`` and ``partition_clock(partition)`` give the state to
        update in place (the same object for the same key within a run)."""
        result = StepResult()
        outbox = self.detector.outbox
        outbox.clear()
        # The sensor's indices as of each window's latest event: set on the aggregate once, at the end.
        indices_at: dict[WindowKey, dict[str, Any]] = {}
        latest: dict[WindowKey, tuple[dict[str, Any], WindowSpec]] = {}
        for record in records:
            result.records += 1
            self._count(record, sensor, partition_clock, result, latest, indices_at)
        for window_key, (window, spec) in latest.items():
            _, sensor_id, start = window_key
            result.aggregates[window_key] = aggregate_of(
                window,
                feed=self.feed,
                sensor_id=sensor_id,
                start=start,
                units=self.units,
                spec=spec,
                indices=indices_at.get(window_key),
            )
        hood = self.detector.neighbourhoods[self.feed]
        for deviation in outbox:
            result.neighbours.extend(hood.records(deviation))
        outbox.clear()
        return result

    def _count(
        self,
        record: SourceRecord,
        sensor: Callable[[str], dict[str, Any]],
        partition_clock: Callable[[int], dict[str, Any]],
        result: StepResult,
        latest: dict[WindowKey, tuple[dict[str, Any], WindowSpec]],
        indices_at: dict[WindowKey, dict[str, Any]],
    ) -> None:
        key, value = record.key, record.value
        try:
            reading = self.model.model_validate_json(value, context={"city": self.city})
        except ValidationError as error:
            result.dead_letters.append(self._reject(record, "invalid", describe_validation_error(error)))
            known = identify_rejected(self.feed, value, self.city)
            # Only under its own key: a sensor's state must come from the sensor's partition.
            if known is not None and key is not None and key.decode(errors="replace") == known[0]:
                sensor_id, at = known
                state = self._sensor(sensor, sensor_id, record, result)
                if state is not None:
                    result.anomalies += self.detector.rejected(state["detect"], self.feed, sensor_id, at)
            return
        sensor_id = reading.sensor_id
        if key is None or key.decode(errors="replace") != sensor_id:
            detail = f"message key {key!r} is not the sensorId {sensor_id!r}"
            result.dead_letters.append(self._reject(record, "invalid", detail))
            return
        event_time, received = reading.event_time, _received(record)
        ahead = too_far_ahead(event_time, received, self.future_tolerance, "its record entered Kafka")
        if ahead is not None:
            # Before the sensor's state: a reading from the future must move neither its windows'
            # watermark (its real readings would all be late) nor the partition's clock.
            result.dead_letters.append(self._reject(record, FUTURE, f"dateObserved {ahead}"))
            return
        state = self._sensor(sensor, sensor_id, record, result)
        if state is None:
            return
        identity = blake2b(reading_identity(reading), digest_size=8).hexdigest()
        recent = state["recent"]
        if identity in recent:
            result.repeats += 1
            return
        recent.append(identity)
        if len(recent) > RECENT_READINGS:
            del recent[0]

        values = reading.measured_values()
        shortest_late: Late | None = None
        updated: list[WindowKey] = []
        windows = state["windows"]
        for spec in self.specs:
            outcome = add_event(
                windows.setdefault(spec.label, new_state()),
                event_time=event_time,
                values=values,
                spec=spec,
            )
            if isinstance(outcome, Late):
                if spec is self.specs[0]:
                    shortest_late = outcome
            else:
                window_key = (spec.label, sensor_id, outcome.start)
                latest[window_key] = (outcome.window, spec)
                updated.append(window_key)
        if shortest_late is not None:
            # Too late for its shortest window: a dead letter, though a longer window still counted it.
            detail = shortest_late.describe(event_time, self.specs[0])
            result.dead_letters.append(self._reject(record, "late", detail))
            return
        result.anomalies += self.detector.observe(state["detect"], reading)
        indices = state["detect"]["indices"]
        for window_key in updated:
            indices_at[window_key] = indices

        ticking = clock.upgrade_clock(
            partition_clock(record.partition), received, self.future_tolerance.total_seconds()
        )
        result.clocks.add(record.partition)
        tick = clock.note(ticking, sensor_id, event_time, received)
        if tick is not None:
            for other in ticking["sensors"]:
                other_state = sensor(other)
                result.sensors[other] = record.partition
                result.anomalies += self.detector.tick(other_state["detect"], self.feed, other, tick)

    def _sensor(
        self,
        sensor: Callable[[str], dict[str, Any]],
        sensor_id: str,
        record: SourceRecord,
        result: StepResult,
    ) -> dict[str, Any] | None:
        """The sensor's state, its position moved to ``record``; None when it counted ``record`` before
        (read again after a restart whose offset commit had not happened yet)."""
        state = sensor(sensor_id)
        position = state["position"]
        if position is not None and position[0] == record.partition and position[1] >= record.offset:
            return None
        state["position"] = [record.partition, record.offset]
        result.sensors[sensor_id] = record.partition
        return state

    def _reject(self, record: SourceRecord, reason: str, detail: str) -> DeadLetter:
        return dead_letter(
            reason=reason,
            detail=detail,
            feed=self.feed,
            source=self.source,
            payload=record.value,
            at=_received(record),
            key=record.key,
        )


def _received(record: SourceRecord) -> datetime:
    # Clamped: the producer sets a record's timestamp, and one beyond the calendar must not crash us.
    return datetime.fromtimestamp(clamped_ms(record.timestamp_ms) / 1000, UTC)


class OfflineRun:
    """Every feed's reading path in one process, over recorded events in their order (backtest, harness,
    tests): each event in the partition its key hashes to (``partition_of``), with that partition's next
    offset, as the raw topics would hold them; state in dicts. The neighbourhood stage runs on each
    step's deviations as they come, its anomalies added to the step's."""

    def __init__(self, settings: Settings, rules: RuleSet, city: City) -> None:
        detector = SensorDetector(rules, city)
        self.partitions = settings.partitions
        self.steps = {
            feed: FeedStep(
                feed,
                settings.windows_of(feed),
                detector,
                settings.raw_topic(feed),
                settings.future_tolerance_seconds,
            )
            for feed in MODELS
        }
        self.sensors: dict[str, dict[str, dict[str, Any]]] = {feed: {} for feed in MODELS}
        self.clocks: dict[str, dict[int, dict[str, Any]]] = {feed: {} for feed in MODELS}
        self.neighbourhoods = {feed: NeighbourhoodRun(detector.neighbourhoods[feed]) for feed in MODELS}
        self._next_offset: dict[tuple[str, int], int] = {}

    def run(self, events: Iterable[RecordedEvent]) -> Iterator[tuple[str, StepResult]]:
        """Each run of consecutive events of one feed through its step, in order."""
        feed: str | None = None
        records: list[SourceRecord] = []
        for event in events:
            if event.feed != feed and records:
                yield self._step(feed, records)  # type: ignore[arg-type]
                records = []
            feed = event.feed
            records.append(self._record(event))
        if records:
            yield self._step(feed, records)  # type: ignore[arg-type]

    def _record(self, event: RecordedEvent) -> SourceRecord:
        key = event.key.encode()
        partition = partition_of(key, self.partitions)
        offset = self._next_offset.get((event.feed, partition), 0)
        self._next_offset[(event.feed, partition)] = offset + 1
        # A recording keeps no Kafka time: the event's own stands in (a dead letter's time; and never
        # refused as from the future, nor held back on the silence clock).
        return SourceRecord(key, event.value, partition, offset, round(event.event_time.timestamp() * 1000))

    def _step(self, feed: str, records: list[SourceRecord]) -> tuple[str, StepResult]:
        sensors, clocks = self.sensors[feed], self.clocks[feed]

        def sensor(sensor_id: str) -> dict[str, Any]:
            if sensor_id not in sensors:
                sensors[sensor_id] = new_sensor()
            return sensors[sensor_id]

        def partition_clock(partition: int) -> dict[str, Any]:
            if partition not in clocks:
                clocks[partition] = clock.new_clock()
            return clocks[partition]

        result = self.steps[feed].run(records, sensor, partition_clock)
        result.anomalies += self.neighbourhoods[feed].run(result.neighbours)
        return feed, result


class NeighbourhoodRun:
    """One feed's neighbourhood stage in one process, state in a dict (``OfflineRun``, tests)."""

    def __init__(self, stage: Neighbourhood) -> None:
        self.stage = stage
        self.states: dict[str, dict[str, Any]] = {}

    def run(self, records: Iterable[tuple[str, Deviation]]) -> list[Anomaly]:
        found: list[Anomaly] = []
        for receiver, record in records:
            state = self.states.setdefault(receiver, new_neighbourhood())
            found += self.stage.receive(state, receiver, record)
        return found


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as the edge's producers use) gives ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
