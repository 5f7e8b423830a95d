"""What every feed event shares: sensor id, event time, ingest time and a schema version.

Validated with ``context={"city": city}``, the sensor id must be one of the city registry's sensors of
this feed, or say explicitly that it is not: ``unregistered:<id>``.

Field names on the wire follow the FIWARE Smart Data Models (camelCase: ``dateObserved``,
``relativeHumidity``); Python code uses snake_case.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, NamedTuple

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from ioc.city import UNREGISTERED_PREFIX, City
from ioc.models.time_range import out_of_range

SCHEMA_VERSION = 1


def _not_text_nor_boolean(value: object) -> object:
    """A count's JSON value must be a number: pydantic's lax mode would read "12" and true as 12 and 1."""
    if isinstance(value, str | bool):
        kind = "a string" if isinstance(value, str) else "a boolean"
        raise PydanticCustomError("number_type", "Input should be a number, not {kind}", {"kind": kind})
    return value


# A measured value is a JSON number, strictly: "12.5" or true is a client's bug, not a reading (lax mode
# stored them as 12.5 and 1.0). Strict is checked in pydantic's core, at no cost on the worker's hot path;
# an integer is still a valid float. Text sources (CSV) convert their cells first: ``numbers_of``.
Measure = Annotated[float, Strict()]
# A count: a JSON number that is a whole one (12.0 is 12), never text nor a boolean.
Count = Annotated[int, BeforeValidator(_not_text_nor_boolean)]


def _not_a_number(value: object) -> object:
    """An instant is ISO 8601 text (or a datetime), as the OpenAPI says (format date-time): pydantic would
    also read a number, or a string of digits, as seconds since 1970, so ``"dateObserved": 0`` was a
    reading of 1970-01-01 and ``until=0.5`` its first second."""
    if isinstance(value, int | float) or isinstance(value, str) and _digits(value):
        raise PydanticCustomError("datetime_type", "Input should be an ISO 8601 date-time with its offset")
    return value


def _digits(text: str) -> bool:
    """Whether the text is a plain number (cheap: it runs for every event the worker reads)."""
    return text.lstrip("+-").replace(".", "", 1).isdigit()


# A date-time with its UTC offset, written in ISO 8601 (never a number of seconds).
Instant = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]
# A date-time in ISO 8601 whose offset may be left out (NGSI-LD's: then it is UTC), never a number.
IsoDateTime = Annotated[datetime, BeforeValidator(_not_a_number)]


def _within_event_times(moment: datetime) -> datetime:
    """Refused here, as a value of the item: near year 1 or 9999 an event time overflows the first time
    something moves it to UTC (the edge's dedup key, windows, detectors), a 500 or a worker crash."""
    reason = out_of_range(moment)
    if reason is not None:
        raise PydanticCustomError("datetime_range", reason)
    return moment


# An event time: an Instant between 1970 and 9999 (``ioc.models.time_range``).
EventTime = Annotated[Instant, AfterValidator(_within_event_times)]


def with_article(word: str) -> str:
    """``a traffic``, ``an air``: the article by the word's first letter (the feed names are plain
    English words, so its spelling is enough; "is a air sensor" read as a bug)."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


class FieldUnit(NamedTuple):
    """A measured field of a feed and the unit it is expressed in."""

    field: str
    unit: str


class Event(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    feed: ClassVar[str]
    # The numeric fields an event-time window aggregates, with their units.
    measures: ClassVar[tuple[FieldUnit, ...]] = ()
    # Fields beyond the sensor and the event time that tell two readings apart when there is no eventId
    # (a traffic detector's lane): the edge's and the worker's duplicate checks read them.
    identity_fields: ClassVar[tuple[str, ...]] = ()

    schema_version: int = Field(SCHEMA_VERSION, ge=1, le=SCHEMA_VERSION)
    sensor_id: str = Field(min_length=1, max_length=128, description="Registry id of the sensor.")
    date_observed: EventTime = Field(description="Event time, from the sensor, with its offset.")
    ingest_time: AwareDatetime | None = Field(None, description="When ioc accepted the event.")
    event_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="The event's id at the source (optional); a repeat within the dedup horizon is dropped.",
    )

    @field_validator("sensor_id")
    @classmethod
    def _known_to_the_registry(cls, sensor_id: str, info: ValidationInfo) -> str:
        city: City | None = (info.context or {}).get("city")
        if city is None or sensor_id.startswith(UNREGISTERED_PREFIX):
            return sensor_id
        sensor = city.sensor(sensor_id)
        if sensor is None:
            raise ValueError(
                f"is not in the {city.city_en} registry; register it, or send it as "
                f"'{UNREGISTERED_PREFIX}{sensor_id}'"
            )
        if sensor.kind != cls.feed:
            raise ValueError(
                f"is {with_article(sensor.kind)} sensor in the registry, not {with_article(cls.feed)} one"
            )
        return sensor_id

    @property
    def event_time(self) -> datetime:
        return self.date_observed

    def measured_values(self) -> dict[str, float]:
        """The aggregatable fields that this event carries (missing ones are left out)."""
        return {m.field: value for m in self.measures if (value := getattr(self, m.field)) is not None}

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()

    @classmethod
    def measure_names(cls) -> frozenset[str]:
        """The wire names of the measured fields."""
        return frozenset(cls.model_fields[m.field].alias or m.field for m in cls.measures)


def numbers_of(model: type[Event], fields: dict[str, object]) -> dict[str, object]:
    """A text row's measures as numbers (a CSV cell is text whatever it holds); a cell that is not a
    number is left as it is, for the model to reject with its reason."""
    return {
        name: _number(value) if name in model.measure_names() else value for name, value in fields.items()
    }


def _number(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return float(value)
    except ValueError:
        return value
