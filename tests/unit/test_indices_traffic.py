"""Urban street level of service, travel time index, congestion and speed performance, at every boundary."""

import pytest

from ioc.indices.traffic import (
    congestion_percent,
    level_of_service,
    speed_performance_band,
    speed_performance_index,
    travel_time_index,
)


@pytest.mark.parametrize(
    ("speed", "free_flow", "level"),
    [
        (50.0, 50.0, "A"), (40.5, 50.0, "A"),  # 81 %
        (40.0, 50.0, "B"),  # exactly 80 %: A needs more
        (33.55, 50.0, "B"), (33.5, 50.0, "C"),  # 67.1 %, 67 %
        (40.2, 60.0, "C"),  # 67 % although 100·40.2/60 is 67.00000000000001 in binary floating point
        (25.5, 50.0, "C"), (25.0, 50.0, "D"),  # 51 %, 50 %
        (20.5, 50.0, "D"), (20.0, 50.0, "E"),  # 41 %, 40 %
        (15.5, 50.0, "E"), (15.0, 50.0, "F"),  # 31 %, 30 %
        (0.0, 50.0, "F"),
        (70.0, 50.0, "A"),  # faster than free flow
    ],
)  # fmt: skip
def test_level_of_service_boundaries(speed, free_flow, level):
    assert level_of_service(speed, free_flow) == level


@pytest.mark.parametrize(
    ("speed", "free_flow"), [(-1.0, 50.0), (30.0, 0.0), (30.0, -5.0), (float("nan"), 50.0)]
)
def test_level_of_service_refuses_impossible_speeds(speed, free_flow):
    with pytest.raises(ValueError):
        level_of_service(speed, free_flow)


def test_travel_time_index():
    assert travel_time_index(25.0, 50.0) == pytest.approx(2.0)
    assert travel_time_index(50.0, 50.0) == pytest.approx(1.0)
    assert travel_time_index(0.0, 50.0) is None  # standing traffic: unbounded


def test_congestion_percent():
    assert congestion_percent(25.0, 50.0) == pytest.approx(100.0)  # twice the free-flow time
    assert congestion_percent(40.0, 50.0) == pytest.approx(25.0)
    assert congestion_percent(50.0, 50.0) == 0.0
    assert congestion_percent(60.0, 50.0) == 0.0  # faster than free flow is not negative congestion
    assert congestion_percent(0.0, 50.0) is None


@pytest.mark.parametrize(
    ("speed", "limit", "spi", "band"),
    [
        (38.0, 50.0, 76.0, "free_flow"), (37.5, 50.0, 75.0, "light"), (25.0, 50.0, 50.0, "light"),
        (24.5, 50.0, 49.0, "moderate"), (12.5, 50.0, 25.0, "moderate"), (12.0, 50.0, 24.0, "heavy"),
        (0.0, 50.0, 0.0, "heavy"), (60.0, 50.0, 100.0, "free_flow"),  # capped at 100
    ],
)  # fmt: skip
def test_speed_performance_index_and_band(speed, limit, spi, band):
    assert speed_performance_index(speed, limit) == pytest.approx(spi)
    assert speed_performance_band(speed_performance_index(speed, limit)) == band


def test_speed_performance_refuses_bad_input():
    with pytest.raises(ValueError):
        speed_performance_index(30.0, 0.0)
    with pytest.raises(ValueError):
        speed_performance_band(-1.0)
