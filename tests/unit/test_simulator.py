from datetime import UTC, datetime, timedelta
from statistics import mean

from connectors.sources.simulator import AirSimulator
from ioc.city import load_city

CITY = load_city("hanoi")


def run(seed: int, start: datetime, hours: float = 24) -> list:
    sim = AirSimulator(
        CITY, start=start, interval=timedelta(minutes=10), duration=timedelta(hours=hours), seed=seed
    )
    return list(sim.events())


def test_same_seed_same_bytes_different_seed_different_data():
    start = datetime(2026, 1, 15, tzinfo=UTC)
    first, again, other = run(7, start, 2), run(7, start, 2), run(8, start, 2)
    assert b"".join(e.to_json() for e in first) == b"".join(e.to_json() for e in again)
    assert [e.pm25 for e in first] != [e.pm25 for e in other]


def test_every_air_station_reports_every_interval_in_event_time_order():
    events = run(1, datetime(2026, 1, 15, tzinfo=UTC), 1)
    assert len(events) == 6 * len(CITY.sensors_of("air"))
    times = [e.date_observed for e in events]
    assert times == sorted(times)


def test_pm25_winter_far_above_summer_and_night_above_afternoon():
    winter = run(3, datetime(2026, 1, 10, tzinfo=UTC), 24 * 7)
    summer = run(3, datetime(2026, 7, 10, tzinfo=UTC), 24 * 7)
    assert mean(e.pm25 for e in winter) > 2.5 * mean(e.pm25 for e in summer)
    local_hour = [(e.date_observed.hour + 7) % 24 for e in winter]
    early = [e.pm25 for e, h in zip(winter, local_hour, strict=True) if 2 <= h < 8]
    afternoon = [e.pm25 for e, h in zip(winter, local_hour, strict=True) if 13 <= h < 16]
    assert mean(early) > 1.4 * mean(afternoon)
