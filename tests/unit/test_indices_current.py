"""A sensor's current index as the picture shows it: computed by the detector from the readings it already
judges, named and coloured by band, and the worst of several for a district."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from connectors.sources.simulator import city_simulator
from ioc.alerts.rules import load_rules
from ioc.city import load_city
from ioc.detectors.sensor import SensorDetector, new_sensor_state
from ioc.feeds.air import VN_AQI
from ioc.feeds.air.model import AirQualityObserved
from ioc.feeds.traffic import LEVEL_OF_SERVICE
from ioc.feeds.traffic.model import TrafficFlowObserved
from ioc.feeds.transit import RIDERSHIP
from ioc.feeds.transit.model import FareTap
from ioc.feeds.water import VN_WQI
from ioc.feeds.water.model import WaterQualityObserved
from ioc.indices.air import vn_aqi_hourly
from ioc.indices.current import IndexValue, describe, worst
from ioc.indices.traffic import level_of_service
from ioc.indices.water import vn_wqi
from tests.unit.test_sensor_rules import T0, minutes

CITY = load_city("hanoi")
DETECTOR = SensorDetector(load_rules("hanoi"), CITY)
START = datetime.fromisoformat("2026-07-06T07:00:00+07:00")


def test_bands_are_named_in_both_languages_with_the_standards_colours():
    assert describe(VN_AQI, IndexValue(value=163, band="xau")).model_dump() == {
        "value": 163,
        "band": "xau",
        "label": {"vi": "Xấu", "en": "Bad"},
        "colour": "#ff0000",
    }
    assert describe(VN_WQI, IndexValue(value=95, band=None)).colour is None
    assert describe(LEVEL_OF_SERVICE, IndexValue(value=25, band="F")).colour == "#7e0023"
    assert describe(RIDERSHIP, IndexValue(value=12)).label is None
    assert describe(VN_AQI, IndexValue(value=1, band="no-such-band")).label is None


@pytest.mark.parametrize(
    ("name", "values", "expected"),
    [
        (VN_AQI, [(62, "trung_binh"), (163, "xau"), (151, "xau")], 163),  # highest AQI is worst
        (VN_WQI, [(95, "rat_tot"), (48, "kem"), (40, "kem")], 40),  # lowest WQI is worst
        (LEVEL_OF_SERVICE, [(90, "A"), (35, "E"), (31, "E")], 31),  # slowest is worst
        (RIDERSHIP, [(40, None), (25, None)], 65),  # a district's taps: the sum
    ],
)
def test_worst_of_several_sensors(name, values, expected):
    indices = [IndexValue(value=value, band=band) for value, band in values]
    assert worst(name, indices).value == expected
    assert worst(name, []) is None


def test_the_detector_keeps_each_sensors_index_as_computed_by_the_standards():
    """Two hours of every feed through the detector: each sensor keeps its index — VN_WQI of the last
    sample, level of service of the last speed, taps in the current 15-minute bin, a VN_AQI."""
    feeds = ["air", "water", "traffic", "transit"]
    duration = timedelta(hours=2, minutes=20)
    source = city_simulator(
        CITY, feeds, start=START, duration=duration, seed=3, card_key=b"k", card_key_id="k1"
    )
    states: dict[str, dict] = {}
    last: dict[str, object] = {}
    taps: dict[str, list[datetime]] = {}
    for event in source.events():
        state = states.setdefault(event.sensor_id, new_sensor_state())
        DETECTOR.observe(state, event)
        last[event.sensor_id] = event
        if isinstance(event, FareTap):
            taps.setdefault(event.sensor_id, []).append(event.event_time)

    seen = set()
    for sensor_id, event in last.items():
        indices = states[sensor_id]["indices"]
        if isinstance(event, WaterQualityObserved):
            expected = vn_wqi(event.measured_values())
            assert indices[VN_WQI] == {"value": expected.value, "band": expected.band.key}
            seen.add("water")
        elif isinstance(event, TrafficFlowObserved):
            free_flow = CITY.sensor(sensor_id).free_flow_speed
            speed = event.average_vehicle_speed
            assert indices[LEVEL_OF_SERVICE]["band"] == level_of_service(speed, free_flow)
            assert indices[LEVEL_OF_SERVICE]["value"] == round(100 * speed / free_flow, 1)
            seen.add("traffic")
        elif isinstance(event, FareTap):
            bin_start = event.event_time.replace(
                minute=event.event_time.minute // 15 * 15, second=0, microsecond=0
            )
            in_bin = [at for at in taps[sensor_id] if bin_start <= at]
            assert indices[RIDERSHIP] == {"value": len(in_bin), "band": None}
            seen.add("transit")
        elif isinstance(event, AirQualityObserved):
            assert 0 < indices[VN_AQI]["value"] <= 500
            seen.add("air")
    assert seen == {"air", "water", "traffic", "transit"}


def test_an_air_stations_index_is_the_hourly_vn_aqi_of_its_hours_so_far():
    """The NowCast needs two of the last three hours: none in the first hour, then the VN_AQI of the
    hourly means, the current hour's so far included."""
    state = new_sensor_state()
    readings = minutes(T0, 130, lambda minute: 40.0 if minute < 60 else 80.0)
    for reading in readings[:59]:
        DETECTOR.observe(state, reading)
    assert VN_AQI not in state["indices"]
    for reading in readings[59:]:
        DETECTOR.observe(state, reading)
    hours = [readings[120:], readings[60:120], readings[:60]]  # newest first
    means = {
        pollutant: [sum(getattr(r, pollutant) for r in hour) / len(hour) for hour in hours]
        for pollutant in ("pm25", "pm10", "no2", "so2", "co", "o3")
    }
    expected = vn_aqi_hourly(means)
    assert state["indices"][VN_AQI] == {"value": expected.value, "band": expected.band.key}
    assert expected.band.key == "kem"  # PM2.5 NowCast of 80, 80, 40 µg/m³: poor
