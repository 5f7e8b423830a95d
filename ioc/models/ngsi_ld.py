"""NGSI-LD entities ⇄ feed events, for what a context broker (Orion-LD, Scorpio) sends and receives.

Both forms are supported. *Normalized*: every attribute is ``{"type": "Property", "value": …}``
(measures add ``observedAt`` in UTC and a UN/CEFACT ``unitCode`` where one exists; date-times are
``{"@type": "DateTime", "@value": …}``; ``refRoadSegment`` is a Relationship). *keyValues*: every
attribute is its bare value. ``from_ngsi_ld`` reads either, attribute by attribute, from its shape.

Each feed says whether and how its events are entities (``Feed.ngsi_ld``, an ``ioc.feeds.NgsiLdEntity``):
the type is its model's class name. The entity id is ``urn:ngsi-ld:<type>:<sensorId>``. ``dateObserved``
keeps the sensor's own offset, so event → entity → event is exact. Counts' intervals (traffic's, crowd's)
go out as FIWARE's ``dateObservedFrom`` and ``dateObservedTo``; coming in, those (or an ISO 8601
interval in ``dateObserved``) give ``dateObserved`` and the feed's interval length field
(``intervalSeconds``; air: ``averagingPeriod``) when they are absent.

Coming in, entities are read as the Smart Data Models publish them (issue 18):

- **Forms**: NGSI-LD normalized and keyValues, and NGSI v2's normalized form too; typed literals,
  multi-instance attributes, units and date-times as ``ioc.models.ngsi_ld_values`` says.
- **Ids**: with the city registry, the entity id (whole, or after ``urn:ngsi-ld:<type>:``) or its
  ``refDevice`` may be one of a sensor's ``external_ids``; else ``urn:ngsi-ld:<type>:<sensorId>``, where
  a sensor outside the registry is ``unregistered:<id>`` as on every other way in.
- **Kept**: the model's fields (measures converted to ioc's units), FIWARE's interval ends, and the
  Smart Data Models' names of ioc's water measures (``NO3``, ``NH4``, ``PO4`` converted to N and P).
  **Ignored**: descriptive attributes (location, name, address, createdAt …; the registry has them).
  **Dropped and counted**: every other attribute (``airQualityLevel``, ``windSpeed``, ``measurand``,
  metals …). A raw topic carries the feed model and nothing else (the worker, replay and the DLQ tools
  read it), and the broker that sent the entity stays its system of record; ``read_entity`` names the
  dropped ones and the ingest result counts them. A measure ioc keeps that is unreadable still rejects
  the entity, naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, TypeAdapter, ValidationError

from ioc.city import UNREGISTERED_PREFIX, City
from ioc.feeds import REGISTRY, NgsiLdEntity
from ioc.models.base import Event
from ioc.models.ngsi_ld_values import (
    AttributeValue,
    ValueFormError,
    in_sdm_default_unit,
    in_unit,
    read_attribute,
    split_interval,
    utc_if_naive,
)

CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
_SDM = "https://raw.githubusercontent.com/smart-data-models"
# How each feed's events are NGSI-LD entities, by entity type (its model's class name), in feed order.
_ENTITIES: dict[str, NgsiLdEntity] = {
    feed.model.__name__: feed.ngsi_ld for feed in REGISTRY.values() if feed.ngsi_ld is not None
}
CONTEXTS: dict[str, list[str]] = {
    name: [f"{_SDM}/{entity.data_model}/master/context.jsonld", CORE_CONTEXT]
    for name, entity in _ENTITIES.items()
}
ENTITY_MODELS: dict[str, type[Event]] = {
    feed.model.__name__: feed.model for feed in REGISTRY.values() if feed.ngsi_ld is not None
}
# UN/CEFACT common codes for the units we use; units without one (veh/h, NTU, MPN, persons) go without.
UNIT_CODES = {"µg/m³": "GQ", "°C": "CEL", "%": "P1", "km/h": "KMH", "mg/L": "M1", "µS/cm": "G42", "1": "C62"}
DATETIME_ATTRIBUTES = frozenset({"dateObserved", "ingestTime", "dateObservedFrom", "dateObservedTo"})
# Relationship attributes and the entity type they point to.
RELATIONSHIPS = {"refRoadSegment": "RoadSegment"}
IGNORED_ATTRIBUTES = frozenset(
    {
        "@context", "id", "type", "location", "observationSpace", "operationSpace", "createdAt",
        "modifiedAt", "name", "alternateName", "description", "address", "areaServed", "dataProvider",
        "source", "seeAlso", "owner", "refDevice", "refPointOfInterest",
    }
)  # fmt: skip

# Smart Data Models' names for measures ioc keeps under its own, per entity type: name → (ioc's name,
# factor), as each feed declares them (water's nutrients).
SDM_MEASURES: dict[str, dict[str, tuple[str, float]]] = {
    name: dict(entity.sdm_measures) for name, entity in _ENTITIES.items() if entity.sdm_measures
}
# The field an observation interval's length goes to, per entity type.
INTERVAL_LENGTHS: dict[str, str] = {
    name: entity.interval_length for name, entity in _ENTITIES.items() if entity.interval_length
}
# The entity types whose events are counts over an interval: out as FIWARE's dateObservedFrom/To.
COUNTS_OVER_INTERVAL = frozenset(name for name, entity in _ENTITIES.items() if entity.counts_over_interval)
DEVICE_PREFIX = "urn:ngsi-ld:Device:"

_DATETIME = TypeAdapter(AwareDatetime)


_NO_VALUE = object()


class NgsiLdError(ValueError):
    """The entity's envelope (type, id, shape) is not one ioc reads; the message says why.

    When one attribute is at fault it is kept apart (``attribute``, ``value``, ``reason``): a value's
    repr holds ``": "`` itself (``{'type': 'DateTime', …}``), so the message cannot be split back."""

    def __init__(self, message: str, attribute: str | None = None, value: Any = _NO_VALUE) -> None:
        super().__init__(f"{attribute}={value!r}: {message}" if attribute else message)
        self.attribute = attribute
        self.value = value
        self.reason = message

    @property
    def has_value(self) -> bool:
        return self.value is not _NO_VALUE


def entity_id(entity_type: str, sensor_id: str) -> str:
    return f"urn:ngsi-ld:{entity_type}:{sensor_id}"


def to_ngsi_ld(event: Event, *, key_values: bool = False) -> dict[str, Any]:
    """The event as an NGSI-LD entity, normalized unless ``key_values``."""
    entity_type = type(event).__name__
    if entity_type not in ENTITY_MODELS:
        raise NgsiLdError(f"no NGSI-LD form for {entity_type}; supported: {', '.join(ENTITY_MODELS)}")
    attributes = _plain_attributes(event)
    if key_values:  # no unitCode to say otherwise: values in the Smart Data Models' units
        units = {_wire_name(type(event), m.field): m.unit for m in event.measures}
        attributes = {
            name: in_sdm_default_unit(name, value, units[name]) if name in units else value
            for name, value in attributes.items()
        }
    else:
        attributes = _normalized(event, attributes)
    return {
        "id": entity_id(entity_type, event.sensor_id),
        "type": entity_type,
        **attributes,
        "@context": CONTEXTS[entity_type],
    }


def from_ngsi_ld(entity: dict[str, Any], city: City | None = None) -> Event:
    """The event an NGSI-LD entity (normalized or keyValues) describes; raises on anything invalid."""
    reading = read_entity(entity, city)
    return reading.model.model_validate(reading.attributes)


def entity_attributes(entity: dict[str, Any]) -> tuple[type[Event], dict[str, Any]]:
    """``read_entity``'s model and attributes, for callers without a city registry."""
    reading = read_entity(entity)
    return reading.model, reading.attributes


