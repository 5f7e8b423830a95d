"""Small pure helpers the feed simulators share: daily profiles, persistent noise, counts."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta


def interpolate(profile: tuple[float, ...], hour: float) -> float:
    """Linear interpolation in a 24-value hourly profile, wrapping at midnight."""
    low = int(hour) % 24
    fraction = hour - int(hour)
    return profile[low] * (1 - fraction) + profile[(low + 1) % 24] * fraction


def local_hour(moment: datetime) -> float:
    """Hour of the day as a fraction (07:30 → 7.5) of an already-localised time."""
    return moment.hour + moment.minute / 60 + moment.second / 3600


def step_rho(hourly_rho: float, interval: timedelta) -> float:
    """AR(1) coefficient per step that gives ``hourly_rho`` over one hour of steps."""
    return hourly_rho ** (interval.total_seconds() / 3600)


def ar1_step(value: float, rho: float, sigma: float, rng: random.Random) -> float:
    """One AR(1) step that keeps the stationary standard deviation at ``sigma``."""
    return rho * value + rng.gauss(0, sigma * math.sqrt(1 - rho * rho))


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw: Knuth's product method for small means, a rounded normal for large ones."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, product, count = math.exp(-mean), rng.random(), 0
    while product > limit:
        product *= rng.random()
        count += 1
    return count
