"""Simulated fare-card taps on Hanoi's metro, BRT and buses.

Signal model (../shared/reference/hanoi.md, traffic_transit.md):

- Riders start trips at every station or stop of every line as a Poisson process whose rate follows
  the hour (service 05:30–22:00; weekday peaks 07–09 and 17–19; weekends flatter and lighter), scaled
  to about 30 thousand taps a day on line 2A.
- Metro: an ENTRY at one station, then an EXIT at another station of the same line after walking,
  waiting (up to one headway: 6–10 min at peak, 10–15 off-peak) and ≈ 2 min per inter-station hop;
  the exit charges the fare by distance (8,000–15,000 VND). A trip that cannot end before service
  closes (or the simulated span ends) is not started. BRT and buses: one BOARD tap, flat fare.
- Each trip is a rider with a synthetic raw card number, pseudonymised at once with
  ``ioc.privacy.pseudonymise_card``; the raw number never leaves this module.
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from connectors.sources.base import Source
from connectors.sources.simulator.profiles import poisson
from ioc.city import City, Line
from ioc.feeds import SimulationOptions
from ioc.feeds.transit.model import CardType, Direction, FareTap, Mode
from ioc.privacy import pseudonymise_card

# Every simulated line keeps the registry's default service hours.
SERVICE_START = Line.model_fields["service_start"].default
SERVICE_END = Line.model_fields["service_end"].default
# Trips started per station (per route at a bus stop) on a weekday; 2A: 12 × 1,300 ≈ 16k trips ≈ 31k taps.
DAILY_TRIPS = {Mode.METRO: 1300, Mode.BRT: 1200, Mode.BUS: 800}
# Relative trips by local hour (05 covers 05:30–06:00 only, so it is weighted for half an hour).
WEEKDAY_TRIPS = {
    5: 0.15, 6: 0.9, 7: 1.6, 8: 1.4, 9: 0.8, 10: 0.6, 11: 0.6, 12: 0.6, 13: 0.55,
    14: 0.6, 15: 0.7, 16: 1.0, 17: 1.5, 18: 1.4, 19: 0.8, 20: 0.5, 21: 0.35,
}  # fmt: skip
WEEKEND_TRIPS = {
    5: 0.1, 6: 0.4, 7: 0.6, 8: 0.8, 9: 0.9, 10: 0.9, 11: 0.8, 12: 0.7, 13: 0.7,
    14: 0.8, 15: 0.9, 16: 0.9, 17: 0.9, 18: 0.8, 19: 0.7, 20: 0.5, 21: 0.35,
}  # fmt: skip
WEEKEND_VOLUME = 0.75  # fewer trips at the weekend than on a weekday

CARD_TYPES = (CardType.ADULT, CardType.STUDENT, CardType.ELDERLY, CardType.MONTHLY_PASS, CardType.DAY_PASS)
CARD_TYPE_WEIGHTS = (0.55, 0.15, 0.05, 0.20, 0.05)
PASSES = frozenset({CardType.MONTHLY_PASS, CardType.DAY_PASS})  # paid up front: taps charge 0
FLAT_FARE = {Mode.BUS: 7_000, Mode.BRT: 7_000}  # VND
METRO_BASE_FARE, METRO_FARE_PER_HOP, METRO_MAX_FARE = 8_000, 700, 15_000
MINUTES_PER_HOP = (1.8, 2.3)
GATES_PER_STATION = 4
CARD_PREFIX = "9704"  # synthetic 16-digit numbers, like a domestic card


@dataclass(frozen=True)
class Stop:
    """A station or stop as served by one line: where trips start."""

    station: str
    line: str
    mode: Mode
    position: int  # index along the line
    line_stations: tuple[str, ...]


def new_card(rng: random.Random, key: bytes, key_id: str) -> tuple[str, str]:
    """A synthetic card number, pseudonymised at once: (HMAC hex, key id); the raw number goes no further."""
    return pseudonymise_card(f"{CARD_PREFIX}{rng.randrange(10**12):012d}", key, key_id)


def metro_fare(hops: int) -> int:
    """Line 2A fare by distance: 8,000 VND for one hop, about 700 more per hop, at most 15,000."""
    steps = round(METRO_FARE_PER_HOP * (hops - 1) / 1000) * 1000
    return min(METRO_MAX_FARE, METRO_BASE_FARE + steps)


def in_service(local: datetime) -> bool:
    return SERVICE_START <= local.time() < SERVICE_END


def hourly_trips(mode: Mode, local: datetime) -> float:
    """Expected trips per hour starting at one stop of ``mode`` at this local time."""
    if not in_service(local):
        return 0.0
    weekend = local.weekday() >= 5
    weights = WEEKEND_TRIPS if weekend else WEEKDAY_TRIPS
    share = weights.get(local.hour, 0.0) / sum(weights.values())
    # The 05:xx weight covers half an hour of service: spread it over that half hour.
    per_hour = share * (2 if local.hour == 5 else 1)
    return DAILY_TRIPS[mode] * per_hour * (WEEKEND_VOLUME if weekend else 1.0)


def headway_minutes(local: datetime) -> float:
    peak = local.weekday() < 5 and (7 <= local.hour < 9 or 17 <= local.hour < 19)
    return 8.0 if peak else 12.5


class TransitSimulator(Source):
    """FareTap events for every line in the registry, in event-time order (one-second resolution)."""

    feed = "transit"

    def __init__(
        self,
        city: City,
        *,
        start: datetime,
        duration: timedelta | None = None,
        seed: int = 1,
        card_key: bytes,
        card_key_id: str,
        ridership: float = 1.0,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.zone = ZoneInfo(city.timezone)
        self.stops = [
            Stop(station, line.id, Mode(line.mode), position, tuple(line.stations))
            for line in city.lines
            for position, station in enumerate(line.stations)
        ]
        self.start, self.duration, self.seed = start, duration, seed
        self.card_key, self.card_key_id, self.ridership = card_key, card_key_id, ridership

    def events(self) -> Iterator[FareTap]:
        rng = random.Random(f"transit-{self.seed}")
        end = self.start + self.duration if self.duration is not None else None
        pending: list[tuple[datetime, int, FareTap]] = []  # taps due later (metro exits), by time
        sequence = 0
        minute = self.start
        while end is None or minute < end:
            local = minute.astimezone(self.zone)
            for stop in self.stops:
                mean = hourly_trips(stop.mode, local) * self.ridership / 60
                for _ in range(poisson(rng, mean)):
                    tapped = minute + timedelta(seconds=rng.randrange(60))
                    for tap in self._trip(stop, tapped, end, rng):
                        heapq.heappush(pending, (tap.date_observed, sequence, tap))
                        sequence += 1
            minute += timedelta(minutes=1)
            # Everything generated from now on is at or after ``minute``: what is earlier is final.
            while pending and pending[0][0] < minute:
                yield heapq.heappop(pending)[2]
        while pending:
            yield heapq.heappop(pending)[2]

    def _trip(self, stop: Stop, tapped: datetime, end: datetime | None, rng: random.Random) -> list[FareTap]:
        local = tapped.astimezone(self.zone)
        if not in_service(local):
            return []
        card_type = rng.choices(CARD_TYPES, CARD_TYPE_WEIGHTS)[0]
        card_hash, key_id = new_card(rng, self.card_key, self.card_key_id)
        rider = dict(card_id_hash=card_hash, card_key_id=key_id, card_type=card_type, line=stop.line)
        if stop.mode is not Mode.METRO:
            fare = 0 if card_type in PASSES else FLAT_FARE[stop.mode]
            device = f"{stop.station}-validator-{rng.randint(1, 2)}"
            return [self._tap(rng, stop.station, tapped, stop.mode, device, Direction.BOARD, fare, rider)]
        destination = rng.choice([i for i in range(len(stop.line_stations)) if i != stop.position])
        hops = abs(destination - stop.position)
        minutes = (
            rng.uniform(1, 4)  # walk to the platform
            + rng.uniform(0, headway_minutes(local))  # wait for a train
            + hops * rng.uniform(*MINUTES_PER_HOP)
            + rng.uniform(1, 3)  # walk out
        )
        exited = tapped + timedelta(seconds=round(minutes * 60))
        # The last trains: no trip that would end after closing or after the simulated span.
        if not in_service(exited.astimezone(self.zone)) or (end is not None and exited >= end):
            return []
        fare = 0 if card_type in PASSES else metro_fare(hops)
        exit_station = stop.line_stations[destination]
        entry_gate, exit_gate = self._gate(stop.station, rng), self._gate(exit_station, rng)
        return [
            self._tap(rng, stop.station, tapped, Mode.METRO, entry_gate, Direction.ENTRY, 0, rider),
            self._tap(rng, exit_station, exited, Mode.METRO, exit_gate, Direction.EXIT, fare, rider),
        ]

    @staticmethod
    def _gate(station: str, rng: random.Random) -> str:
        return f"{station}-gate-{rng.randint(1, GATES_PER_STATION)}"

    def _tap(
        self,
        rng: random.Random,
        station: str,
        moment: datetime,
        mode: Mode,
        device: str,
        direction: Direction,
        fare: int,
        rider: dict,
    ) -> FareTap:
        return FareTap(
            sensor_id=station,
            date_observed=moment.astimezone(self.zone),
            event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            mode=mode,
            device_id=device,
            direction=direction,
            fare=fare,
            **rider,
        )


def simulate(city: City, options: SimulationOptions) -> TransitSimulator:
    return TransitSimulator(
        city,
        start=options.start,
        duration=options.duration,
        seed=options.seed,
        card_key=options.card_key,
        card_key_id=options.card_key_id,
    )