@dataclass(frozen=True)
class EntityReading:
    """What ioc reads of an entity: the feed model its type names, the attributes ioc keeps (wire JSON,
    not yet validated) and the names of those it dropped (neither kept nor a descriptive one)."""

    model: type[Event]
    attributes: dict[str, Any]
    dropped: tuple[str, ...]


def read_entity(entity: dict[str, Any], city: City | None = None) -> EntityReading:
    """The attributes ioc keeps of an entity in any form (NGSI-LD or v2, normalized or keyValues).

    For callers that add to the event before validating it (the ingest edge stamps ``ingestTime`` and
    validates against the city registry). With ``city``, the entity id or ``refDevice`` may name a sensor
    by one of its ``external_ids``. Raises ``NgsiLdError`` on an envelope or a value ioc does not read.
    """
    if not isinstance(entity, dict):
        raise NgsiLdError(f"an NGSI-LD entity is a JSON object, not {type(entity).__name__}")
    entity_type = entity.get("type")
    model = ENTITY_MODELS.get(entity_type) if isinstance(entity_type, str) else None
    if model is None:
        raise NgsiLdError(
            f"unsupported entity type, expected one of {', '.join(ENTITY_MODELS)}", "type", entity_type
        )
    kept, dropped, observed_at = {}, [], []
    known = _kept_names(model)
    for name, raw in entity.items():
        if name in IGNORED_ATTRIBUTES:
            continue
        if name not in known:
            dropped.append(name)
            continue
        value = read_attribute(raw)
        if value.observed_at is not None:
            observed_at.append(value.observed_at)
        kept[name] = _relationship_target(name, value)
    attributes, superseded = _measures_in_ioc_units(model, kept)
    attributes = _event_times(model, attributes, observed_at)
    sensor_id = _sensor_id(entity_type, entity.get("id"), entity.get("refDevice"), city)
    return EntityReading(model, {"sensorId": sensor_id, **attributes}, tuple(dropped + superseded))


