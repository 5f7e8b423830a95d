"""Scenarios injected into the simulated stream, with a ground truth of what should be detected.

``plan_scenarios`` is a pure planner: it picks kinds, entities and windows deterministically from the
seed. ``ScenarioInjector`` wraps a source and applies the plan to its events: it modifies readings,
drops events or adds fare taps, keeping event-time order. ``write_ground_truth`` writes the plan as
JSON Lines, one scenario a line, for backtests to compare the alerts against.

Magnitudes are chosen to trip the standards without doubt (../shared/reference/air_quality.md,
water_quality.md): a pollution episode keeps PM2.5 ≥ 200 µg/m³ (VN_AQI > 150, band "Xấu" from 80
µg/m³ up); a contamination drops DO below 1 mg/L and raises N-NH4 above 5 mg/L (QCVN 08:2023 worst).

``out_of_range`` readings are built with ``model_copy(update=...)``, which skips validation: the JSON
on the wire breaks the model's physical limits, so the ingest edge rejects them to ``ioc.dlq``. They
exist to test that path, and the rule that counts a sensor's rejected readings.
"""

from __future__ import annotations

import heapq
import json
import random
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from importlib import import_module
from pathlib import Path
from zoneinfo import ZoneInfo

from connectors.sources.base import Source
from connectors.sources.simulator.kinds import FeedScenario
from ioc.city import City, Sensor
from ioc.feeds import REGISTRY
from ioc.feeds.air.simulator import AirSimulator
from ioc.feeds.traffic.simulator import TrafficSimulator
from ioc.feeds.transit.model import CardType, Direction, FareTap, Mode
from ioc.feeds.transit.simulator import (
    FLAT_FARE,
    GATES_PER_STATION,
    SERVICE_END,
    SERVICE_START,
    new_card,
)
from ioc.feeds.water.simulator import WaterSimulator, water_body_of
from ioc.models import Event

# Alert rule ids each kind should fire; the alert rules (a later issue) use these ids.
EXPECTED_RULES: dict[str, tuple[str, ...]] = {
    # PM2.5 ≥ 200 µg/m³ for ≥ 6 h lifts its 24-hour mean past QCVN 05's 45 within about 5.4 h, even
    # from a sensor's first reading; PM10's past 100 only in episodes over ~7 h, so it is not expected
    # (ioc.backtest.scoring still accepts it, as it does the statistical air.pm25_unusual).
    "pollution_episode": ("air.aqi_band", "air.qcvn05_pm25_24h"),
    "stuck_value": ("health.flatline",),
    "spike": ("health.spike",),
    "dropout": ("health.stale",),
    "out_of_range": ("health.out_of_range",),
    "traffic_incident": ("traffic.incident",),
    "water_contamination": ("water.do_low", "water.nh4_limit"),
    "transit_surge": ("transit.crowding",),
    "gate_offline": ("transit.gate_offline",),
}
# City anomalies are planned first; sensor faults only go to sensors none of them uses.
CITY_ANOMALIES = (
    "pollution_episode",
    "traffic_incident",
    "water_contamination",
    "transit_surge",
    "gate_offline",
)
SENSOR_FAULTS = ("stuck_value", "spike", "dropout", "out_of_range")
FAULT_FEEDS = ("air", "traffic", "water")

# Window length ranges, minutes (spike: number of readings instead).
DURATION_MINUTES: dict[str, tuple[int, int]] = {
    "pollution_episode": (6 * 60, 12 * 60),
    "stuck_value": (2 * 60, 4 * 60),
    "dropout": (60, 3 * 60),
    "out_of_range": (15, 60),
    "traffic_incident": (20, 60),
    "water_contamination": (3 * 60, 8 * 60),
    "transit_surge": (60, 120),
    "gate_offline": (60, 90),
}


def _feed_kinds() -> dict[str, FeedScenario]:
    """The kinds the registered feeds bring (their simulator module's ``SCENARIOS``)."""
    found: dict[str, FeedScenario] = {}
    for feed in REGISTRY.values():
        found.update(getattr(import_module(feed.simulator), "SCENARIOS", {}))
    return found


