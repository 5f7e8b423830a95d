"""Feed models: one module per feed, each event a validated pydantic model."""

from ioc.models.air import AirQualityObserved
from ioc.models.base import SCHEMA_VERSION, Event, FieldUnit

MODELS: dict[str, type[Event]] = {"air": AirQualityObserved}

__all__ = ["MODELS", "SCHEMA_VERSION", "AirQualityObserved", "Event", "FieldUnit"]
