"""Simulated air quality. Deterministic: the same seed, start and options give the same events.

Air quality follows the city's published patterns (../shared/reference/hanoi.md): PM2.5 is a monthly
base × a daily profile × persistent lognormal noise (AR(1), ρ ≈ 0.9 per hour); PM10 ≈ 1.3–1.6 × PM2.5;
NO2 peaks with traffic.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import datetime, timedelta

from connectors.sources.simulator.periodic import PeriodicSimulator
from connectors.sources.simulator.profiles import ar1_step, interpolate, step_rho
from ioc.city import City, Sensor
from ioc.feeds import SimulationOptions
from ioc.feeds.air.model import AirQualityObserved

# Monthly PM2.5 base, µg/m³, January first.
PM25_MONTHLY_BASE = (75, 60, 55, 40, 30, 22, 20, 20, 28, 45, 60, 70)
# Relative PM2.5 level by local hour: high 02–08 (peak 06–08), lowest 14–15, rising 19–23.
PM25_DAILY_PROFILE = (
    1.15,
    1.20,
    1.25,
    1.30,
    1.32,
    1.35,
    1.40,
    1.40,
    1.30,
    1.10,
    0.95,
    0.85,
    0.78,
    0.72,
    0.68,
    0.68,
    0.72,
    0.80,
    0.90,
    1.00,
    1.05,
    1.10,
    1.12,
    1.14,
)
# Relative traffic intensity by local hour: weekday peaks 07–09 and 16:30–19.
TRAFFIC_PROFILE = (
    0.15,
    0.10,
    0.08,
    0.08,
    0.12,
    0.30,
    0.65,
    1.00,
    0.95,
    0.70,
    0.60,
    0.62,
    0.60,
    0.58,
    0.60,
    0.70,
    0.85,
    1.00,
    0.95,
    0.75,
    0.60,
    0.45,
    0.32,
    0.22,
)
HOURLY_RHO = 0.9
NOISE_SIGMA = 0.35


class AirSimulator(PeriodicSimulator):
    """One AirQualityObserved per station every ``interval`` seconds of event time."""

    feed = "air"
    default_interval = timedelta(seconds=60)

    def events(self) -> Iterator[AirQualityObserved]:
        rng = random.Random(self.seed)
        rho = step_rho(HOURLY_RHO, self.interval)
        noise = {s.id: rng.gauss(0, NOISE_SIGMA) for s in self.sensors}
        for moment in self.moments():
            for station in self.sensors:
                noise[station.id] = ar1_step(noise[station.id], rho, NOISE_SIGMA, rng)
                yield self._reading(station, moment, noise[station.id], rng)

    def _reading(
        self, station: Sensor, moment: datetime, noise: float, rng: random.Random
    ) -> AirQualityObserved:
        local = moment.astimezone(self.zone)
        hour = local.hour + local.minute / 60
        traffic = interpolate(TRAFFIC_PROFILE, hour)
        site = 1.15 if station.site_type == "traffic" else 1.0
        # exp(noise - σ²/2) keeps the lognormal factor's mean at 1.
        pm25 = (
            PM25_MONTHLY_BASE[local.month - 1]
            * interpolate(PM25_DAILY_PROFILE, hour)
            * site
            * math.exp(noise - NOISE_SIGMA**2 / 2)
        )
        no2 = (25 + 45 * traffic * site) * math.exp(rng.gauss(0, 0.15))
        return AirQualityObserved(
            sensor_id=station.id,
            date_observed=moment,
            pm25=round(pm25, 1),
            pm10=round(pm25 * rng.uniform(1.3, 1.6), 1),
            no2=round(no2, 1),
            so2=round(8 + 10 * traffic * rng.uniform(0.6, 1.4), 1),
            co=round(600 + 1400 * traffic * site * rng.uniform(0.7, 1.3), 0),
            o3=round(max(0.0, 20 + 60 * math.sin(math.pi * (hour - 7) / 12) + rng.gauss(0, 8)), 1),
            temperature=round(24 + 5 * math.sin(math.pi * (hour - 9) / 12) + rng.gauss(0, 0.3), 1),
            relative_humidity=round(min(100.0, 75 - 12 * math.sin(math.pi * (hour - 9) / 12)), 1),
            averaging_period=int(self.interval.total_seconds()),
        )


def simulate(city: City, options: SimulationOptions) -> AirSimulator:
    return AirSimulator(
        city, start=options.start, duration=options.duration, seed=options.seed, interval=options.interval
    )