def _kept_names(model: type[Event]) -> frozenset[str]:
    """The attribute names ioc keeps for ``model``: its wire fields, FIWARE's interval ends and the Smart
    Data Models' names of its measures."""
    fields = {field.alias or name for name, field in model.model_fields.items()} - {"sensorId"}
    return frozenset(fields | DATETIME_ATTRIBUTES | set(SDM_MEASURES.get(model.__name__, {})))


def _relationship_target(name: str, value: AttributeValue) -> AttributeValue:
    prefix = entity_id(RELATIONSHIPS[name], "") if name in RELATIONSHIPS else None
    if prefix and isinstance(value.value, str) and value.value.startswith(prefix):
        return replace(value, value=value.value.removeprefix(prefix))
    return value


def _measures_in_ioc_units(
    model: type[Event], kept: dict[str, AttributeValue]
) -> tuple[dict[str, Any], list[str]]:
    """Bare values, measures converted to ioc's units and Smart Data Models' names to ioc's; also the SDM
    names that ioc's own name superseded (both given: ioc's wins)."""
    units = {_wire_name(model, m.field): m.unit for m in model.measures}
    aliases = SDM_MEASURES.get(model.__name__, {})
    attributes: dict[str, Any] = {}
    for name, value in kept.items():
        if name in aliases:
            continue
        attributes[name] = _in_unit(name, value, units.get(name))
    superseded = []
    for name, (target, factor) in aliases.items():
        if name not in kept:
            continue
        if target in attributes:
            superseded.append(name)
            continue
        number = _in_unit(name, kept[name], units[target])
        attributes[target] = number * factor if _is_number(number) else number
    return attributes, superseded


def _in_unit(name: str, value: AttributeValue, unit: str | None) -> Any:
    if unit is None:
        return value.value
    try:
        return in_unit(name, value.value, value.unit_code, unit)
    except ValueFormError as error:
        raise NgsiLdError(error.reason, name, error.value) from None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _event_times(model: type[Event], attributes: dict[str, Any], observed_at: list[Any]) -> dict[str, Any]:
    """Date-times as NGSI-LD reads them (no offset: UTC), an interval's ends as dateObserved (and the
    interval's length where the model has one) and, without any dateObserved, the latest observedAt."""
    attributes = {
        name: utc_if_naive(value) if name in DATETIME_ATTRIBUTES else value
        for name, value in attributes.items()
    }
    try:
        interval = split_interval(attributes.get("dateObserved"))
    except ValueFormError as error:
        raise NgsiLdError(error.reason, "dateObserved", error.value) from None
    if interval is not None:
        start, end = (utc_if_naive(end) for end in interval)
        attributes["dateObserved"] = start
        attributes.setdefault("dateObservedFrom", start)
        attributes.setdefault("dateObservedTo", end)
    attributes = _interval(model, attributes)
    if "dateObserved" not in attributes and observed_at:
        attributes["dateObserved"] = _latest(observed_at)
    return attributes


