"""Ridership bins, crowding and metro origin–destination flows with small-cell suppression."""

from datetime import UTC, datetime, time, timedelta, timezone

import pytest

from ioc.feeds.transit.model import Direction
from ioc.indices.transit import (
    MetroTap,
    bin_start,
    crowding_ratio,
    origin_destination_flows,
    ridership_bins,
    service_day,
)

HANOI = timezone(timedelta(hours=7))


def at(hour: int, minute: int = 0, second: int = 0, day: int = 15) -> datetime:
    return datetime(2026, 1, day, hour, minute, second, tzinfo=HANOI)


# ---- ridership --------------------------------------------------------------------------------------------
def test_ridership_counts_taps_per_station_and_quarter_hour():
    taps = [
        ("cat-linh", at(8, 0)),
        ("cat-linh", at(8, 14, 59)),
        ("cat-linh", datetime(2026, 1, 15, 1, 5, tzinfo=UTC)),  # 08:05 in Hanoi: same bin
        ("cat-linh", at(8, 15)),
        ("la-thanh", at(8, 1)),
    ]
    assert ridership_bins(taps) == {
        ("cat-linh", at(8, 0)): 3,
        ("cat-linh", at(8, 15)): 1,
        ("la-thanh", at(8, 0)): 1,
    }


def test_bins_follow_the_local_clock_and_other_lengths():
    assert bin_start(at(8, 59, 59), minutes=60) == at(8, 0)
    assert bin_start(at(8, 44), minutes=30) == at(8, 30)
    assert bin_start(at(23, 59), minutes=15) == at(23, 45)
    assert ridership_bins([], minutes=15) == {}


@pytest.mark.parametrize("minutes", [0, 7, -15])
def test_bins_must_divide_a_day(minutes):
    with pytest.raises(ValueError, match="divide a day"):
        bin_start(at(8), minutes=minutes)


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="no UTC offset"):
        ridership_bins([("cat-linh", datetime(2026, 1, 15, 8, 0))])


def test_crowding_ratio():
    assert crowding_ratio(300, 120.0) == pytest.approx(2.5)
    assert crowding_ratio(0, 120.0) == 0.0
    assert crowding_ratio(10, 0.0) is None  # no normal yet
    with pytest.raises(ValueError):
        crowding_ratio(-1, 10.0)


# ---- origin–destination flows -----------------------------------------------------------------------------
def trip(card: str, origin: str, destination: str, entered: datetime, minutes: int = 20) -> list[MetroTap]:
    return [
        MetroTap(card, origin, Direction.ENTRY, entered),
        MetroTap(card, destination, Direction.EXIT, entered + timedelta(minutes=minutes)),
    ]


def test_od_flows_count_trips_per_origin_destination_and_hour_and_suppress_small_cells():
    taps: list[MetroTap] = []
    for i in range(12):  # 12 trips Cát Linh → Hà Đông entering 08:00–08:55
        taps += trip(f"card-{i}", "cat-linh", "ha-dong", at(8, i * 5))
    for i in range(3):  # 3 trips Cát Linh → La Thành: under k = 10
        taps += trip(f"other-{i}", "cat-linh", "la-thanh", at(8, 10))
    taps += trip("late", "cat-linh", "ha-dong", at(9, 5))  # one in the 09:00 hour: suppressed too
    flows = origin_destination_flows(reversed(taps))  # order of arrival does not matter
    assert flows.cells == {("cat-linh", "ha-dong", at(8)): 12}
    assert (flows.suppressed_trips, flows.suppressed_cells) == (4, 2)
    assert flows.trips == 16 == sum(flows.cells.values()) + flows.suppressed_trips
    assert (flows.unmatched_entries, flows.unmatched_exits) == (0, 0)

    everything = origin_destination_flows(taps, k=1)
    assert everything.cells[("cat-linh", "la-thanh", at(8))] == 3
    assert everything.cells[("cat-linh", "ha-dong", at(9))] == 1
    assert everything.suppressed_trips == 0


def test_entries_and_exits_that_do_not_pair():
    taps = [
        MetroTap("a", "cat-linh", "ENTRY", at(7, 0)),  # entry without exit
        MetroTap("b", "ha-dong", "EXIT", at(7, 30)),  # exit without entry
        MetroTap("c", "cat-linh", "ENTRY", at(7, 0)),  # exit more than 3 h later
        MetroTap("c", "ha-dong", "EXIT", at(10, 1)),
        MetroTap("d", "cat-linh", "ENTRY", at(8, 0)),  # duplicate entry: the later one pairs
        MetroTap("d", "cat-linh", "ENTRY", at(8, 0, 5)),
        MetroTap("d", "la-thanh", "EXIT", at(8, 20)),
        MetroTap("e", "cat-linh", "ENTRY", at(7, 0)),  # exactly 3 h: still a trip
        MetroTap("e", "ha-dong", "EXIT", at(10, 0)),
        MetroTap("f", "cat-linh", "BOARD", at(7, 0)),  # not a metro gate tap: ignored
    ]
    flows = origin_destination_flows(taps, k=1)
    assert flows.cells == {("cat-linh", "la-thanh", at(8)): 1, ("cat-linh", "ha-dong", at(7)): 1}
    assert flows.unmatched_entries == 3  # a, c, d's first
    assert flows.unmatched_exits == 2  # b, c


def test_a_trip_must_stay_in_one_service_day():
    taps = [
        # 23:30 → 00:20: one service day (it starts at 04:00).
        *trip("night", "cat-linh", "ha-dong", at(23, 30), minutes=50),
        # 03:50 → 04:10: the service day changes at 04:00.
        MetroTap("dawn", "cat-linh", "ENTRY", at(3, 50, day=16)),
        MetroTap("dawn", "ha-dong", "EXIT", at(4, 10, day=16)),
    ]
    flows = origin_destination_flows(taps, k=1)
    assert flows.cells == {("cat-linh", "ha-dong", at(23)): 1}
    assert (flows.unmatched_entries, flows.unmatched_exits) == (1, 1)
    # With service days starting at midnight the night trip splits instead.
    midnight = origin_destination_flows(taps, k=1, service_day_starts_at=time(0, 0))
    assert midnight.cells == {("cat-linh", "ha-dong", at(3, day=16)): 1}


def test_service_day():
    assert service_day(at(3, 59, day=16)) == at(0, day=15).date()
    assert service_day(at(4, 0, day=16)) == at(0, day=16).date()


def test_k_must_be_positive():
    with pytest.raises(ValueError):
        origin_destination_flows([], k=0)