# Kinds of the feeds' own, planned after the built-in ones (which their coming does not move).
FEED_KINDS = _feed_kinds()
EXPECTED_RULES.update({kind: scenario.rules for kind, scenario in FEED_KINDS.items()})
KINDS = tuple(EXPECTED_RULES)
DURATION_MINUTES.update({kind: scenario.minutes for kind, scenario in FEED_KINDS.items()})
SPIKE_READINGS = (1, 3)
DEFAULT_INTERVALS = {
    "air": AirSimulator.default_interval,
    "traffic": TrafficSimulator.default_interval,
    "water": WaterSimulator.default_interval,
}
GRID = timedelta(minutes=15)  # sampled-feed windows start on this grid, so they cover whole readings
GAP = timedelta(hours=1)  # quiet time kept between two scenarios on one entity
PLACEMENT_ATTEMPTS = 300
PEAK_STARTS = (time(7, 0), time(17, 0))  # gate_offline starts within half an hour of these

# Magnitudes.
PM_FACTOR, PM25_FLOOR, PM25_CAP, PM10_CAP = 4.0, 200.0, 900.0, 1500.0
INCIDENT_SPEED = {"detector": 0.15, "neighbour": 0.5}  # speed multiplied by
INCIDENT_OCCUPANCY_RISE = {"detector": 0.5, "neighbour": 0.2}  # occupancy raised by
MAX_OCCUPANCY = 0.95
DO_FACTOR, NH4_FACTOR, NH4_ADD = 0.12, 6.0, 8.0
SPIKE_VALUES: dict[str, dict[str, float]] = {  # absurd, yet inside the model's limits
    "air": {"pm25": 1800.0, "pm10": 2800.0},
    "traffic": {"average_vehicle_speed": 190.0},
    "water": {"nh4_n": 800.0},
}
OUT_OF_RANGE_VALUES: dict[str, dict[str, float]] = {  # outside the model's limits: invalid JSON
    "air": {"pm25": -12.0, "relative_humidity": 140.0},
    "traffic": {"average_vehicle_speed": 260.0, "occupancy": 1.8},
    "water": {"ph": 15.2, "dissolved_oxygen": -0.5},
}
SURGE_TAPS_PER_MINUTE = 25  # a station's weekday peak is about 2–3 trips a minute


@dataclass(frozen=True)
class Scenario:
    """One injected scenario: what, where, when, and which alert rules should fire."""

    id: str
    kind: str
    entities: tuple[str, ...]  # the first is the main one (the incident's detector)
    district: str
    start: datetime
    end: datetime
    rules: tuple[str, ...] = field(default=())
    readings: int | None = None  # spike only: how many readings are spiked

    def active(self, sensor_id: str, moment: datetime) -> bool:
        return sensor_id in self.entities and self.start <= moment < self.end

    def to_json(self) -> str:
        record = {
            "id": self.id,
            "kind": self.kind,
            "entities": list(self.entities),
            "district": self.district,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "rules": list(self.rules),
        }
        if self.readings is not None:
            record["readings"] = self.readings
        return json.dumps(record, ensure_ascii=False)


def parse_kinds(spec: str) -> list[str]:
    """``"all"`` or ``"spike,dropout"`` → kinds in canonical order; unknown names are an error."""
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if names == ["all"]:
        return list(KINDS)
    unknown = sorted(set(names) - set(KINDS))
    if unknown or not names:
        raise ValueError(
            f"unknown scenario kind(s) {', '.join(unknown) or '(none given)'}: all or {', '.join(KINDS)}"
        )
    return [kind for kind in KINDS if kind in names]


def write_ground_truth(scenarios: Iterable[Scenario], path: Path) -> int:
    """One scenario a JSON line, in plan order; returns how many were written."""
    lines = [scenario.to_json() + "\n" for scenario in scenarios]
    path.write_text("".join(lines), encoding="utf-8")
    return len(lines)


# --- planning -------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """The planner's working state: run bounds, the busy windows per entity, what anomalies use."""

    city: City
    start: datetime
    end: datetime
    interval: timedelta | None
    zone: ZoneInfo
    busy: dict[str, list[tuple[datetime, datetime]]] = field(default_factory=dict)
    anomaly_sensors: set[str] = field(default_factory=set)

    def free(self, entities: Sequence[str], start: datetime, end: datetime) -> bool:
        return all(
            end + GAP <= other_start or other_end + GAP <= start
            for entity in entities
            for other_start, other_end in self.busy.get(entity, [])
        )

    def book(self, entities: Sequence[str], start: datetime, end: datetime) -> None:
        for entity in entities:
            self.busy.setdefault(entity, []).append((start, end))


