"""Water quality: the FIWARE WaterQualityObserved model, any subset of the VN_WQI parameters.

Wire fields (camelCase) and units, as Decision 1460/QĐ-TCMT and QCVN 08:2023 use them:
``pH`` (FIWARE name), ``dissolvedOxygen`` mg/L, ``temperature`` °C, ``bod5``, ``cod``, ``toc`` mg/L,
``nh4N``, ``no3N``, ``no2N`` mg/L as nitrogen, ``po4P`` mg/L as phosphorus, ``coliform`` and
``eColi`` MPN/100 mL, ``turbidity`` NTU, ``conductivity`` µS/cm.

Nutrients carry their own names because FIWARE's ``NH4``/``NO3``/``PO4`` are ion concentrations, while
Vietnamese limits are expressed as N or P; one name for both would hide a factor of 3 to 4.
FIWARE's ``conductivity`` is in S/m; ours is µS/cm, and the NGSI-LD form says so with its unit code.
At least one parameter must be present.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from ioc.models.base import Event, FieldUnit, Measure

MG_L = "mg/L"
MPN_100ML = "MPN/100 mL"


def _parameter(upper: float, what: str, unit: str, alias: str | None = None) -> float | None:
    # Upper bounds are physical plausibility limits, far above raw sewage; more is a sensor fault.
    return Field(None, ge=0, le=upper, alias=alias, description=f"{what}, {unit}")


class WaterQualityObserved(Event):
    feed: ClassVar[str] = "water"
    measures: ClassVar[tuple[FieldUnit, ...]] = (
        FieldUnit("ph", "pH"),
        FieldUnit("dissolved_oxygen", MG_L),
        FieldUnit("temperature", "°C"),
        FieldUnit("bod5", MG_L),
        FieldUnit("cod", MG_L),
        FieldUnit("toc", MG_L),
        FieldUnit("nh4_n", MG_L),
        FieldUnit("no3_n", MG_L),
        FieldUnit("no2_n", MG_L),
        FieldUnit("po4_p", MG_L),
        FieldUnit("coliform", MPN_100ML),
        FieldUnit("e_coli", MPN_100ML),
        FieldUnit("turbidity", "NTU"),
        FieldUnit("conductivity", "µS/cm"),
    )

    ph: Measure | None = _parameter(14, "pH", "pH units", alias="pH")
    dissolved_oxygen: Measure | None = _parameter(30, "Dissolved oxygen", MG_L)
    temperature: Measure | None = Field(None, ge=0, le=50, description="Water temperature, °C")
    bod5: Measure | None = _parameter(10_000, "BOD5", MG_L)
    cod: Measure | None = _parameter(20_000, "COD", MG_L)
    toc: Measure | None = _parameter(10_000, "TOC", MG_L)
    nh4_n: Measure | None = _parameter(1_000, "Ammonium as N (N-NH4)", MG_L)
    no3_n: Measure | None = _parameter(1_000, "Nitrate as N (N-NO3)", MG_L)
    no2_n: Measure | None = _parameter(100, "Nitrite as N (N-NO2)", MG_L)
    po4_p: Measure | None = _parameter(500, "Phosphate as P (P-PO4)", MG_L)
    coliform: Measure | None = _parameter(1e10, "Total coliform", MPN_100ML)
    e_coli: Measure | None = _parameter(1e10, "E. coli", MPN_100ML)
    turbidity: Measure | None = _parameter(10_000, "Turbidity", "NTU")
    conductivity: Measure | None = _parameter(100_000, "Electrical conductivity", "µS/cm")

    @classmethod
    def parameter_names(cls) -> list[str]:
        """Wire names of the measured parameters."""
        return [cls.model_fields[m.field].alias or m.field for m in cls.measures]

    @model_validator(mode="after")
    def _has_a_parameter(self) -> WaterQualityObserved:
        if not self.measured_values():
            names = ", ".join(self.parameter_names())
            raise ValueError(f"no water quality parameter: give at least one of {names}")
        return self
