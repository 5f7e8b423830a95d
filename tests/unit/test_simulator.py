import json
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from functools import cache
from statistics import mean
from zoneinfo import ZoneInfo

import pytest

import ioc.feeds.transit.simulator as transit_module
from connectors.sources.simulator import CitySimulator, city_simulator, parse_feeds
from ioc.city import load_city
from ioc.feeds.air.simulator import AirSimulator
from ioc.feeds.traffic.model import TrafficFlowObserved
from ioc.feeds.traffic.simulator import TrafficSimulator
from ioc.feeds.transit.model import FareTap
from ioc.feeds.transit.simulator import TransitSimulator
from ioc.feeds.water.model import WaterQualityObserved
from ioc.feeds.water.simulator import WaterSimulator
from ioc.privacy import pseudonymise_card

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


# --- traffic, water, transit and the merged city stream ---------------------------------------------


HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
MONDAY = datetime(2026, 1, 12, tzinfo=HANOI)  # local midnight
SATURDAY = datetime(2026, 1, 17, tzinfo=HANOI)
KEY, KEY_ID = b"test-key", "t1"


def traffic(start: datetime, hours: float = 24, seed: int = 1) -> list[TrafficFlowObserved]:
    return list(TrafficSimulator(CITY, start=start, duration=timedelta(hours=hours), seed=seed).events())


def water(start: datetime, hours: float = 24, seed: int = 1) -> list[WaterQualityObserved]:
    return list(WaterSimulator(CITY, start=start, duration=timedelta(hours=hours), seed=seed).events())


def transit(start: datetime, hours: float = 24, seed: int = 1, ridership: float = 0.25) -> list[FareTap]:
    sim = TransitSimulator(
        CITY,
        start=start,
        duration=timedelta(hours=hours),
        seed=seed,
        card_key=KEY,
        card_key_id=KEY_ID,
        ridership=ridership,
    )
    return list(sim.events())


@cache
def monday_traffic() -> list[TrafficFlowObserved]:
    return traffic(MONDAY)


@cache
def monday_transit() -> tuple[FareTap, ...]:
    return tuple(transit(MONDAY))


def at(events: list, local_time: datetime) -> list:
    return [e for e in events if e.date_observed == local_time]


def test_traffic_weekday_peaks_are_busy_and_slow():
    events = monday_traffic()
    night = at(events, MONDAY.replace(hour=3))
    for peak in (MONDAY.replace(hour=8), MONDAY.replace(hour=17, minute=30)):
        busy = at(events, peak)
        assert mean(e.flow for e in busy) > 8 * mean(e.flow for e in night)
        assert mean(e.average_vehicle_speed for e in busy) < 0.6 * mean(
            e.average_vehicle_speed for e in night
        )
        assert mean(e.occupancy for e in busy) > 5 * mean(e.occupancy for e in night)
        # Saturated arterials crawl at 15–20 km/h against 40–50 km/h free flow.
        assert 12 <= mean(e.average_vehicle_speed for e in busy) <= 24


def test_traffic_is_consistent_and_mostly_motorcycles():
    for e in monday_traffic():
        assert e.flow == pytest.approx(e.intensity * 3600 / e.interval_seconds)
        assert 0 <= e.occupancy < 1
        assert e.average_vehicle_speed <= CITY.sensor(e.sensor_id).free_flow_speed * 1.05
    totals = {
        name: sum(getattr(e, f"{name}_count") for e in monday_traffic()) for name in ("motorcycle", "car")
    }
    assert totals["motorcycle"] > 0.8 * sum(e.intensity for e in monday_traffic())
    assert totals["motorcycle"] > 5 * totals["car"]


def test_weekend_traffic_is_lighter_than_weekday():
    weekend = traffic(SATURDAY)
    assert mean(e.flow for e in weekend) < 0.9 * mean(e.flow for e in monday_traffic())
    saturday_8 = at(weekend, SATURDAY.replace(hour=8))
    monday_8 = at(monday_traffic(), MONDAY.replace(hour=8))
    assert mean(e.flow for e in saturday_8) < 0.75 * mean(e.flow for e in monday_8)
    assert mean(e.average_vehicle_speed for e in saturday_8) > mean(e.average_vehicle_speed for e in monday_8)