def occurrences_per_kind(duration: timedelta) -> int:
    """One of each kind, plus one more every three days, so a week has three of each."""
    return 1 + int(duration / timedelta(days=3))


def plan_scenarios(
    city: City,
    kinds: Iterable[str],
    *,
    start: datetime,
    duration: timedelta,
    seed: int,
    interval: timedelta | None = None,
) -> list[Scenario]:
    """A deterministic plan: each kind spread over the run, inside it, non-overlapping per entity.

    ``interval`` is the sampled feeds' reading interval when overridden (it sizes spike windows).
    Raises ``ValueError`` when a kind cannot be placed at all (the run is too short for it).
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    chosen = [kind for kind in KINDS if kind in set(kinds)]
    plan = _Plan(city, start, start + duration, interval, ZoneInfo(city.timezone))
    rng = random.Random(f"scenarios-{seed}")
    repeats = occurrences_per_kind(duration)
    placed: list[Scenario] = []
    ordered = [k for k in chosen if k in CITY_ANOMALIES] + [k for k in chosen if k in SENSOR_FAULTS]
    for kind in ordered + [k for k in chosen if k in FEED_KINDS]:
        # A feed kind draws from its own generator: one feed's new kind does not move another's plan.
        draw = random.Random(f"scenarios-{seed}-{kind}") if kind in FEED_KINDS else rng
        begin = plan.start + FEED_KINDS[kind].after if kind in FEED_KINDS else plan.start
        if begin >= plan.end:
            continue  # the run ends before what the kind needs learned is: none of it
        found = [s for n in range(repeats) if (s := _place(plan, kind, n, repeats, draw, begin)) is not None]
        if not found:
            raise ValueError(f"cannot place a {kind} scenario in a run of {duration}: make it longer")
        placed += found
    placed.sort(key=lambda s: (s.start, s.kind, s.entities))
    return [
        Scenario(
            f"sc-{n:03d}-{s.kind}",
            s.kind,
            s.entities,
            s.district,
            s.start.astimezone(plan.zone),  # local offsets read naturally in the truth file
            s.end.astimezone(plan.zone),
            s.rules,
            s.readings,
        )
        for n, s in enumerate(placed, start=1)
    ]


def _place(
    plan: _Plan, kind: str, occurrence: int, repeats: int, rng: random.Random, begin: datetime
) -> Scenario | None:
    """Try random windows in this occurrence's share of the run from ``begin`` until one fits."""
    share = (plan.end - begin) / repeats
    segment_start = begin + share * occurrence
    for _ in range(PLACEMENT_ATTEMPTS):
        entities = _pick_entities(plan, kind, rng)
        if not entities:
            return None
        window = _pick_window(plan, kind, entities[0], segment_start, segment_start + share, rng)
        if window is None or not plan.free(entities, *window):
            continue
        plan.book(entities, *window)
        if kind in CITY_ANOMALIES or kind in FEED_KINDS:
            plan.anomaly_sensors.update(entities)
        readings = _spike_readings(window, plan, entities[0]) if kind == "spike" else None
        district = plan.city.sensor(entities[0]).district
        return Scenario("", kind, tuple(entities), district, *window, EXPECTED_RULES[kind], readings)
    return None


def _pick_entities(plan: _Plan, kind: str, rng: random.Random) -> list[str]:
    city = plan.city
    if kind == "pollution_episode":
        districts = sorted({s.district for s in city.sensors_of("air")})
        district = rng.choice(districts)
        return [s.id for s in city.sensors_of("air") if s.district == district]
    if kind == "traffic_incident":
        detectors = [s for s in city.sensors_of("traffic") if s.neighbours]
        detector = rng.choice(detectors)
        return [detector.id, *detector.neighbours]
    if kind == "water_contamination":
        return [rng.choice([s for s in city.sensors_of("water") if _is_oxygenated(s)]).id]
    if kind in ("transit_surge", "gate_offline"):
        return [rng.choice(_metro_stations(city))]
    if kind in FEED_KINDS:
        return FEED_KINDS[kind].entities(city, rng)
    candidates = [
        s.id for feed in FAULT_FEEDS for s in city.sensors_of(feed) if s.id not in plan.anomaly_sensors
    ]
    return [rng.choice(candidates)] if candidates else []


