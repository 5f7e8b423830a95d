"""NGSI-LD entities ⇄ feed events, for what a context broker (Orion-LD, Scorpio) sends and receives.

Both forms are supported. *Normalized*: every attribute is ``{"type": "Property", "value": …}``
(measures add ``observedAt`` in UTC and a UN/CEFACT ``unitCode`` where one exists; date-times are
``{"@type": "DateTime", "@value": …}``; ``refRoadSegment`` is a Relationship). *keyValues*: every
attribute is its bare value. ``from_ngsi_ld`` reads either, attribute by attribute, from its shape.

The entity id is ``urn:ngsi-ld:<type>:<sensorId>``. ``dateObserved`` keeps the sensor's own offset, so
event → entity → event is exact. Traffic intervals go out as FIWARE's ``dateObservedFrom`` and
``dateObservedTo``; coming in, those give ``dateObserved`` and ``intervalSeconds`` when they are absent.
Descriptive attributes a broker adds (location, name, address, createdAt …) are ignored on the way in;
any other unknown attribute is rejected by the model, so nothing is dropped silently.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, TypeAdapter, ValidationError

from ioc.models.air import AirQualityObserved
from ioc.models.base import Event
from ioc.models.traffic import TrafficFlowObserved
from ioc.models.water import WaterQualityObserved

CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
_SDM = "https://raw.githubusercontent.com/smart-data-models"
CONTEXTS: dict[str, list[str]] = {
    "AirQualityObserved": [f"{_SDM}/dataModel.Environment/master/context.jsonld", CORE_CONTEXT],
    "WaterQualityObserved": [f"{_SDM}/dataModel.WaterQuality/master/context.jsonld", CORE_CONTEXT],
    "TrafficFlowObserved": [f"{_SDM}/dataModel.Transportation/master/context.jsonld", CORE_CONTEXT],
}
ENTITY_MODELS: dict[str, type[Event]] = {
    model.__name__: model for model in (AirQualityObserved, WaterQualityObserved, TrafficFlowObserved)
}
# UN/CEFACT common codes for the units we use; units without one (veh/h, NTU, MPN) go without.
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
    if not key_values:
        attributes = _normalized(event, attributes)
    return {
        "id": entity_id(entity_type, event.sensor_id),
        "type": entity_type,
        **attributes,
        "@context": CONTEXTS[entity_type],
    }


def from_ngsi_ld(entity: dict[str, Any]) -> Event:
    """The event an NGSI-LD entity (normalized or keyValues) describes; raises on anything invalid."""
    model, attributes = entity_attributes(entity)
    return model.model_validate(attributes)


def entity_attributes(entity: dict[str, Any]) -> tuple[type[Event], dict[str, Any]]:
    """The feed model an entity's type names and its attributes as wire JSON, not yet validated.

    For callers that add to the event before validating it (the ingest edge stamps ``ingestTime`` and
    validates against the city registry). Raises ``NgsiLdError`` on an envelope ioc does not read.
    """
    if not isinstance(entity, dict):
        raise NgsiLdError(f"an NGSI-LD entity is a JSON object, not {type(entity).__name__}")
    entity_type = entity.get("type")
    model = ENTITY_MODELS.get(entity_type) if isinstance(entity_type, str) else None
    if model is None:
        raise NgsiLdError(
            f"unsupported entity type, expected one of {', '.join(ENTITY_MODELS)}", "type", entity_type
        )
    attributes = {
        name: _relationship_target(name, _bare_value(value))
        for name, value in entity.items()
        if name not in IGNORED_ATTRIBUTES
    }
    if model is TrafficFlowObserved:
        attributes = _traffic_interval(attributes)
    return model, {"sensorId": _sensor_id(entity_type, entity.get("id")), **attributes}


def _plain_attributes(event: Event) -> dict[str, Any]:
    """keyValues attributes: the wire JSON without the sensor id (it is in the entity id)."""
    attributes = event.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"sensor_id"})
    if isinstance(event, TrafficFlowObserved):
        del attributes["intervalSeconds"]
        attributes["dateObservedFrom"] = attributes["dateObserved"]
        attributes["dateObservedTo"] = _DATETIME.dump_python(event.interval_end, mode="json")
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


def _bare_value(value: Any) -> Any:
    """An attribute's value in either form: unwraps Property, Relationship and DateTime objects."""
    if isinstance(value, dict) and value.get("type") == "Property":
        value = value.get("value")
    elif isinstance(value, dict) and value.get("type") == "Relationship":
        value = value.get("object")
    if isinstance(value, dict) and value.get("@type") == "DateTime":
        value = value.get("@value")
    return value


def _relationship_target(name: str, value: Any) -> Any:
    prefix = entity_id(RELATIONSHIPS[name], "") if name in RELATIONSHIPS else None
    if prefix and isinstance(value, str) and value.startswith(prefix):
        return value.removeprefix(prefix)
    return value


def _sensor_id(entity_type: str, ident: Any) -> str:
    prefix = entity_id(entity_type, "")
    if not isinstance(ident, str) or not ident.startswith(prefix) or ident == prefix:
        raise NgsiLdError(f"expected {prefix}<sensor id>", "id", ident)
    return ident.removeprefix(prefix)


def _traffic_interval(attributes: dict[str, Any]) -> dict[str, Any]:
    """FIWARE's dateObservedFrom/To → dateObserved and intervalSeconds (when those are absent)."""
    start, end = attributes.pop("dateObservedFrom", None), attributes.pop("dateObservedTo", None)
    if start is not None:
        attributes.setdefault("dateObserved", start)
    if start is not None and end is not None and "intervalSeconds" not in attributes:
        seconds = (
            _parse_time("dateObservedTo", end) - _parse_time("dateObservedFrom", start)
        ).total_seconds()
        attributes["intervalSeconds"] = int(seconds) if seconds.is_integer() else seconds
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