def test_lake_oxygen_peaks_mid_afternoon_and_rivers_carry_far_more_ammonium():
    events = water(MONDAY, hours=24 * 3)
    lakes = {s.id for s in CITY.sensors_of("water") if s.site_type == "lake"}
    sewers = {s.id for s in CITY.sensors_of("water") if s.water_body in ("Sông Tô Lịch", "Sông Kim Ngưu")}
    assert lakes and sewers

    def local_hour(e: WaterQualityObserved) -> float:
        moment = e.date_observed.astimezone(HANOI)
        return moment.hour + moment.minute / 60

    lake_events = [e for e in events if e.sensor_id in lakes]
    afternoon = mean(e.dissolved_oxygen for e in lake_events if 14 <= local_hour(e) < 16)
    before_dawn = mean(e.dissolved_oxygen for e in lake_events if 4 <= local_hour(e) < 6)
    assert afternoon > before_dawn + 2
    river_nh4 = mean(e.nh4_n for e in events if e.sensor_id in sewers)
    lake_nh4 = mean(e.nh4_n for e in lake_events)
    assert river_nh4 > 5 * lake_nh4
    assert mean(e.dissolved_oxygen for e in events if e.sensor_id in sewers) < 2


def test_transit_taps_follow_service_hours_and_peaks():
    taps = monday_transit()
    hours = [e.date_observed.astimezone(HANOI) for e in taps]
    assert all((h.hour, h.minute) >= (5, 30) and h.hour < 22 for h in hours)
    per_hour = defaultdict(int)
    for h in hours:
        per_hour[h.hour] += 1
    peak = mean(per_hour[h] for h in (7, 8, 17, 18))
    midday = mean(per_hour[h] for h in (11, 12, 13, 14))
    assert peak > 1.8 * midday
    assert all(e.direction == "BOARD" for e in taps if e.mode != "metro")
    assert [e.date_observed for e in taps] == sorted(e.date_observed for e in taps)


def test_every_metro_entry_has_a_later_exit_on_the_same_line():
    entries, exits = {}, {}
    for tap in monday_transit():
        if tap.mode == "metro":
            (entries if tap.direction == "ENTRY" else exits)[tap.card_id_hash] = tap
    assert entries and entries.keys() == exits.keys()
    for card, entry in entries.items():
        leave = exits[card]
        stations = CITY.line(entry.line).stations
        hops = abs(stations.index(leave.sensor_id) - stations.index(entry.sensor_id))
        minutes = (leave.date_observed - entry.date_observed).total_seconds() / 60
        assert leave.line == entry.line and hops >= 1
        assert 1.8 * hops + 2 <= minutes <= 2.3 * hops + 22
        assert (
            entry.fare == 0
            and 8_000 <= leave.fare <= 15_000
            or leave.card_type in ("monthly_pass", "day_pass")
        )


def test_no_raw_card_number_reaches_an_event(monkeypatch):
    raw_cards = []

    def recording(raw: str, key: bytes, key_id: str) -> tuple[str, str]:
        raw_cards.append(raw)
        return pseudonymise_card(raw, key, key_id)

    monkeypatch.setattr(transit_module, "pseudonymise_card", recording)
    text = b"\n".join(e.to_json() for e in transit(MONDAY.replace(hour=7), hours=2)).decode()
    assert len(raw_cards) > 100
    assert not any(raw in text for raw in raw_cards)
    assert not re.search(r"(?<![0-9a-f])9704\d{12}(?![0-9a-f])", text)  # the synthetic card-number shape
    assert {json.loads(line)["cardKeyId"] for line in text.splitlines()} == {KEY_ID}