def _is_oxygenated(station: Sensor) -> bool:
    # Urban rivers are already nearly anoxic: a contamination shows only where the baseline DO is high.
    return water_body_of(station).baseline["dissolved_oxygen"] >= 3


def _metro_stations(city: City) -> list[str]:
    # Metro stations carry the most riders, so a surge or an outage there stands out from the baseline.
    return sorted({station for line in city.lines if line.mode == Mode.METRO for station in line.stations})


def _pick_window(
    plan: _Plan, kind: str, sensor_id: str, lo: datetime, hi: datetime, rng: random.Random
) -> tuple[datetime, datetime] | None:
    """A window for ``kind`` inside [lo, hi) and the run, meeting its time-of-day rule, or None."""
    length = _window_length(plan, kind, sensor_id, rng)
    if hi - lo < length:
        return None
    if kind == "gate_offline":
        start = _peak_start(plan, lo, hi - length, rng)
    else:
        offset = rng.random() * ((hi - lo) - length)
        start = lo + _on_grid(offset, plan)
    if start is None or start < plan.start or start + length > min(hi, plan.end):
        return None
    if kind in ("transit_surge", "gate_offline") and not _in_service(plan, start, start + length):
        return None
    if kind in FEED_KINDS and not FEED_KINDS[kind].starts_at(start.astimezone(plan.zone).time()):
        return None
    return start, start + length


