"""Crowds at heritage and tourist zones: the FIWARE CrowdFlowObserved model (dataModel.Transportation),
one zone's people counter (a turnstile pair, a camera-based counter) over one counting interval.

Wire fields (camelCase; FIWARE's names):

- ``sensorId`` — registry id of the zone's counter (a ``crowd`` sensor: its area and safe capacity are
  in the registry's ``attributes``).
- ``dateObserved`` — start of the counting interval; ``intervalSeconds`` — its length (default 300).
- ``peopleCount`` — people in the zone, as the counter reports it. FIWARE's text says "people detected
  during this observation"; a zone counter reports the people it holds (entries minus exits for a
  gated site, a head count for a camera), which is what safety is judged on.
- ``occupancy`` — fraction of the interval the observed walkway was occupied (0–1).
- ``averageCrowdSpeed`` — km/h, mean walking speed in the zone.
- ``congested`` — the counter's own verdict, kept as sent; ``direction`` — ``inbound`` or ``outbound``,
  the flow's main direction.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ioc.models.base import Count, Event, FieldUnit, Measure

PEOPLE = "persons"
# The largest crowds in Hanoi (New Year's Eve at the lake, 2 September at Ba Đình) are some 100,000
# people; more in one zone is a counting fault.
MAX_PEOPLE = 500_000


class CrowdFlowObserved(Event):
    feed: ClassVar[str] = "crowd"
    measures: ClassVar[tuple[FieldUnit, ...]] = (
        FieldUnit("people_count", PEOPLE),
        FieldUnit("occupancy", "1"),
        FieldUnit("average_crowd_speed", "km/h"),
    )

    interval_seconds: int = Field(300, ge=1, le=86_400, description="Length of the counting interval, s.")
    people_count: Count | None = Field(None, ge=0, le=MAX_PEOPLE, description="People in the zone.")
    occupancy: Measure | None = Field(None, ge=0, le=1, description="Fraction of the interval occupied")
    average_crowd_speed: Measure | None = Field(None, ge=0, le=20, description="Mean walking speed, km/h")
    congested: bool | None = Field(None, description="The counter's own verdict: the zone is congested.")
    direction: Literal["inbound", "outbound"] | None = Field(None, description="The flow's main direction.")
