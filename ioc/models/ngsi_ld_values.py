"""One attribute of an NGSI-LD (or NGSI v2) entity as a plain value: its forms, instances, units, times.

Pure functions for ``ioc.models.ngsi_ld``; what each form means and what ioc makes of it:

- **Property / GeoProperty** ``{"type": "Property", "value": …}`` → the value, with its ``unitCode`` and
  ``observedAt``. **Relationship** ``{"type": "Relationship", "object": …}`` → the object. NGSI v2's
  ``{"type": "Number", "value": …, "metadata": {"unitCode": {"value": …}}}`` (what the Smart Data
  Models' ``example-normalized.json`` files hold) reads the same way. Anything else is a keyValues value.
- **Typed literals** ``{"@type": "DateTime", "@value": …}`` (any ``@type``) → the ``@value``.
- **Multi-instance attributes** (a list of instances, each with its ``datasetId``): the default
  instance (the one without ``datasetId``) is read, else the first one listed. ioc keeps one value per
  measure and reading; the default instance is the one NGSI-LD's own queries return without a datasetId.
- **Date-times** without an offset are UTC (NGSI-LD's rule for DateTime); an ISO 8601 interval
  ``start/end`` (Smart Data Models' ``dateObserved``) is split in two.
- **Units**: a measure with a ``unitCode`` is converted to the unit ioc keeps it in; one without is in
  the Smart Data Models' unit, which is ioc's but for ``relativeHumidity`` (a fraction, 0–1) and
  water ``conductivity`` (S/m). A gas (co, no2, o3, so2) in ppm (``59``) or ppb (``61``) becomes µg/m³ at
  25 °C and 1 atm (µg/m³ = ppb × M / 24.45). A unit code ioc cannot convert is a problem naming the
  attribute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ioc.indices.air import MOLAR_MASS_G_MOL, MOLAR_VOLUME_25C_L

NORMALIZED_TYPES = frozenset({"Property", "GeoProperty", "LanguageProperty"})


@dataclass(frozen=True)
class AttributeValue:
    """An attribute read from either form: its bare value and, when given, unit code and observation time."""

    value: Any
    unit_code: str | None = None
    observed_at: Any = None


class ValueFormError(ValueError):
    """An attribute's value cannot be read as ioc needs it; ``reason`` says why, ``value`` what it was."""

    def __init__(self, reason: str, value: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.value = value


def read_attribute(raw: Any) -> AttributeValue:
    """An attribute in any form (normalized NGSI-LD or v2, keyValues, multi-instance) as its value."""
    raw = pick_instance(raw)
    if not isinstance(raw, dict):
        return AttributeValue(raw)
    if raw.get("type") == "Relationship" and "object" in raw:
        return AttributeValue(raw["object"], observed_at=raw.get("observedAt"))
    if "value" in raw and isinstance(raw.get("type"), str):
        return AttributeValue(typed_literal(raw["value"]), _unit_code(raw), raw.get("observedAt"))
    return AttributeValue(typed_literal(raw))


def pick_instance(raw: Any) -> Any:
    """Of a multi-instance attribute, the default instance (no ``datasetId``), else the first listed; any
    other value as it is (a keyValues list such as ``measurand`` is a value, not instances)."""
    if not isinstance(raw, list) or not raw or not all(_is_instance(item) for item in raw):
        return raw
    return next((item for item in raw if "datasetId" not in item), raw[0])


def _is_instance(item: Any) -> bool:
    return isinstance(item, dict) and ("value" in item or "object" in item) and "type" in item


def typed_literal(value: Any) -> Any:
    """A JSON-LD typed literal's ``@value`` (``{"@type": "DateTime", "@value": …}``); else the value."""
    if isinstance(value, dict) and "@type" in value and "@value" in value:
        return value["@value"]
    return value


def _unit_code(attribute: dict[str, Any]) -> str | None:
    """NGSI-LD's ``unitCode``, or NGSI v2's ``metadata.unitCode.value``."""
    code = attribute.get("unitCode")
    metadata = attribute.get("metadata")
    if code is None and isinstance(metadata, dict) and isinstance(metadata.get("unitCode"), dict):
        code = metadata["unitCode"].get("value")
    return code if isinstance(code, str) else None


# ---------------------------------------------------------------------------------------------------
# Date-times.


def utc_if_naive(value: Any) -> Any:
    """A date-time text without an offset with ``Z`` added (NGSI-LD: such a DateTime is UTC); anything
    else unchanged, for the model to judge."""
    if not isinstance(value, str) or "T" not in value:
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return value + "Z" if moment.tzinfo is None else value


def split_interval(value: Any) -> tuple[Any, Any] | None:
    """An ISO 8601 interval ``start/end`` as its two ends; None when the value is not one."""
    if not isinstance(value, str) or value.count("/") != 1:
        return None
    start, end = value.split("/")
    if start.startswith("P") or end.startswith("P"):
        raise ValueFormError("an interval is read as start/end date-times, not with a duration", value)
    return start, end


# ---------------------------------------------------------------------------------------------------
# Units: UN/CEFACT common codes → the unit ioc keeps a measure in.


def _scale(factor: float) -> Callable[[float], float]:
    return lambda x: x * factor


_SAME: Callable[[float], float] = _scale(1)
CONVERSIONS: dict[str, dict[str, Callable[[float], float]]] = {
    "µg/m³": {"GQ": _SAME, "GP": _scale(1000)},  # µg/m³, mg/m³
    "°C": {"CEL": _SAME, "KEL": lambda k: k - 273.15, "FAH": lambda f: (f - 32) * 5 / 9},
    "%": {"P1": _SAME, "C62": _scale(100)},  # percent, a fraction ("one")
    "1": {"C62": _SAME, "P1": _scale(0.01)},
    "km/h": {"KMH": _SAME, "MTS": _scale(3.6)},  # km/h, m/s
    "mg/L": {"M1": _SAME, "GL": _scale(1000)},  # mg/L, g/L
    "pH": {"Q30": _SAME},
    "µS/cm": {"G42": _SAME, "D10": _scale(10_000), "H61": _scale(1000)},  # µS/cm, S/m, mS/cm
    "veh": {"C62": _SAME},
    "veh/h": {"E50": _SAME},  # E50: "per hour" with a count; some agents send it for a flow
}
# Without a unitCode a value is in the Smart Data Models' unit: ioc's own, but for these.
SDM_DEFAULT_CODES = {"relativeHumidity": "C62", "conductivity": "D10"}


# A gas's ppb (61) or ppm (59) → µg/m³ at 25 °C and 1 atm: µg/m³ = ppb × M / 24.45, the reference conditions
# of ioc's indices (ioc.indices.air) and of the conversions low-cost gas sensors and IoT Agents report in.
PARTS_PER_BILLION = {"61": 1.0, "59": 1000.0}


def in_unit(name: str, value: Any, unit_code: str | None, unit: str) -> Any:
    """``value`` of measure ``name`` in ``unit``, converted from its ``unit_code`` (or the Smart Data
    Models' default for the attribute); a value that is not a number is left for the model to reject.
    A gas (co, no2, o3, so2) in ppm or ppb becomes µg/m³ by its molar mass."""
    code = unit_code or SDM_DEFAULT_CODES.get(name)
    if code is None or not isinstance(value, int | float) or isinstance(value, bool):
        return value
    if unit == "µg/m³" and code in PARTS_PER_BILLION:
        return _gas_in_ug_m3(name, value, code)
    known = CONVERSIONS.get(unit, {})
    if code not in known:
        codes = ", ".join(known) or "none"
        gases = ", and 59 (ppm), 61 (ppb) for a gas" if unit == "µg/m³" else ""
        raise ValueFormError(
            f"unitCode {code!r} is not one ioc converts to {unit} (known: {codes}{gases})", value
        )
    return known[code](value)


def _gas_in_ug_m3(name: str, value: float, code: str) -> float:
    molar_mass = MOLAR_MASS_G_MOL.get(name)
    if molar_mass is None:
        gases = ", ".join(sorted(MOLAR_MASS_G_MOL))
        raise ValueFormError(
            f"unitCode {code!r} (parts per {'million' if code == '59' else 'billion'}) is for a gas "
            f"({gases}); {name} is not one",
            value,
        )
    return value * PARTS_PER_BILLION[code] * molar_mass / MOLAR_VOLUME_25C_L


def in_sdm_default_unit(name: str, value: Any, unit: str) -> Any:
    """A measure in ioc's ``unit`` as a keyValues entity gives it: in the Smart Data Models' unit (the
    inverse of ``in_unit`` without a unitCode)."""
    code = SDM_DEFAULT_CODES.get(name)
    if code is None or not isinstance(value, int | float) or isinstance(value, bool):
        return value
    return value / CONVERSIONS[unit][code](1.0)
