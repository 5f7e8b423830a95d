import json

import pytest
from pydantic import ValidationError

from ioc.feeds.air.model import AirQualityObserved
from ioc.models.dead_letter import describe_validation_error

VALID = {"sensorId": "air-kim-lien", "dateObserved": "2026-01-15T08:00:00+07:00", "pm25": 80.5, "no2": 41}


def test_wire_format_uses_fiware_names_and_round_trips():
    reading = AirQualityObserved.model_validate(VALID)
    wire = json.loads(reading.to_json())
    assert wire["sensorId"] == "air-kim-lien" and wire["dateObserved"] == "2026-01-15T08:00:00+07:00"
    assert wire["schemaVersion"] == 1
    assert AirQualityObserved.model_validate_json(reading.to_json()) == reading
    assert reading.measured_values() == {"pm25": 80.5, "no2": 41.0}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"dateObserved": "2026-01-15T08:00:00"}, "dateObserved"),  # no offset
        ({"pm25": -1}, "pm25"),
        ({"relativeHumidity": 130}, "relativeHumidity"),
        ({"sensorId": ""}, "sensorId"),
        ({"colour": "grey"}, "colour"),
    ],
)
def test_invalid_readings_name_the_field_and_value(change, field):
    with pytest.raises(ValidationError) as error:
        AirQualityObserved.model_validate(VALID | change)
    message = describe_validation_error(error.value)
    assert message.startswith(f"{field}=")
    assert json.dumps(next(iter(change.values())), ensure_ascii=False) in message


def test_with_the_city_the_sensor_must_be_registered_for_its_feed_or_say_it_is_not():
    from ioc.city import load_city

    city = {"city": load_city("hanoi")}
    assert AirQualityObserved.model_validate(VALID, context=city).sensor_id == "air-kim-lien"
    unregistered = VALID | {"sensorId": "unregistered:lowcost-42"}
    assert (
        AirQualityObserved.model_validate(unregistered, context=city).sensor_id == "unregistered:lowcost-42"
    )
    for sensor_id, reason in [
        ("air-nowhere", "not in the Hanoi registry"),
        ("traffic-nga-tu-so", "traffic sensor"),
    ]:
        with pytest.raises(ValidationError) as error:
            AirQualityObserved.model_validate(VALID | {"sensorId": sensor_id}, context=city)
        message = describe_validation_error(error.value)
        assert message.startswith(f'sensorId="{sensor_id}"') and reason in message
    assert AirQualityObserved.model_validate(VALID | {"sensorId": "air-nowhere"}).sensor_id == "air-nowhere"
