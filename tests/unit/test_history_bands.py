"""The standard's bands a history chart shades, in the measure's unit."""

from __future__ import annotations

from ioc.city import load_city
from ioc.history.bands import measure_bands
from ioc.indices.air import sub_index
from ioc.indices.traffic import level_of_service


def test_air_bands_are_the_vn_aqi_breakpoints_of_the_pollutant():
    standard, bands = measure_bands("air", "pm25", None)
    assert standard.startswith("VN_AQI")
    assert [(b.lower, b.upper, b.key) for b in bands[:3]] == [
        (0, 25, "tot"),
        (25, 50, "trung_binh"),
        (50, 80, "kem"),
    ]
    assert bands[-1].upper is None and bands[-1].label.en == "Hazardous"
    # Each band's lower edge is where its AQI band starts.
    assert [round(sub_index("pm25", b.lower)) for b in bands[1:4]] == [50, 100, 150]


def test_a_detectors_speed_bands_are_its_levels_of_service():
    detector = load_city("hanoi").sensor("traffic-nga-tu-so")
    _, bands = measure_bands("traffic", "average_vehicle_speed", detector)
    assert [b.key for b in bands] == ["F", "E", "D", "C", "B", "A"]
    for band in bands:  # a speed just above each lower edge has the band's level
        assert level_of_service(band.lower + 0.01, detector.free_flow_speed) == band.key
    assert measure_bands("traffic", "average_vehicle_speed", None) == (None, [])


def test_water_bands_are_qcvn08_classes_either_way_round():
    _, oxygen = measure_bands("water", "dissolved_oxygen", None)  # at least: more is better
    assert [(b.lower, b.key) for b in oxygen] == [(0.0, "D"), (4, "C"), (5, "B"), (6, "A")]
    _, bod = measure_bands("water", "bod5", None)  # at most: less is better
    assert [(b.lower, b.upper, b.key) for b in bod] == [
        (0.0, 4, "A"),
        (4, 6, "B"),
        (6, 10, "C"),
        (10, None, "D"),
    ]
    assert measure_bands("water", "ph", None) == (None, [])  # two-sided: no bands


def test_a_crowd_zones_people_bands_are_its_occupancy_bands_in_people():
    zone = load_city("hanoi").sensor("crowd-van-mieu")  # safe capacity 10,000
    standard, bands = measure_bands("crowd", "people_count", zone)
    assert standard is not None and "safe capacity" in standard
    assert [(b.lower, b.upper, b.key) for b in bands] == [
        (0, 5000, "comfortable"),
        (5000, 8000, "busy"),
        (8000, 10000, "crowded"),
        (10000, None, "over_capacity"),
    ]
    assert bands[2].label.vi == "Rất đông" and bands[2].colour == "#ff7e00"
    assert measure_bands("crowd", "people_count", None) == (None, [])  # no zone: no capacity


def test_bands_come_from_the_feeds_package_and_none_for_a_feed_without():
    from ioc.feeds import REGISTRY

    assert {name for name, feed in REGISTRY.items() if feed.chart_bands} == {
        "air",
        "traffic",
        "water",
        "crowd",
    }
    assert REGISTRY["air"].measure_bands("pm25", None) == measure_bands("air", "pm25", None)
    assert measure_bands("transit", "ridership", None) == (None, [])  # taps: no standard's bands
    assert measure_bands("unknown", "pm25", None) == (None, [])
