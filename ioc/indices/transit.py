"""Public transit: ridership per station and time bin, crowding, metro origin–destination flows.

Pure counting over taps with timezone-aware times; bins follow each tap's own local clock (its offset).
Card ids are the pseudonymised hashes the ingest edge makes; OD cells with fewer than k trips are
suppressed so that a published table cannot single out a rider.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

MINUTES_PER_DAY = 24 * 60
DEFAULT_BIN_MINUTES = 15
DEFAULT_MIN_TRIPS_PER_CELL = 10
DEFAULT_MAX_TRIP = timedelta(hours=3)
# Metro runs about 05:00–23:00; a tap before 04:00 still belongs to the previous service day.
DEFAULT_SERVICE_DAY_START = time(4, 0)


def _check_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"tap time {moment.isoformat()} has no UTC offset")


def bin_start(moment: datetime, minutes: int = DEFAULT_BIN_MINUTES) -> datetime:
    """Start of the ``minutes``-long bin holding ``moment``, bins aligned on local midnight."""
    _check_aware(moment)
    if minutes <= 0 or MINUTES_PER_DAY % minutes:
        raise ValueError(f"bin length must divide a day evenly, got {minutes} minutes")
    minute_of_day = moment.hour * 60 + moment.minute
    start = minute_of_day - minute_of_day % minutes
    return moment.replace(hour=start // 60, minute=start % 60, second=0, microsecond=0)


def ridership_bins(
    taps: Iterable[tuple[str, datetime]], minutes: int = DEFAULT_BIN_MINUTES
) -> dict[tuple[str, datetime], int]:
    """Taps per (station, bin start); bins without taps are absent. Filter the taps (e.g. entries and
    boardings only) before calling."""
    return dict(Counter((station, bin_start(moment, minutes)) for station, moment in taps))


def crowding_ratio(count: int, normal: float) -> float | None:
    """``count`` over the normal count for the same station and bin; None when there is no normal yet."""
    if count < 0:
        raise ValueError(f"a count is ≥ 0, got {count}")
    return count / normal if normal > 0 else None


class MetroTap(NamedTuple):
    card_id_hash: str
    station: str
    direction: str  # "ENTRY" or "EXIT" (ioc.models.transit.Direction compares equal); others are ignored
    time: datetime


@dataclass(frozen=True)
class OdFlows:
    """Trips per (origin, destination, hour of entry), cells under k left out and summed separately:
    ``sum(cells.values()) + suppressed_trips == trips``."""

    cells: dict[tuple[str, str, datetime], int]
    suppressed_trips: int
    suppressed_cells: int
    unmatched_entries: int  # an entry with no exit after it the same service day within the time limit
    unmatched_exits: int  # an exit with no open entry before it

    @property
    def trips(self) -> int:
        return sum(self.cells.values()) + self.suppressed_trips


def service_day(moment: datetime, starts_at: time = DEFAULT_SERVICE_DAY_START) -> date:
    """The local service day a moment belongs to (a day starts at ``starts_at``)."""
    _check_aware(moment)
    since_midnight = timedelta(hours=starts_at.hour, minutes=starts_at.minute)
    return (moment - since_midnight).date()


def _card_trips(
    taps: list[MetroTap], max_trip: timedelta, starts_at: time
) -> tuple[list[tuple[str, str, datetime]], int, int]:
    """One card's taps in time order → trips (origin, destination, entry time), unmatched entries, exits."""
    trips: list[tuple[str, str, datetime]] = []
    unmatched_entries = unmatched_exits = 0
    entry: MetroTap | None = None
    for tap in taps:
        if tap.direction == "ENTRY":
            # An entry while one is open: the open one never exited (or is a duplicate tap).
            unmatched_entries += entry is not None
            entry = tap
        elif tap.direction == "EXIT":
            if entry is None:
                unmatched_exits += 1
                continue
            same_day = service_day(entry.time, starts_at) == service_day(tap.time, starts_at)
            if same_day and tap.time - entry.time <= max_trip:
                trips.append((entry.station, tap.station, entry.time))
            else:
                unmatched_entries += 1
                unmatched_exits += 1
            entry = None
    unmatched_entries += entry is not None
    return trips, unmatched_entries, unmatched_exits


def origin_destination_flows(
    taps: Iterable[MetroTap],
    k: int = DEFAULT_MIN_TRIPS_PER_CELL,
    max_trip: timedelta = DEFAULT_MAX_TRIP,
    service_day_starts_at: time = DEFAULT_SERVICE_DAY_START,
) -> OdFlows:
    """Metro OD flows: each card's ENTRY paired with its next EXIT on the same service day within
    ``max_trip``, counted per (origin, destination, hour of entry); cells with fewer than ``k`` trips are
    suppressed and their trips counted in ``suppressed_trips``."""
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    by_card: dict[str, list[MetroTap]] = defaultdict(list)
    for tap in taps:
        _check_aware(tap.time)
        by_card[tap.card_id_hash].append(tap)
    counts: Counter[tuple[str, str, datetime]] = Counter()
    unmatched_entries = unmatched_exits = 0
    for card_taps in by_card.values():
        card_taps.sort(key=lambda tap: tap.time)  # stable: equal times keep their arrival order
        trips, entries, exits = _card_trips(card_taps, max_trip, service_day_starts_at)
        counts.update(
            (origin, destination, entered.replace(minute=0, second=0, microsecond=0))
            for origin, destination, entered in trips
        )
        unmatched_entries += entries
        unmatched_exits += exits
    kept = {cell: count for cell, count in counts.items() if count >= k}
    suppressed = [count for cell, count in counts.items() if count < k]
    return OdFlows(kept, sum(suppressed), len(suppressed), unmatched_entries, unmatched_exits)
