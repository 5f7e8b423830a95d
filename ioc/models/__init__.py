"""The core's models: the event base every feed model builds on (``ioc.models.base``), anomalies, alerts,
dead letters. Each feed's own model is in its package (``ioc/feeds/<feed>/model.py``)."""

from ioc.models.base import SCHEMA_VERSION, Event, FieldUnit

__all__ = ["SCHEMA_VERSION", "Event", "FieldUnit"]
