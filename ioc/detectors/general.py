"""A general online anomaly detector for one series of unknown kind: O(1) work and a small JSON state.

Each point is scored from the past only, then learned. Three views of "unusual", each a z-score in
its own yardstick, so that no view needs a per-file setting:

- **Spike / novelty**: the distance of the value from a slow robust level, in a slow robust spread
  (exponentially weighted median-like location and mean absolute deviation, Huber-clipped so an
  outlier moves them by a bounded amount). A value outside what the series has been doing lately.
- **Jump**: the distance of the value from a fast level (the last few points), in the typical size of
  a one-step surprise. A smooth series that jumps, even inside its usual range (a level shift, a
  broken periodic pattern), scores here although the slow view has seen such values before.
- **Shift**: a two-sided CUSUM of the slow z-score: a change that no single point shows.

The three are combined as the largest, then **calibrated per series** (as Numenta's anomaly
likelihood does for HTM): the raw surprise is compared with the distribution of the series' own past
surprises (a slow mean and spread of ``log1p(raw)``), so a noisy, heavy-tailed series (tweet counts)
and a clean one (a sine) reach the same score only at the same rarity. The score is
``min(1, -log10(tail) / 10)``: 0.5 means "a one-in-10^5 surprise for this series".

After an alarm (score >= ``alarm_level``) the next ``refractory_steps`` scores are damped: one report
per episode. The state is a flat dict of floats (JSON-able): ``json.loads(json.dumps(state))``
continues exactly where the original would.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

STATE_VERSION = 1
VIEWS = 8  # slow, jump, shift, noise: each as is, then averaged over the last few points
MAD_TO_SIGMA = math.sqrt(math.pi / 2)  # mean absolute deviation → standard deviation (normal)

# The taxonomy: which way a departure matters, per kind of metric. The only per-metric setting.
METRIC_KIND_DIRECTIONS: dict[str, int] = {
    "speed": -1,  # speed-like: congestion slows traffic down
    "travel_time": +1,  # delay-like: only longer matters
    "occupancy": 0,  # level-like: both ways (congestion; closure or detector fault)
    "flow": 0,  # count-like: surge or drop
    "ridership": 0,
    "taps": 0,
    "pm25": +1,  # pollution-like: only highs
    "pm10": +1,
    "no2": +1,
    "so2": +1,
    "co": +1,
    "o3": +1,
    "aqi": +1,
    "turbidity": +1,
    "dissolved_oxygen": -1,
    "wqi": -1,
}


@dataclass(frozen=True)
class GeneralParams:
    direction: int = 0  # +1: only highs matter, -1: only lows, 0: both
    warmup: int = 130  # points learned before the first score
    settle: int = 20  # points learned before the records of surprise start
    slow_alpha: float = 0.002  # slow level and spread: memory of ~500 points
    fast_alpha: float = 0.3  # fast level: the last few points
    jump_alpha: float = 0.01  # the typical one-step surprise
    clip: float = 4.0  # residuals clipped at this many spreads when learning (Huber)
    cusum_drift: float = 1.0  # in slow z units
    cusum_scale: float = 20.0  # a CUSUM of this much counts like a z of 4
    record_decay: float = 0.0  # the records never fade (tried 3e-5..1e-3: a stationary series re-alarms)
    record_cap: float = 1.2
    record_power: float = 2.0
    record_margin: float = 1.0  # a surprise this many times the record scores 0.5
    z_floor: float = 3.0  # tried 1..5: 3 best
    noise_ratio: float = 1.5  # tried 1, 2, 3: 55.6, 56.7, 55.7
    noise_alpha: float = 0.05  # the recent size of one-step surprises, against jump_spread
    smooth_alpha: float = 0.5  # 1: no averaging
    records_in_episode: int = 1  # 0: an episode's surprises do not raise the records (tried: worse)
    trend_view: int = 0  # 1: a jump must also surprise a linear extrapolation (tried: worse)
    views: int = 0b11111111  # which views score (bit i: view i), for ablations
    alarm_level: float = 0.5
    refractory_steps: int = 200
    refractory_factor: float = 0.0

    def __post_init__(self) -> None:
        if self.direction not in (-1, 0, 1):
            raise ValueError(f"direction must be -1, 0 or 1, not {self.direction!r}")


def params_for_metric(metric: str | None, base: GeneralParams | None = None) -> GeneralParams:
    """The parameters for a kind of metric (its direction); the defaults for an unknown kind (None)."""
    base = base or GeneralParams()
    if metric is None:
        return base
    try:
        return replace(base, direction=METRIC_KIND_DIRECTIONS[metric])
    except KeyError:
        known = ", ".join(sorted(METRIC_KIND_DIRECTIONS))
        raise ValueError(f"unknown metric {metric!r}; known: {known}") from None


def new_state(params: GeneralParams | None = None) -> dict[str, Any]:
    """A fresh state: a flat JSON-able dict, to be kept per series."""
    return {
        "version": STATE_VERSION,
        "params": asdict(params or GeneralParams()),
        "n": 0,
        "slow_level": 0.0,
        "slow_spread": 0.0,
        "fast_level": 0.0,
        "jump_spread": 0.0,
        "trend_spread": 0.0,
        "fast_spread": 0.0,
        "previous": 0.0,
        "before": 0.0,
        "cusum_high": 0.0,
        "cusum_low": 0.0,
        "averages": [0.0] * (VIEWS // 2),  # per view: its recent surprises' average
        "records": [0.0] * VIEWS,  # per view: the decayed record of its surprises
        "since_alarm": -1,  # steps since the last alarm, -1 when none is recent
    }


def score_value(state: dict[str, Any], value: float) -> float:
    """The anomaly score in [0, 1] of ``value`` given the past, then learn it. Mutates ``state``."""
    if not math.isfinite(value):
        raise ValueError(f"value must be a finite number, not {value!r}")
    params = _params(state)
    n = state["n"]
    if n == 0:
        state.update(slow_level=value, fast_level=value, previous=value, before=value, n=1)
        return 0.0
    instant = _views(state, params, value)
    raws = instant + _smoothed(state, params, instant)
    _learn(state, params, value)
    scoring = n >= params.warmup
    score = 0.0
    if scoring:
        for view, raw in enumerate(raws):
            if params.views >> view & 1:
                score = max(score, _calibrated(state["records"][view], params, raw))
    in_episode = 0 <= state["since_alarm"] < params.refractory_steps
    settled = n >= params.settle  # the first points' spreads are still forming: their z-scores mislead
    if settled and (not scoring or not in_episode or params.records_in_episode):
        for view, raw in enumerate(raws):  # an episode already reported does not raise the records
            _learn_record(state["records"], view, params, raw, capped=scoring)
    return _damped(state, params, score) if scoring else 0.0


def _params(state: dict[str, Any]) -> GeneralParams:
    return GeneralParams(**state["params"])


def _directed(z: float, direction: int) -> float:
    return max(z * direction, 0.0) if direction else abs(z)


def _views(state: dict[str, Any], params: GeneralParams, value: float) -> list[float]:
    """Each view's surprise (in the directions that matter); updates the CUSUM."""
    floor = 1e-9 + 1e-3 * abs(state["slow_level"])
    slow_spread = max(state["slow_spread"] * MAD_TO_SIGMA, floor)
    z_slow = (value - state["slow_level"]) / slow_spread
    jump_spread = max(state["jump_spread"] * MAD_TO_SIGMA, floor)
    z_jump = (value - state["fast_level"]) / jump_spread
    trend_spread = max(state["trend_spread"] * MAD_TO_SIGMA, floor)
    z_trend = (value - 2 * state["previous"] + state["before"]) / trend_spread
    if params.trend_view and abs(z_trend) < abs(z_jump):  # a smooth curve that keeps going is not a jump
        z_jump = math.copysign(abs(z_trend), z_jump)
    step = max(-params.clip, min(params.clip, z_slow))
    state["cusum_high"] = max(0.0, state["cusum_high"] + step - params.cusum_drift)
    state["cusum_low"] = max(0.0, state["cusum_low"] - step - params.cusum_drift)
    z_shift = 4.0 * (state["cusum_high"] - state["cusum_low"]) / params.cusum_scale
    # A change of the noise's size by less than noise_ratio is never news (it would creep the record up).
    noise_change = abs(math.log((state["fast_spread"] + floor) / (state["jump_spread"] + floor)))
    noise = max(0.0, noise_change - math.log(params.noise_ratio))
    d = params.direction
    slow = max(0.0, _directed(z_slow, d) - params.z_floor)  # less than z_floor is never news
    jump = max(0.0, _directed(z_jump, d) - params.z_floor)
    return [slow, jump, _directed(z_shift, d), noise]


