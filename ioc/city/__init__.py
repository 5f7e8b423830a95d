"""The city registry: districts, sensors and transit lines, from a data file (another city is a new file).

Sensors of every feed share one list; the optional fields apply to some kinds only: ``water_body`` to
water stations, ``lines`` to transit stations and stops, ``free_flow_speed`` and ``neighbours`` (the
detectors an incident spreads to) to traffic detectors; ``attributes`` holds what a feed's own package
reads of its sensors, for feeds added as plug-ins (``ioc/feeds/``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import time
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, PrivateAttr

UNREGISTERED = "unregistered"
# A sensor id with this prefix is explicitly outside the registry (a new or synthetic sensor).
UNREGISTERED_PREFIX = f"{UNREGISTERED}:"


class District(BaseModel):
    id: str
    name: str
    gso_code: str | None = None
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Sensor(BaseModel):
    id: str
    kind: str = Field(description="Feed the sensor reports to: air, water, traffic or transit.")
    name: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    district: str
    site_type: str | None = None
    water_body: str | None = Field(None, description="River or lake a water station samples.")
    water_class: str | None = Field(
        None,
        pattern="^[ABCD]$",
        description="QCVN 08:2023 class the water body is managed for (A best … D: urban drains).",
    )
    lines: list[str] = Field(default_factory=list, description="Transit lines or routes serving the stop.")
    free_flow_speed: float | None = Field(None, gt=0, le=130, description="Free-flow speed, km/h.")
    neighbours: list[str] = Field(default_factory=list, description="Adjacent traffic detector ids.")
    attributes: dict[str, float | str] = Field(
        default_factory=dict,
        description="Facts about the sensor that only its feed's package reads (a crowd zone's area and "
        "safe capacity …), so a new feed needs no new registry field.",
    )
    external_ids: list[str] = Field(
        default_factory=list,
        description="Ids other systems know the sensor by: NGSI-LD entity ids (whole, or the part after "
        "urn:ngsi-ld:<Type>:) and device ids an entity's refDevice names.",
    )


class Line(BaseModel):
    """A metro line, BRT line or bus route, with its stations or stops in travel order."""

    id: str
    name: str
    mode: str = Field(description="metro, brt or bus, as in the transit feed.")
    stations: list[str] = Field(min_length=2)
    service_start: time = Field(time(5, 30), description="First departure, local time.")
    service_end: time = Field(time(22, 0), description="Service ends, local time.")


class City(BaseModel):
    city: str
    city_en: str
    timezone: str
    centre: dict[str, float]
    districts: list[District]
    sensors: list[Sensor]
    lines: list[Line] = Field(default_factory=list)
    _sensors: dict[str, Sensor] = PrivateAttr(default_factory=dict)
    _districts: dict[str, District] = PrivateAttr(default_factory=dict)
    _external: dict[str, Sensor] = PrivateAttr(default_factory=dict)

    def sensor(self, sensor_id: str) -> Sensor | None:
        return self._sensors.get(sensor_id)

    def sensor_known_as(self, external_id: str) -> Sensor | None:
        """The sensor whose ``external_ids`` hold ``external_id``, if any."""
        return self._external.get(external_id)

    def sensors_of(self, kind: str) -> list[Sensor]:
        return [s for s in self.sensors if s.kind == kind]

    def district(self, district_id: str) -> District | None:
        return self._districts.get(district_id)

    def line(self, line_id: str) -> Line | None:
        return next((line for line in self.lines if line.id == line_id), None)

    def model_post_init(self, __context: object) -> None:
        self._sensors = {s.id: s for s in self.sensors}
        self._districts = {d.id: d for d in self.districts}
        unknown = {s.district for s in self.sensors} - set(self._districts)
        if unknown:
            raise ValueError(f"sensors refer to unknown districts: {sorted(unknown)}")
        if len(self._sensors) != len(self.sensors):
            raise ValueError("sensor ids are not unique")
        dangling = self._unknown_ids(s.neighbours for s in self.sensors) | self._unknown_ids(
            line.stations for line in self.lines
        )
        if dangling:
            raise ValueError(f"neighbours or line stations refer to unknown sensors: {sorted(dangling)}")
        self._external = _external_ids(self.sensors)

    def _unknown_ids(self, id_lists: Iterable[list[str]]) -> set[str]:
        return {sensor_id for ids in id_lists for sensor_id in ids} - set(self._sensors)


def _external_ids(sensors: list[Sensor]) -> dict[str, Sensor]:
    """External id → sensor; an id given to two sensors, or that is another sensor's own id, would make
    an entity's sensor depend on the order of the file, so it is an error."""
    known: dict[str, Sensor] = {}
    own = {s.id for s in sensors}
    for sensor in sensors:
        for external in sensor.external_ids:
            if not external.strip():
                raise ValueError(f"sensor {sensor.id}: an empty external id")
            if external in known or (external in own and external != sensor.id):
                raise ValueError(f"external id {external!r} names more than one sensor")
            known[external] = sensor
    return known


@lru_cache
def load_city(name_or_path: str) -> City:
    """Load ``ioc/city/<name>.json``, or a registry file given by path."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = Path(__file__).with_name(f"{name_or_path}.json")
    if not path.is_file():
        raise FileNotFoundError(f"no city registry {name_or_path!r} (looked for {path})")
    return City.model_validate(json.loads(path.read_text(encoding="utf-8")))
