"""Feed models and their NGSI-LD forms: valid events survive every round trip, invalid ones name the field."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ioc.feeds import MODELS
from ioc.feeds.air.model import AirQualityObserved
from ioc.feeds.traffic.model import TrafficFlowObserved
from ioc.feeds.transit.model import FareTap
from ioc.feeds.water.model import WaterQualityObserved
from ioc.models.dead_letter import describe_validation_error
from ioc.models.ngsi_ld import NgsiLdError, from_ngsi_ld, to_ngsi_ld

sensor_ids = st.from_regex(r"[a-z0-9][a-z0-9-]{0,40}", fullmatch=True)
offsets = st.integers(-12 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
# Event times end at 9999-01-01 UTC (ioc.models.time_range); a day short of it, whatever the offset.
aware_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(9998, 12, 30), timezones=offsets | st.just(UTC)
).map(lambda moment: moment.isoformat())


def within(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False)


def event_dicts(optional: dict, **required) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {"sensorId": sensor_ids, "dateObserved": aware_times, **required}, optional=optional
    )


air_dicts = event_dicts(
    {
        "pm25": within(0, 2000),
        "pm10": within(0, 3000),
        "no2": within(0, 5000),
        "co": within(0, 200_000),
        "temperature": within(-20, 60),
        "relativeHumidity": within(0, 100),
        "ingestTime": aware_times,
    }
)
WATER_RANGES = {
    "pH": (0, 14),
    "dissolvedOxygen": (0, 30),
    "temperature": (0, 50),
    "bod5": (0, 10_000),
    "cod": (0, 20_000),
    "toc": (0, 10_000),
    "nh4N": (0, 1000),
    "no3N": (0, 1000),
    "no2N": (0, 100),
    "po4P": (0, 500),
    "coliform": (0, 1e10),
    "eColi": (0, 1e10),
    "turbidity": (0, 10_000),
    "conductivity": (0, 100_000),
}
water_dicts = event_dicts({name: within(*bounds) for name, bounds in WATER_RANGES.items()}).filter(
    lambda d: set(d) & set(WATER_RANGES)
)


@st.composite
def traffic_dicts(draw: st.DrawFn) -> dict:
    interval = draw(st.integers(1, 3600))
    intensity = draw(st.integers(0, interval * 50_000 // 3600))
    classes = {}
    left = intensity
    for name in draw(st.lists(st.sampled_from(["motorcycleCount", "carCount", "busCount", "truckCount"]))):
        if name not in classes:
            classes[name] = draw(st.integers(0, left))
            left -= classes[name]
    base = draw(
        event_dicts(
            {
                "laneId": st.integers(0, 32),
                "refRoadSegment": sensor_ids,
                "flow": within(0, 50_000),
                "averageVehicleSpeed": within(0, 200),
                "occupancy": within(0, 1),
            }
        )
    )
    return base | classes | {"intervalSeconds": interval, "intensity": intensity}


ngsi_ld_cases = st.one_of(
    air_dicts.map(lambda d: (AirQualityObserved, d)),
    water_dicts.map(lambda d: (WaterQualityObserved, d)),
    traffic_dicts().map(lambda d: (TrafficFlowObserved, d)),
)


@given(ngsi_ld_cases)
def test_valid_events_round_trip_through_json(case):
    model, wire = case
    event = model.model_validate(wire)
    again = model.model_validate_json(event.to_json())
    assert again == event and again.to_json() == event.to_json()


@given(ngsi_ld_cases, st.booleans())
def test_valid_events_round_trip_through_ngsi_ld(case, key_values):
    model, wire = case
    event = model.model_validate(wire)
    entity = json.loads(json.dumps(to_ngsi_ld(event, key_values=key_values)))
    assert entity["id"] == f"urn:ngsi-ld:{model.__name__}:{event.sensor_id}"
    assert entity["type"] == model.__name__ and entity["@context"]
    again = from_ngsi_ld(entity)
    assert type(again) is model
    if key_values:  # relativeHumidity and conductivity go out in SDM units and back: float arithmetic
        assert again.measured_values() == pytest.approx(event.measured_values())
        again = again.model_copy(update={m.field: getattr(event, m.field) for m in model.measures})
    assert again == event and again.to_json() == event.to_json()


@given(air_dicts.filter(lambda d: "pm25" in d))
def test_normalized_form_wraps_values_as_properties(wire):
    entity = to_ngsi_ld(AirQualityObserved.model_validate(wire))
    assert entity["pm25"]["type"] == "Property" and entity["pm25"]["unitCode"] == "GQ"
    assert entity["pm25"]["observedAt"].endswith("Z")
    assert entity["dateObserved"]["value"]["@type"] == "DateTime"


def test_fiware_traffic_interval_gives_date_observed_and_interval():
    entity = {
        "id": "urn:ngsi-ld:TrafficFlowObserved:traffic-nga-tu-so",
        "type": "TrafficFlowObserved",
        "dateObservedFrom": "2026-01-15T08:00:00+07:00",
        "dateObservedTo": "2026-01-15T08:05:00+07:00",
        "intensity": 900,
        "location": {"type": "Point", "coordinates": [105.8203, 21.0028]},
    }
    event = from_ngsi_ld(entity)
    assert event.interval_seconds == 300 and event.date_observed.hour == 8
    assert event.measured_values()["flow"] == 900 * 12  # derived when the detector gives no flow


@pytest.mark.parametrize(
    ("entity", "needle"),
    [
        ({"type": "Parking", "id": "urn:ngsi-ld:Parking:p"}, "type="),
        ({"type": "AirQualityObserved", "id": "air-kim-lien", "pm25": 3}, "id="),
        ([], "JSON object"),
    ],
)
def test_unreadable_entities_say_why(entity, needle):
    with pytest.raises(NgsiLdError, match=needle):
        from_ngsi_ld(entity)


def test_invalid_ngsi_ld_values_name_the_wire_field():
    entity = {
        "id": "urn:ngsi-ld:WaterQualityObserved:water-ho-tay",
        "type": "WaterQualityObserved",
        "dateObserved": {
            "type": "Property",
            "value": {"@type": "DateTime", "@value": "2026-01-15T08:00:00Z"},
        },
        "pH": {"type": "Property", "value": 15.2},
    }
    with pytest.raises(ValidationError) as error:
        from_ngsi_ld(entity)
    assert describe_validation_error(error.value).startswith("pH=15.2")


def rejection(model, wire) -> str:
    with pytest.raises(ValidationError) as error:
        model.model_validate(wire)
    return describe_validation_error(error.value)


def outside(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(max_value=low, exclude_max=True) | st.floats(min_value=high, exclude_min=True)


@given(
    water_dicts,
    st.sampled_from(sorted(WATER_RANGES)).flatmap(
        lambda name: st.tuples(st.just(name), outside(*WATER_RANGES[name]))
    ),
)
def test_out_of_range_water_values_name_the_field(wire, bad):
    name, value = bad
    assert f"{name}=" in rejection(WaterQualityObserved, wire | {name: value})


@given(
    traffic_dicts(),
    st.one_of(
        st.tuples(st.just("averageVehicleSpeed"), outside(0, 200)),
        st.tuples(st.just("occupancy"), outside(0, 1)),
        st.tuples(st.just("laneId"), st.integers(max_value=-1) | st.integers(min_value=33)),
        st.tuples(st.just("intensity"), st.integers(max_value=-1)),
    ),
)
def test_out_of_range_traffic_values_name_the_field(wire, bad):
    name, value = bad
    assert f"{name}=" in rejection(TrafficFlowObserved, wire | {name: value})


@given(ngsi_ld_cases, st.datetimes())
def test_naive_event_times_are_rejected_naming_the_field(case, naive):
    model, wire = case
    message = rejection(model, wire | {"dateObserved": naive.isoformat()})
    assert message.startswith("dateObserved=") and "timezone" in message


@given(ngsi_ld_cases, st.from_regex(r"[a-z][A-Za-z0-9]{0,15}", fullmatch=True))
def test_unknown_fields_are_rejected_naming_the_field(case, name):
    model, wire = case
    known = {field.alias for field in model.model_fields.values()} | set(model.model_fields)
    if name in known:
        return
    assert f"{name}=" in rejection(model, wire | {name: 1})


@given(event_dicts({}))
def test_water_without_any_parameter_says_which_are_possible(wire):
    message = rejection(WaterQualityObserved, wire)
    assert "at least one of pH, dissolvedOxygen" in message


def test_class_counts_cannot_exceed_the_vehicle_count():
    wire = {
        "sensorId": "t",
        "dateObserved": "2026-01-15T08:00:00+07:00",
        "intervalSeconds": 60,
        "intensity": 10,
    }
    assert "motorcycleCount + carCount" in rejection(TrafficFlowObserved, wire | {"motorcycleCount": 11})
    assert "intervalSeconds" in rejection(TrafficFlowObserved, wire | {"intensity": 100_000})


TAP = {
    "sensorId": "metro-2a-cat-linh",
    "dateObserved": "2026-01-15T08:00:00+07:00",
    "eventId": "tap-0001",
    "cardIdHash": "3f" * 32,
    "cardKeyId": "k2026-01",
    "cardType": "student",
    "mode": "metro",
    "line": "2A",
    "deviceId": "cat-linh-g03",
    "direction": "EXIT",
    "fare": 12_000,
}


def test_fare_tap_round_trips_and_is_counted_not_averaged():
    tap = FareTap.model_validate(TAP)
    assert FareTap.model_validate_json(tap.to_json()) == tap
    assert tap.measured_values() == {} and MODELS["transit"] is FareTap


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cardIdHash": "9704123412341234"}, "cardIdHash"),  # a raw card number, not a digest
        ({"cardIdHash": "3F" * 32}, "cardIdHash"),
        ({"fare": -1000}, "fare"),
        ({"mode": "tram"}, "mode"),
        ({"direction": "BOARD"}, "(event)"),  # a metro gate has no BOARD
        ({"cardId": "9704123412341234"}, "cardId"),
    ],
)
def test_invalid_taps_name_the_field(change, field):
    assert rejection(FareTap, TAP | change).startswith(f"{field}=")


def test_every_feed_has_a_model():
    assert set(MODELS) == {"air", "traffic", "water", "transit", "crowd"}  # every package of ioc/feeds
    assert all(model.feed == feed for feed, model in MODELS.items())


MEASURES = (
    [
        (AirQualityObserved, name)
        for name in ("pm25", "pm10", "no2", "so2", "co", "o3", "temperature", "relativeHumidity")
    ]
    + [(WaterQualityObserved, name) for name in WATER_RANGES]
    + [(TrafficFlowObserved, name) for name in ("intensity", "flow", "averageVehicleSpeed", "occupancy")]
)
BASE = {
    AirQualityObserved: {"sensorId": "air-x", "dateObserved": "2026-01-15T08:00:00+07:00", "pm25": 1.0},
    WaterQualityObserved: {"sensorId": "water-x", "dateObserved": "2026-01-15T08:00:00+07:00", "pH": 7.0},
    TrafficFlowObserved: {
        "sensorId": "traffic-x",
        "dateObserved": "2026-01-15T08:00:00+07:00",
        "intervalSeconds": 60,
        "intensity": 10,
    },
}


@pytest.mark.parametrize(("model", "name"), MEASURES)
@pytest.mark.parametrize("value", ["0.5", "1", True, False])
def test_measures_are_json_numbers_strictly(model, name, value):
    """A string or a boolean is not a reading: a client that sends "12.5" or true has a bug to hear of."""
    reason = rejection(model, BASE[model] | {name: value})
    assert reason.startswith(f"{name}=") and "number" in reason, reason


@pytest.mark.parametrize(("model", "name"), MEASURES)
def test_measures_take_integers_and_floats_from_json(model, name):
    for value in ("1", "0.5") if name != "intensity" else ("1",):
        event = model.model_validate_json(json.dumps(BASE[model]).replace("}", f', "{name}": {value}}}'))
        assert event.measured_values()[_snake(name)] == float(value)


def test_ngsi_ld_measures_are_strict_too_in_either_form():
    entity = {
        "id": "urn:ngsi-ld:AirQualityObserved:air-kim-lien",
        "type": "AirQualityObserved",
        "dateObserved": "2026-01-15T08:00:00+07:00",
    }
    for form in ({"pm25": "12.5"}, {"pm25": {"type": "Property", "value": "12.5"}}):
        with pytest.raises(ValidationError) as error:
            from_ngsi_ld(entity | form)
        assert describe_validation_error(error.value).startswith("pm25=")
    assert from_ngsi_ld(entity | {"pm25": {"type": "Property", "value": 12.5}}).pm25 == 12.5


def _snake(name: str) -> str:
    fields = {**AirQualityObserved.model_fields, **WaterQualityObserved.model_fields}
    fields |= TrafficFlowObserved.model_fields
    return next(field for field, info in fields.items() if name in (field, info.alias))


@pytest.mark.parametrize("when", [0, 1700000000.5, "1700000000", "-1"])
def test_event_time_is_iso_8601_never_a_number_of_seconds(when):
    reason = rejection(AirQualityObserved, BASE[AirQualityObserved] | {"dateObserved": when})
    assert reason.startswith("dateObserved=") and "ISO 8601" in reason, reason