def _window_length(plan: _Plan, kind: str, sensor_id: str, rng: random.Random) -> timedelta:
    if kind == "spike":
        return rng.randint(*SPIKE_READINGS) * _reading_interval(plan, sensor_id)
    low, high = DURATION_MINUTES[kind]
    step = 5  # minutes, so windows read naturally
    return timedelta(minutes=step * rng.randint(low // step, high // step))


def _reading_interval(plan: _Plan, sensor_id: str) -> timedelta:
    return plan.interval or DEFAULT_INTERVALS[plan.city.sensor(sensor_id).kind]


def _on_grid(offset: timedelta, plan: _Plan) -> timedelta:
    # Sampled feeds read at start + n·interval: grid-aligned windows hold whole readings.
    step = max(GRID, plan.interval or GRID)
    return step * int(offset / step)


def _peak_start(plan: _Plan, lo: datetime, latest: datetime, rng: random.Random) -> datetime | None:
    """A start within half an hour after 07:00 or 17:00 local on a day between lo and latest."""
    first_day = lo.astimezone(plan.zone).date()
    days = [
        first_day + timedelta(days=n)
        for n in range((latest.astimezone(plan.zone).date() - first_day).days + 1)
    ]
    weekdays = [day for day in days if day.weekday() < 5]  # peaks are a weekday thing
    if not days:
        return None
    day = rng.choice(weekdays or days)
    peak = datetime.combine(day, rng.choice(PEAK_STARTS), tzinfo=plan.zone)
    start = peak + timedelta(minutes=5 * rng.randrange(7))
    return start if lo <= start <= latest else None


def _in_service(plan: _Plan, start: datetime, end: datetime) -> bool:
    first, last = start.astimezone(plan.zone), (end - timedelta(seconds=1)).astimezone(plan.zone)
    return first.date() == last.date() and first.time() >= SERVICE_START and last.time() < SERVICE_END


def _spike_readings(window: tuple[datetime, datetime], plan: _Plan, sensor_id: str) -> int:
    return round((window[1] - window[0]) / _reading_interval(plan, sensor_id))


# --- injection ------------------------------------------------------------------------------------


class ScenarioInjector(Source):
    """The wrapped source's events with the scenarios applied, still in event-time order."""

    def __init__(
        self,
        source: Source,
        scenarios: Sequence[Scenario],
        city: City,
        *,
        seed: int,
        card_key: bytes,
        card_key_id: str,
    ) -> None:
        self.source, self.scenarios, self.city, self.seed = source, list(scenarios), city, seed
        self.card_key, self.card_key_id = card_key, card_key_id

    def events(self) -> Iterator[Event]:
        surges = [self._surge_taps(s) for s in self.scenarios if s.kind == "transit_surge"]
        # Ties keep the wrapped stream first, then surges in plan order: reproducible.
        return heapq.merge(self._altered(), *surges, key=lambda event: event.event_time)

    def _altered(self) -> Iterator[Event]:
        by_entity: dict[str, list[Scenario]] = {}
        for scenario in self.scenarios:
            for entity in scenario.entities:
                by_entity.setdefault(entity, []).append(scenario)
        stuck: dict[str, Event] = {}  # first reading of each stuck_value window, by scenario id
        for event in self.source.events():
            for scenario in by_entity.get(event.sensor_id, ()):
                if event is not None and scenario.active(event.sensor_id, event.event_time):
                    event = alter(event, scenario, stuck, self.city)
            if event is not None:
                yield event

    def _surge_taps(self, scenario: Scenario) -> Iterator[FareTap]:
        rng = random.Random(f"surge-{self.seed}-{scenario.id}")
        station = scenario.entities[0]
        line = self.city.line(self.city.sensor(station).lines[0])  # planned stations are on a line
        mode = Mode(line.mode)
        zone = ZoneInfo(self.city.timezone)
        minute = scenario.start
        while minute < scenario.end:
            seconds = sorted(rng.randrange(60) for _ in range(SURGE_TAPS_PER_MINUTE))
            for second in seconds:
                moment = (minute + timedelta(seconds=second)).astimezone(zone)
                yield self._tap(rng, station, line.id, mode, moment)
            minute += timedelta(minutes=1)

    def _tap(self, rng: random.Random, station: str, line: str, mode: Mode, moment: datetime) -> FareTap:
        card_hash, key_id = new_card(rng, self.card_key, self.card_key_id)
        metro = mode is Mode.METRO
        return FareTap(
            sensor_id=station,
            date_observed=moment,
            event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            card_id_hash=card_hash,
            card_key_id=key_id,
            card_type=CardType.ADULT,
            mode=mode,
            line=line,
            device_id=f"{station}-{'gate' if metro else 'validator'}-{rng.randint(1, GATES_PER_STATION)}",
            direction=Direction.ENTRY if metro else Direction.BOARD,
            fare=0 if metro else FLAT_FARE[mode],  # the metro charges on exit
        )


def alter(event: Event, scenario: Scenario, stuck: dict[str, Event], city: City) -> Event | None:
    """The event as the scenario makes it, or None when the scenario drops it."""
    kind = scenario.kind
    if kind in ("dropout", "gate_offline"):
        return None
    if kind == "stuck_value":
        first = stuck.setdefault(scenario.id, event)
        return first.model_copy(update={"date_observed": event.date_observed})
    if kind == "spike":
        return event.model_copy(update=SPIKE_VALUES[event.feed])
    if kind == "out_of_range":
        return event.model_copy(update=OUT_OF_RANGE_VALUES[event.feed])  # skips validation on purpose
    if kind == "pollution_episode":
        return _polluted(event)
    if kind == "traffic_incident":
        return _jammed(event, "detector" if event.sensor_id == scenario.entities[0] else "neighbour")
    if kind == "water_contamination":
        return _contaminated(event)
    if kind in FEED_KINDS:
        return FEED_KINDS[kind].alter(event, scenario, city)
    return event


def _polluted(event: Event) -> Event:
    pm25 = min(PM25_CAP, max(event.pm25 * PM_FACTOR, PM25_FLOOR))
    pm10 = min(PM10_CAP, max(event.pm10 * PM_FACTOR, pm25 * 1.3))
    return event.model_copy(update={"pm25": round(pm25, 1), "pm10": round(pm10, 1)})


def _jammed(event: Event, role: str) -> Event:
    speed = round(event.average_vehicle_speed * INCIDENT_SPEED[role], 1)
    occupancy = min(MAX_OCCUPANCY, event.occupancy + INCIDENT_OCCUPANCY_RISE[role])
    return event.model_copy(update={"average_vehicle_speed": speed, "occupancy": round(occupancy, 3)})


def _contaminated(event: Event) -> Event:
    dissolved_oxygen = round(event.dissolved_oxygen * DO_FACTOR, 2)
    nh4_n = round(event.nh4_n * NH4_FACTOR + NH4_ADD, 2)
    return event.model_copy(update={"dissolved_oxygen": dissolved_oxygen, "nh4_n": nh4_n})
