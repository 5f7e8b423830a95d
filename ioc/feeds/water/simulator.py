"""Simulated surface water quality: one WaterQualityObserved per station every interval (default 15 min).

Signal model (../shared/reference/water_quality.md):

- Each station has a baseline by water body: Tô Lịch and Kim Ngưu nearly anoxic sewers (DO ≈ 1 mg/L,
  BOD5 ≈ 55, N-NH4 ≈ 18, coliform ≈ 10⁶), Nhuệ a little better, lakes moderate (DO 3–8, N-NH4 0.5–5),
  the Red River clean but turbid. Every parameter drifts slowly around it: lognormal AR(1) noise with
  ρ ≈ 0.98 per hour (coliform more volatile).
- Lake dissolved oxygen and pH swing with photosynthesis: highest mid-afternoon (15:00), lowest just
  before dawn (05:30); rivers swing a fifth as much. Water temperature follows the month and the sun.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from connectors.sources.simulator.periodic import PeriodicSimulator
from connectors.sources.simulator.profiles import ar1_step, local_hour, step_rho
from ioc.city import City, Sensor
from ioc.feeds import SimulationOptions
from ioc.feeds.water.model import WaterQualityObserved

DEFAULT_INTERVAL = timedelta(minutes=15)

# Typical Hanoi values per kind of water body: the mean each parameter drifts around.
PARAMETERS = ("dissolved_oxygen", "bod5", "cod", "nh4_n", "no3_n", "no2_n", "po4_p", "coliform", "e_coli")
PARAMETERS += ("turbidity", "conductivity")
URBAN_RIVER = dict(
    dissolved_oxygen=1.0, bod5=55, cod=95, nh4_n=18, no3_n=0.8, no2_n=0.3, po4_p=2.0,
    coliform=1.0e6, e_coli=1.0e5, turbidity=60, conductivity=650,
)  # fmt: skip
NHUE_RIVER = URBAN_RIVER | dict(dissolved_oxygen=1.8, bod5=35, cod=60, nh4_n=11, coliform=3.0e5, e_coli=2.0e4)
RED_RIVER = dict(
    dissolved_oxygen=6.5, bod5=4, cod=11, nh4_n=0.2, no3_n=1.2, no2_n=0.03, po4_p=0.1,
    coliform=3000, e_coli=60, turbidity=150, conductivity=300,
)  # fmt: skip
LAKE = dict(
    dissolved_oxygen=5.5, bod5=14, cod=32, nh4_n=1.8, no3_n=0.8, no2_n=0.08, po4_p=0.35,
    coliform=8000, e_coli=300, turbidity=20, conductivity=420,
)  # fmt: skip
# Lakes that still receive sewage are worse (lower DO, more ammonium); Hồ Tây is the cleanest.
LAKE_LOAD = {"water-ho-tay": 0.7, "water-ho-linh-dam": 1.4, "water-ho-yen-so": 1.5, "water-ho-bay-mau": 1.3}

PH_BASE = {"urban river": 7.2, "red river": 7.8, "lake": 8.0}
# Day/night swing amplitudes (half the peak-to-trough range).
LAKE_DO_SWING, LAKE_PH_SWING = 2.0, 0.35
RIVER_SWING_FRACTION = 0.2
# Mean surface water temperature by month, °C, January first.
WATER_TEMPERATURE = (18, 19, 21, 25, 29, 31, 31, 31, 30, 27, 24, 20)

HOURLY_RHO = 0.98
NOISE_SIGMA = 0.12
VOLATILE_SIGMA = 0.35  # coliform and E. coli jump with rain and discharges


@dataclass(frozen=True)
class WaterBody:
    kind: str  # "urban river", "red river" or "lake"
    baseline: dict[str, float]


def water_body_of(station: Sensor) -> WaterBody:
    name = (station.water_body or station.name).lower()
    if station.site_type == "lake":
        load = LAKE_LOAD.get(station.id, 1.0)
        baseline = {p: v * load for p, v in LAKE.items()}
        baseline["dissolved_oxygen"] = LAKE["dissolved_oxygen"] / load
        return WaterBody("lake", baseline)
    if "hồng" in name:
        return WaterBody("red river", dict(RED_RIVER))
    if "nhuệ" in name:
        return WaterBody("urban river", dict(NHUE_RIVER))
    return WaterBody("urban river", dict(URBAN_RIVER))


def photosynthesis_phase(hour: float) -> float:
    """−1 just before dawn (05:30), +1 mid-afternoon (15:00): a cosine that rises 9.5 h, falls 14.5 h."""
    if 5.5 <= hour < 15:
        return -math.cos(math.pi * (hour - 5.5) / 9.5)
    since_peak = (hour - 15) % 24
    return math.cos(math.pi * since_peak / 14.5)


def sigma_of(parameter: str) -> float:
    return VOLATILE_SIGMA if parameter in ("coliform", "e_coli") else NOISE_SIGMA


class WaterSimulator(PeriodicSimulator):
    """One WaterQualityObserved per station every ``interval`` of event time."""

    feed = "water"
    default_interval = DEFAULT_INTERVAL

    def events(self) -> Iterator[WaterQualityObserved]:
        rng = random.Random(f"water-{self.seed}")
        rho = step_rho(HOURLY_RHO, self.interval)
        drift = {(s.id, p): rng.gauss(0, sigma_of(p)) for s in self.sensors for p in PARAMETERS}
        for moment in self.moments():
            for station in self.sensors:
                for parameter in PARAMETERS:
                    key = (station.id, parameter)
                    drift[key] = ar1_step(drift[key], rho, sigma_of(parameter), rng)
                yield self._sample(station, moment, {p: drift[station.id, p] for p in PARAMETERS}, rng)

    def _sample(
        self, station: Sensor, moment: datetime, drift: dict[str, float], rng: random.Random
    ) -> WaterQualityObserved:
        local = moment.astimezone(self.zone)
        body = water_body_of(station)
        # exp(drift − σ²/2) keeps each lognormal factor's mean at 1, so baselines are the means.
        value = {p: body.baseline[p] * math.exp(d - sigma_of(p) ** 2 / 2) for p, d in drift.items()}
        phase = photosynthesis_phase(local_hour(local))
        swing = 1.0 if body.kind == "lake" else RIVER_SWING_FRACTION
        oxygen = max(0.05, value["dissolved_oxygen"] + swing * LAKE_DO_SWING * phase * _do_scale(body))
        ph = PH_BASE[body.kind] + swing * LAKE_PH_SWING * phase + rng.gauss(0, 0.03)
        temperature = WATER_TEMPERATURE[local.month - 1] + 0.8 * swing * phase + rng.gauss(0, 0.1)
        return WaterQualityObserved(
            sensor_id=station.id,
            date_observed=moment,
            ph=round(ph, 2),
            dissolved_oxygen=round(oxygen, 2),
            temperature=round(temperature, 1),
            bod5=round(value["bod5"], 1),
            cod=round(value["cod"], 1),
            nh4_n=round(value["nh4_n"], 2),
            no3_n=round(value["no3_n"], 2),
            no2_n=round(value["no2_n"], 3),
            po4_p=round(value["po4_p"], 3),
            coliform=float(round(value["coliform"], -1)),
            e_coli=float(round(value["e_coli"])),
            turbidity=round(value["turbidity"], 1),
            conductivity=round(value["conductivity"]),
        )


def _do_scale(body: WaterBody) -> float:
    """Nearly anoxic water has little oxygen to swing: scale the swing by the baseline level."""
    return min(1.0, body.baseline["dissolved_oxygen"] / LAKE["dissolved_oxygen"])


def simulate(city: City, options: SimulationOptions) -> WaterSimulator:
    return WaterSimulator(
        city, start=options.start, duration=options.duration, seed=options.seed, interval=options.interval
    )
