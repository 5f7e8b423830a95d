"""Feed models: one module per feed, each event a validated pydantic model."""

from ioc.models.air import AirQualityObserved
from ioc.models.base import SCHEMA_VERSION, Event, FieldUnit
from ioc.models.traffic import TrafficFlowObserved
from ioc.models.transit import FareTap
from ioc.models.water import WaterQualityObserved

MODELS: dict[str, type[Event]] = {
    model.feed: model for model in (AirQualityObserved, TrafficFlowObserved, WaterQualityObserved, FareTap)
}

__all__ = [
    "MODELS",
    "SCHEMA_VERSION",
    "AirQualityObserved",
    "Event",
    "FareTap",
    "FieldUnit",
    "TrafficFlowObserved",
    "WaterQualityObserved",
]