def test_pseudonymise_card_is_a_keyed_hash():
    digest, key_id = pseudonymise_card("9704000011112222", b"k", "k1")
    assert re.fullmatch(r"[0-9a-f]{64}", digest) and key_id == "k1"
    assert pseudonymise_card("9704000011112222", b"k", "k1")[0] == digest
    assert pseudonymise_card("9704000011112222", b"other", "k2")[0] != digest


@pytest.mark.parametrize(
    "simulate",
    [
        lambda seed: traffic(MONDAY.replace(hour=7), hours=1, seed=seed),
        lambda seed: water(MONDAY, hours=3, seed=seed),
        lambda seed: transit(MONDAY.replace(hour=7), hours=1, seed=seed),
    ],
    ids=["traffic", "water", "transit"],
)
def test_each_feed_same_seed_same_bytes_different_seed_different_data(simulate):
    first, again, other = simulate(4), simulate(4), simulate(5)
    assert first
    assert b"\n".join(e.to_json() for e in first) == b"\n".join(e.to_json() for e in again)
    assert b"\n".join(e.to_json() for e in first) != b"\n".join(e.to_json() for e in other)


def test_city_simulator_merges_chosen_feeds_in_event_time_order():
    def run(seed: int) -> list:
        return list(
            city_simulator(
                CITY,
                parse_feeds("transit,air,water,traffic"),
                start=MONDAY.replace(hour=7),
                duration=timedelta(hours=1),
                seed=seed,
                card_key=KEY,
                card_key_id=KEY_ID,
            ).events()
        )

    events = run(2)
    assert isinstance(city_simulator(CITY, ["air"], start=MONDAY, duration=None, seed=1, card_key=KEY,
                                     card_key_id=KEY_ID), CitySimulator)  # fmt: skip
    assert {e.feed for e in events} == {"air", "traffic", "water", "transit"}
    times = [e.event_time for e in events]
    assert times == sorted(times)
    assert b"".join(e.to_json() for e in events) == b"".join(e.to_json() for e in run(2))
    # Every event is a validated model: re-validating its JSON gives it back.
    for e in events:
        assert type(e).model_validate_json(e.to_json()) == e


def test_parse_feeds_rejects_unknown_names():
    assert parse_feeds("air") == ["air"]
    with pytest.raises(ValueError, match="bogus"):
        parse_feeds("air,bogus")


def test_simulate_out_writes_the_same_recording_for_the_same_seed(tmp_path):
    from typer.testing import CliRunner

    from ioc.cli import app

    def write(name: str) -> bytes:
        path = tmp_path / name
        args = ["simulate", "--feeds", "water,transit", "--start", "2026-01-12T07:00:00+07:00"]
        result = CliRunner().invoke(app, [*args, "--duration", "1800", "--seed", "3", "--out", str(path)])
        assert result.exit_code == 0, result.output
        return path.read_bytes()

    first = write("a.jsonl")
    assert first == write("b.jsonl")
    header, *lines = [json.loads(line) for line in first.splitlines()]
    assert (header["format"], header["feeds"]) == ("ioc-recording", ["water", "transit"])
    assert {line["feed"] for line in lines} == {"water", "transit"}
    assert all(line["key"] == line["value"]["sensorId"] for line in lines)
    assert all(line["eventTime"] == line["value"]["dateObserved"] for line in lines)


def test_registry_scales_to_ten_thousand_sensors_that_behave_like_their_originals():
    from connectors.sources.simulator.scale import with_synthetic_sensors

    scaled = with_synthetic_sensors(CITY, 10_000)
    assert len(scaled.sensors) == 10_000
    assert len({s.id for s in scaled.sensors}) == 10_000
    copy = scaled.sensor("unregistered:air-kim-lien~00001")
    original = CITY.sensor("air-kim-lien")
    assert (copy.kind, copy.district, copy.site_type) == (
        original.kind,
        original.district,
        original.site_type,
    )
    assert abs(copy.lat - original.lat) <= 0.01
    assert with_synthetic_sensors(CITY, 10_000) == scaled
    assert with_synthetic_sensors(CITY, 5) is CITY
