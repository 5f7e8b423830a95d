"""Device faults put into a sensor's readings for the detector tests: a stuck sensor, a spike."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from ioc.models import Event

E = TypeVar("E", bound=Event)


def stuck(events: Sequence[E], since: datetime, hours: float) -> list[E]:
    """The reading at ``since`` repeated, values and all, at every reading time for ``hours``."""
    frozen = next(e for e in events if e.date_observed == since)
    until = since + timedelta(hours=hours)
    return [
        frozen.model_copy(update={"date_observed": e.date_observed})
        if since <= e.date_observed < until
        else e
        for e in events
    ]


def spiked(events: Sequence[E], at: datetime, field: str, value: float) -> list[E]:
    """The reading at ``at`` with ``field`` at an absurd ``value``."""
    return [e.model_copy(update={field: value}) if e.date_observed == at else e for e in events]
