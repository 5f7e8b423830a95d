"""The city registry: districts and sensors, loaded from a data file (another city is a new file)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, PrivateAttr

UNREGISTERED = "unregistered"


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


class City(BaseModel):
    city: str
    city_en: str
    timezone: str
    centre: dict[str, float]
    districts: list[District]
    sensors: list[Sensor]
    _sensors: dict[str, Sensor] = PrivateAttr(default_factory=dict)
    _districts: dict[str, District] = PrivateAttr(default_factory=dict)

    def sensor(self, sensor_id: str) -> Sensor | None:
        return self._sensors.get(sensor_id)

    def sensors_of(self, kind: str) -> list[Sensor]:
        return [s for s in self.sensors if s.kind == kind]

    def district(self, district_id: str) -> District | None:
        return self._districts.get(district_id)

    def model_post_init(self, __context: object) -> None:
        self._sensors = {s.id: s for s in self.sensors}
        self._districts = {d.id: d for d in self.districts}
        unknown = {s.district for s in self.sensors} - set(self._districts)
        if unknown:
            raise ValueError(f"sensors refer to unknown districts: {sorted(unknown)}")


@lru_cache
def load_city(name_or_path: str) -> City:
    """Load ``ioc/city/<name>.json``, or a registry file given by path."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = Path(__file__).with_name(f"{name_or_path}.json")
    if not path.is_file():
        raise FileNotFoundError(f"no city registry {name_or_path!r} (looked for {path})")
    return City.model_validate(json.loads(path.read_text(encoding="utf-8")))
