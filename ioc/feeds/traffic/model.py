"""Road traffic: the FIWARE TrafficFlowObserved model, one detector (or lane) over one interval.

Wire fields (camelCase; FIWARE names where FIWARE has the concept):

- ``sensorId`` — registry id of the detector; ``refRoadSegment`` (optional) — the road segment it watches.
- ``laneId`` (optional, int ≥ 0) — absent when the detector reports the whole carriageway.
- ``dateObserved`` — start of the counting interval; ``intervalSeconds`` — its length. FIWARE's
  ``dateObservedFrom``/``dateObservedTo`` are derived from these (see ``ioc.models.ngsi_ld``).
- ``intensity`` — vehicles counted in the interval (FIWARE ``intensity``).
- ``flow`` — veh/h (ioc extension). Optional: when absent, windows use intensity × 3600 / interval.
- ``averageVehicleSpeed`` — km/h, time-mean; ``occupancy`` — fraction of the interval occupied (0–1).
- ``motorcycleCount``, ``carCount``, ``busCount``, ``truckCount`` (optional) — the class mix (ioc
  extension: FIWARE has one ``vehicleType`` per entity, Hanoi traffic is mostly motorcycles).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

from pydantic import Field, model_validator

from ioc.models.base import Count, Event, FieldUnit, Measure

VEH_PER_H = "veh/h"
# A whole multi-lane section of motorcycle traffic stays well below this; more is a counting fault.
MAX_FLOW = 50_000


def _vehicle_count(what: str) -> int | None:
    return Field(None, ge=0, description=f"{what} counted in the interval")


class TrafficFlowObserved(Event):
    feed: ClassVar[str] = "traffic"
    identity_fields: ClassVar[tuple[str, ...]] = ("lane_id",)  # one reading per lane and interval
    measures: ClassVar[tuple[FieldUnit, ...]] = (
        FieldUnit("intensity", "veh"),
        FieldUnit("flow", VEH_PER_H),
        FieldUnit("average_vehicle_speed", "km/h"),
        FieldUnit("occupancy", "1"),
    )

    ref_road_segment: str | None = Field(None, min_length=1, max_length=128)
    lane_id: int | None = Field(None, ge=0, le=32, description="Lane number; absent for all lanes.")
    interval_seconds: int = Field(ge=1, le=86_400, description="Length of the counting interval, s.")
    intensity: Count = Field(ge=0, description="Vehicles counted in the interval.")
    flow: Measure | None = Field(None, ge=0, le=MAX_FLOW, description=f"Flow rate, {VEH_PER_H}")
    average_vehicle_speed: Measure | None = Field(None, ge=0, le=200, description="Mean speed, km/h")
    occupancy: Measure | None = Field(None, ge=0, le=1, description="Fraction of the interval occupied")
    motorcycle_count: int | None = _vehicle_count("Motorcycles")
    car_count: int | None = _vehicle_count("Cars")
    bus_count: int | None = _vehicle_count("Buses")
    truck_count: int | None = _vehicle_count("Trucks")

    @property
    def interval_end(self) -> datetime:
        return self.date_observed + timedelta(seconds=self.interval_seconds)

    def flow_rate(self) -> float:
        """Vehicles per hour: the reported flow, else the count scaled to an hour."""
        return self.flow if self.flow is not None else self.intensity * 3600 / self.interval_seconds

    def measured_values(self) -> dict[str, float]:
        return super().measured_values() | {"flow": self.flow_rate()}

    @model_validator(mode="after")
    def _counts_are_consistent(self) -> TrafficFlowObserved:
        if self.intensity * 3600 / self.interval_seconds > MAX_FLOW:
            raise ValueError(
                f"intensity {self.intensity} in {self.interval_seconds} s is over {MAX_FLOW} {VEH_PER_H}: "
                "check intervalSeconds"
            )
        classes = (self.motorcycle_count, self.car_count, self.bus_count, self.truck_count)
        counted = sum(count or 0 for count in classes)
        if counted > self.intensity:
            raise ValueError(
                f"the class counts add up to {counted}, more than intensity {self.intensity} "
                "(motorcycleCount + carCount + busCount + truckCount must not exceed intensity)"
            )
        return self