def _latest(moments: list[Any]) -> Any:
    """The latest of the observedAt values that read as date-times (the first one if none does, for the
    model to reject with its reason)."""
    readable = []
    for moment in moments:
        try:
            readable.append((_DATETIME.validate_python(utc_if_naive(moment)), moment))
        except ValidationError:
            continue
    return utc_if_naive(max(readable)[1] if readable else moments[0])


def _plain_attributes(event: Event) -> dict[str, Any]:
    """keyValues attributes: the wire JSON without the sensor id (it is in the entity id)."""
    attributes = event.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"sensor_id"})
    if type(event).__name__ in COUNTS_OVER_INTERVAL:
        del attributes["intervalSeconds"]
        end = event.date_observed + timedelta(seconds=event.interval_seconds)  # type: ignore[attr-defined]
        attributes["dateObservedFrom"] = attributes["dateObserved"]
        attributes["dateObservedTo"] = _DATETIME.dump_python(end, mode="json")
    for name, target_type in RELATIONSHIPS.items():
        if name in attributes:
            attributes[name] = entity_id(target_type, attributes[name])
    return attributes


def _normalized(event: Event, attributes: dict[str, Any]) -> dict[str, Any]:
    observed_at = _utc(event.date_observed)
    units = {_wire_name(type(event), m.field): m.unit for m in event.measures}
    normalized = {}
    for name, value in attributes.items():
        if name in RELATIONSHIPS:
            normalized[name] = {"type": "Relationship", "object": value}
        elif name in DATETIME_ATTRIBUTES:
            normalized[name] = {"type": "Property", "value": {"@type": "DateTime", "@value": value}}
        elif name in units:
            normalized[name] = _measure(value, observed_at, units[name])
        else:
            normalized[name] = {"type": "Property", "value": value}
    return normalized


def _measure(value: Any, observed_at: str, unit: str) -> dict[str, Any]:
    prop = {"type": "Property", "value": value, "observedAt": observed_at}
    if unit in UNIT_CODES:
        prop["unitCode"] = UNIT_CODES[unit]
    return prop


def _sensor_id(entity_type: str, ident: Any, ref_device: Any, city: City | None) -> str:
    """The registry sensor an entity is about: ``urn:ngsi-ld:<type>:<sensor id>`` of a registry sensor
    (or ``unregistered:<id>``), else its id or its refDevice among the sensors' external ids, else the
    id's tail, for the model to refuse with the registry's reason."""
    prefix = entity_id(entity_type, "")
    own = ident.removeprefix(prefix) if isinstance(ident, str) and ident.startswith(prefix) else None
    # ioc's own form first: a registry sensor's URN is that sensor, whatever its refDevice says.
    if city is not None and not (own and (city.sensor(own) or own.startswith(UNREGISTERED_PREFIX))):
        for candidate in (ident, *_devices(ref_device)):
            sensor = _known_as(city, candidate, prefix)
            if sensor is not None:
                return sensor
    if not own:
        raise NgsiLdError(
            f"expected {prefix}<sensor id>, or an id in a registry sensor's external_ids", "id", ident
        )
    return own


def sensor_named(city: City, entity_type: str, ident: str) -> str | None:
    """The sensor id an entity id names, as an entity of ``entity_type`` is read (``_sensor_id``, without
    a refDevice); None when it names none of the registry's nor an ``unregistered:`` one."""
    try:
        sensor_id = _sensor_id(entity_type, ident, None, city)
    except NgsiLdError:
        return None
    return sensor_id if city.sensor(sensor_id) or sensor_id.startswith(UNREGISTERED_PREFIX) else None


def _devices(ref_device: Any) -> list[Any]:
    target = read_attribute(ref_device).value if ref_device is not None else None
    return target if isinstance(target, list) else [target]


