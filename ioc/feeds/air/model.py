"""Air quality: the FIWARE AirQualityObserved model (concentrations in µg/m³)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from ioc.models.base import Event, FieldUnit, Measure

UG_M3 = "µg/m³"


def _concentration(upper: float, what: str) -> float | None:
    # Upper bounds are physical plausibility limits, well above any recorded episode.
    return Field(None, ge=0, le=upper, description=f"{what}, {UG_M3}")


class AirQualityObserved(Event):
    feed: ClassVar[str] = "air"
    measures: ClassVar[tuple[FieldUnit, ...]] = (
        FieldUnit("pm25", UG_M3),
        FieldUnit("pm10", UG_M3),
        FieldUnit("no2", UG_M3),
        FieldUnit("so2", UG_M3),
        FieldUnit("co", UG_M3),
        FieldUnit("o3", UG_M3),
        FieldUnit("temperature", "°C"),
        FieldUnit("relative_humidity", "%"),
    )

    pm25: Measure | None = _concentration(2000, "PM2.5")
    pm10: Measure | None = _concentration(3000, "PM10")
    no2: Measure | None = _concentration(5000, "NO2")
    so2: Measure | None = _concentration(5000, "SO2")
    # 1 g/m³ (≈ 870 ppm, near the IDLH): a fire-scene reading is still air (FIWARE's example: 500 mg/m³).
    co: Measure | None = _concentration(1_000_000, "CO")
    o3: Measure | None = _concentration(2000, "O3")
    temperature: Measure | None = Field(None, ge=-20, le=60, description="Air temperature, °C")
    relative_humidity: Measure | None = Field(None, ge=0, le=100, description="Relative humidity, %")
    averaging_period: int = Field(
        60, ge=1, le=86_400, description="Seconds over which the sensor averaged its values."
    )
