"""The Hanoi registry: complete, consistent, and the ids other parts depend on are stable."""

import json

import pytest

from ioc.city import load_city

CITY = load_city("hanoi")
DISTRICTS = {
    "ba-dinh", "hoan-kiem", "tay-ho", "long-bien", "cau-giay", "dong-da",
    "hai-ba-trung", "hoang-mai", "thanh-xuan", "nam-tu-liem", "bac-tu-liem", "ha-dong",
}  # fmt: skip
AIR_STATIONS = {
    "air-trung-yen", "air-minh-khai", "air-hoan-kiem", "air-hang-dau", "air-kim-lien", "air-thanh-cong",
    "air-tan-mai", "air-my-dinh", "air-pham-van-dong", "air-tay-mo", "air-nguyen-van-cu", "air-us-embassy",
}  # fmt: skip


def test_the_twelve_districts_and_air_stations_are_unchanged():
    assert {d.id for d in CITY.districts} == DISTRICTS
    assert {s.id for s in CITY.sensors_of("air")} == AIR_STATIONS


def test_every_sensor_is_in_a_known_district_with_a_name_and_a_hanoi_position():
    for sensor in CITY.sensors:
        assert CITY.district(sensor.district) is not None, sensor.id
        assert sensor.name and 20.9 < sensor.lat < 21.1 and 105.7 < sensor.lon < 105.9, sensor.id


@pytest.mark.parametrize("kind", ["air", "water", "traffic", "transit"])
def test_every_feed_has_sensors(kind):
    assert CITY.sensors_of(kind)


def test_water_stations_cover_the_rivers_and_main_lakes():
    bodies = {s.water_body for s in CITY.sensors_of("water")}
    assert {"Sông Tô Lịch", "Sông Kim Ngưu", "Sông Nhuệ", "Sông Hồng", "Hồ Tây", "Hồ Hoàn Kiếm"} <= bodies


def test_metro_2a_has_twelve_stations_in_order():
    line = CITY.line("2A")
    assert line.mode == "metro" and len(line.stations) == 12
    names = [CITY.sensor(s).name for s in line.stations]
    assert names[0] == "Cát Linh" and names[-1] == "Yên Nghĩa" and names[8] == "Hà Đông"
    # In order: each station is further south-west than the one before.
    lats = [CITY.sensor(s).lat for s in line.stations]
    assert lats == sorted(lats, reverse=True)


def test_lines_include_line_3_brt01_and_bus_routes():
    assert {"3", "BRT01"} <= {line.id for line in CITY.lines}
    assert CITY.line("BRT01").mode == "brt"
    assert len([line for line in CITY.lines if line.mode == "bus"]) >= 3


def test_line_stations_are_transit_stops_that_list_the_line():
    for line in CITY.lines:
        for station_id in line.stations:
            station = CITY.sensor(station_id)
            assert station.kind == "transit" and line.id in station.lines, (line.id, station_id)


def test_traffic_neighbours_exist_are_detectors_and_are_mutual():
    for detector in CITY.sensors_of("traffic"):
        assert detector.free_flow_speed, detector.id
        for neighbour_id in detector.neighbours:
            neighbour = CITY.sensor(neighbour_id)
            assert neighbour is not None and neighbour.kind == "traffic", (detector.id, neighbour_id)
            assert detector.id in neighbour.neighbours, (detector.id, neighbour_id)


def test_traffic_hotspots_are_watched():
    names = " ".join(s.name for s in CITY.sensors_of("traffic"))
    for hotspot in ("Ngã Tư Sở", "Khuất Duy Tiến", "Cầu Giấy", "Ngã Tư Vọng", "Pháp Vân", "Kim Liên"):
        assert hotspot in names


def test_a_dangling_neighbour_is_refused(tmp_path):
    broken = CITY.model_dump(mode="json")
    broken["sensors"][-1]["neighbours"] = ["traffic-nowhere"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(ValueError, match="traffic-nowhere"):
        load_city(str(path))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (["urn:ngsi-ld:Device:d1"], ["urn:ngsi-ld:Device:d1"]),  # one external id, two sensors
        (["air-kim-lien"], []),  # another sensor's own id
        ([" "], []),
    ],
)
def test_external_ids_name_one_sensor_each(tmp_path, first, second):
    broken = CITY.model_dump(mode="json")
    broken["sensors"][0]["external_ids"], broken["sensors"][1]["external_ids"] = first, second
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(ValueError, match="external id"):
        load_city(str(path))


def test_external_ids_find_their_sensor():
    assert CITY.sensor_known_as("waterqualityobserved:Sevilla:D1").id == "water-ho-hoan-kiem"
    assert CITY.sensor_known_as("water-ho-hoan-kiem") is None  # a sensor's own id is not an external one