def _known_as(city: City, candidate: Any, prefix: str) -> str | None:
    if not isinstance(candidate, str):
        return None
    tail = candidate.removeprefix(prefix)
    sensor = city.sensor_known_as(candidate) or city.sensor_known_as(tail)
    if sensor is None and candidate.startswith(DEVICE_PREFIX):
        sensor = city.sensor_known_as(candidate.removeprefix(DEVICE_PREFIX))
    return sensor.id if sensor else None


def _interval(model: type[Event], attributes: dict[str, Any]) -> dict[str, Any]:
    """FIWARE's dateObservedFrom/To → dateObserved and the interval's length: a traffic or crowd count's
    ``intervalSeconds``, an air reading's ``averagingPeriod`` (each only when absent)."""
    start, end = attributes.pop("dateObservedFrom", None), attributes.pop("dateObservedTo", None)
    if start is not None:
        attributes.setdefault("dateObserved", start)
    length = INTERVAL_LENGTHS.get(model.__name__)
    if start is not None and end is not None and length and length not in attributes:
        seconds = (
            _parse_time("dateObservedTo", end) - _parse_time("dateObservedFrom", start)
        ).total_seconds()
        attributes[length] = int(seconds) if seconds.is_integer() else seconds
    return attributes


def _parse_time(name: str, value: Any) -> datetime:
    try:
        return _DATETIME.validate_python(value)
    except ValidationError as error:
        problem = error.errors()[0]["msg"]
        raise NgsiLdError(problem, name, value) from None


def _wire_name(model: type[Event], field: str) -> str:
    return model.model_fields[field].alias or field


def _utc(moment: datetime) -> str:
    return _DATETIME.dump_python(moment.astimezone(UTC), mode="json")


def current_entity(
    entity_type: str,
    sensor_id: str,
    observed_at: datetime,
    values: dict[str, float],
    *,
    location: tuple[float, float] | None = None,
    name: str | None = None,
    key_values: bool = False,
) -> dict[str, Any]:
    """A sensor's current state as an NGSI-LD entity, without its ``@context``: ``values`` (model field →
    newest value, as the live picture keeps them) observed at ``observed_at``, its registry location
    (lat, lon) and name. Normalized unless ``key_values`` (then in the Smart Data Models' units)."""
    model = ENTITY_MODELS[entity_type]
    units = {m.field: m.unit for m in model.measures}
    at = _utc(observed_at)
    entity: dict[str, Any] = {"id": entity_id(entity_type, sensor_id), "type": entity_type}
    entity["dateObserved"] = (
        at if key_values else {"type": "Property", "value": {"@type": "DateTime", "@value": at}}
    )
    for field, value in sorted(values.items()):
        if field not in units:
            continue
        wire = _wire_name(model, field)
        if key_values:
            entity[wire] = in_sdm_default_unit(wire, value, units[field])
        else:
            entity[wire] = _measure(value, at, units[field])
    if location is not None:
        point = {"type": "Point", "coordinates": [location[1], location[0]]}
        entity["location"] = point if key_values else {"type": "GeoProperty", "value": point}
    if name is not None:
        entity["name"] = name if key_values else {"type": "Property", "value": name}
    return entity


def temporal_entity(
    entity_type: str,
    sensor_id: str,
    series: dict[str, list[tuple[datetime, float]]],
    *,
    temporal_values: bool = False,
) -> dict[str, Any]:
    """A sensor's measures over time as an NGSI-LD temporal entity, without its ``@context``: ``series``
    (model field → (time, value) oldest first, as the history keeps them). Each measure an array of
    Property instances with ``observedAt`` and ``unitCode``; with ``temporal_values``, NGSI-LD's
    simplified ``{"type": "Property", "values": [[value, time], …]}`` in the Smart Data Models' units."""
    model = ENTITY_MODELS[entity_type]
    units = {m.field: m.unit for m in model.measures}
    entity: dict[str, Any] = {"id": entity_id(entity_type, sensor_id), "type": entity_type}
    for field, points in sorted(series.items()):
        if field not in units or not points:
            continue
        wire = _wire_name(model, field)
        if temporal_values:
            values = [[in_sdm_default_unit(wire, value, units[field]), _utc(at)] for at, value in points]
            entity[wire] = {"type": "Property", "values": values}
        else:
            entity[wire] = [_measure(value, _utc(at), units[field]) for at, value in points]
    return entity