def _smoothed(state: dict[str, Any], params: GeneralParams, raws: list[float]) -> list[float]:
    """Each view's surprise averaged over the last few points (as HTM's likelihood averages its raw
    scores): a sustained change stands out of a noisy series more than one odd point does."""
    averages = state["averages"]
    for view, raw in enumerate(raws):
        averages[view] += params.smooth_alpha * (raw - averages[view])
    return list(averages)


def _clip_at(spread: float, params: GeneralParams, ready: bool) -> float:
    return params.clip * max(spread * MAD_TO_SIGMA, 1e-12) if ready else math.inf


def _learn(state: dict[str, Any], params: GeneralParams, value: float) -> None:
    """Learn the point, Huber-clipped; the rates start at 1/n (a mean of the start-up points)."""
    n = state["n"]
    slow_alpha = max(params.slow_alpha, 1.0 / (n + 1))
    limit = _clip_at(state["slow_spread"], params, n > 2)
    clipped = max(-limit, min(limit, value - state["slow_level"]))
    state["slow_level"] += slow_alpha * clipped
    state["slow_spread"] += slow_alpha * (abs(clipped) - state["slow_spread"])
    jump_alpha = max(params.jump_alpha, 1.0 / (n + 1))
    jump_residual = abs(value - state["fast_level"])
    jump_limit = _clip_at(state["jump_spread"], params, n > 2)
    state["jump_spread"] += jump_alpha * (min(jump_residual, jump_limit) - state["jump_spread"])
    state["fast_spread"] += max(params.noise_alpha, 1.0 / (n + 1)) * (jump_residual - state["fast_spread"])
    if n > 1:
        trend_residual = abs(value - 2 * state["previous"] + state["before"])
        trend_limit = _clip_at(state["trend_spread"], params, n > 3)
        state["trend_spread"] += jump_alpha * (min(trend_residual, trend_limit) - state["trend_spread"])
    state["fast_level"] += params.fast_alpha * (value - state["fast_level"])
    state["before"], state["previous"] = state["previous"], value
    state["n"] = n + 1


def _learn_record(records: list[float], view: int, params: GeneralParams, raw: float, capped: bool) -> None:
    """The decayed record of the view's surprises; once scoring, one point raises it at most
    ``record_cap`` times (a huge anomaly does not hide the next one for long)."""
    record = records[view] * (1.0 - params.record_decay)
    if not capped or record <= 0.0:
        records[view] = max(record, raw)
    else:
        records[view] = max(record, min(raw, params.record_cap * record))


def _calibrated(record: float, params: GeneralParams, raw: float) -> float:
    """``r^k / (1 + r^k)`` with ``r`` the surprise over the view's decayed record: 0.5 at a new record."""
    if record <= 0.0:
        return 1.0 if raw > 0.0 else 0.0
    ratio = (raw / (record * params.record_margin)) ** params.record_power
    return ratio / (1.0 + ratio)


def _damped(state: dict[str, Any], params: GeneralParams, score: float) -> float:
    since = state["since_alarm"]
    in_refractory = 0 <= since < params.refractory_steps
    state["since_alarm"] = since + 1 if in_refractory else -1
    if in_refractory:
        return score * params.refractory_factor
    if score >= params.alarm_level:
        state["since_alarm"] = 0
    return score
