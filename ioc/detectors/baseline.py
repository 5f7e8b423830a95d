"""Online statistical detector for one series: a robust seasonal baseline and a shift detector.

Each point is compared with the series' learned normal for its time of week, *before* the point is
learned, so a score never looks ahead:

- **Seasonal baseline.** A piecewise-linear profile over the hour of the week (168 nodes at half past
  each hour), learned online by a robust LMS step: the residual is clipped at ``clip`` spreads
  (Huber), so an outlier moves the profile by a bounded amount. The spread is the profile of the
  clipped mean absolute deviation. Until a node of the hour-of-week profile has ``weekly_min_samples``
  samples, the hour-of-day profile (24 nodes) stands in, and the global level before that; once it
  has, it is shrunk toward the hour-of-day profile by ``weekly_shrinkage`` samples' worth, so a week
  or two of history does not make a brittle normal. Memory is counted in a node's own samples, so a
  5-minute series adapts faster in wall-clock time than a 30-minute one (NAB's traffic series need it).
- **Spikes.** The robust z-score ``z = (value - expected) / spread``.
- **Shifts.** A two-sided CUSUM (drift ``cusum_drift``) accumulates a change that no single point
  shows. It measures departures with a second spread learned ``shift_alpha_ratio`` times slower, so a
  shift does not widen the yardstick it is judged by; it restarts when it reaches ``cusum_limit`` (the
  shift has been reported) or after a gap of ``gap_seconds`` (stale evidence).
- **Score** in [0, 1): ``r / (1 + r)`` with ``r = max(|z| / spike_z, cusum / cusum_limit)`` over the
  directions that matter (``direction``), so 0.5 means "a ``spike_z`` spike or a full CUSUM".
- **Novelty.** Once a point scores ``alarm_level`` or more, the scores of the next
  ``refractory_seconds`` are multiplied by ``refractory_factor``: an episode already reported is not
  news, and one alarm per episode is what an operator wants (the alert manager keeps it open).
  ``PointScore.raw_score`` is the score before that damping.

Timestamps may be naive or aware; the hour and weekday are read from the timestamp as given, so pass
local time (an offset like ``+07:00`` is local time). Steps may be irregular. The state is a plain
JSON-able dict: ``json.loads(json.dumps(state))`` continues exactly where the original would.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple

STATE_VERSION = 1
MAD_TO_SIGMA = math.sqrt(math.pi / 2)  # mean absolute deviation → standard deviation (normal)
HOURS_PER_WEEK = 168
_NAIVE_EPOCH = datetime(1970, 1, 1)

# Which way a departure matters, per metric (+1: only highs, -1: only lows, 0: both). The only
# per-metric parameter: everything else is the same for every series.
METRIC_DIRECTIONS: dict[str, int] = {
    "speed": -1,  # congestion slows traffic down
    "travel_time": +1,  # delays
    "occupancy": 0,  # high: congestion; low when it should be high: closure or detector fault
    "flow": 0,  # surge (event) or drop (blockage)
    "ridership": 0,  # surge (event) or drop (disruption, holiday)
    "taps": 0,
    "pm25": +1,
    "pm10": +1,
    "no2": +1,
    "so2": +1,
    "co": +1,
    "o3": +1,
    "aqi": +1,
    "turbidity": +1,
    "dissolved_oxygen": -1,
    "wqi": -1,  # a low water-quality index is bad water
}


@dataclass(frozen=True)
class BaselineParams:
    direction: int = 0  # +1: only highs matter, -1: only lows, 0: both
    # Learning-rate floors: a node's memory is about 1/alpha of its own samples (1/n before that).
    weekly_alpha: float = 0.2
    daily_alpha: float = 0.1
    global_alpha: float = 0.01
    weekly_min_samples: float = 3.0  # before this, the hour-of-day profile stands in
    daily_min_samples: float = 6.0  # before this, the global level stands in
    global_min_samples: float = 12.0  # before this, no score (warm-up)
    weekly_shrinkage: float = 2.0  # samples' worth of weight of the hour-of-day profile in the blend
    clip: float = 3.0  # residuals are clipped at this many spreads when learning (Huber)
    spread_floor: float = 0.1  # spread is at least this fraction of the global spread
    spike_z: float = 5.0  # |z| that scores 0.5 (an alarm)
    cusum_drift: float = 1.5  # in z units: departures smaller than this do not accumulate
    cusum_clip: float = 4.0  # one point adds at most this to the CUSUM
    cusum_limit: float = 15.0  # the CUSUM that scores 0.5 (an alarm); it restarts after reaching it
    shift_alpha_ratio: float = 0.05  # the CUSUM's yardstick learns this much slower than the spike one
    gap_seconds: float = 6 * 3600.0  # a longer gap between points restarts the CUSUM
    alarm_level: float = 0.5  # the score of an alarm: starts the refractory period
    refractory_seconds: float = 6 * 3600.0
    refractory_factor: float = 0.5

    def __post_init__(self) -> None:
        if self.direction not in (-1, 0, 1):
            raise ValueError(f"direction must be -1, 0 or 1, not {self.direction!r}")


@dataclass(frozen=True)
class PointScore:
    score: float  # in [0, 1): how anomalous, damped inside an episode already reported
    expected: float | None  # the learned normal for this time (None while warming up)
    spread: float | None  # its robust spread, in the value's unit
    direction: int  # +1 above normal, -1 below, 0 neither (or warming up)
    raw_score: float  # the score before the episode damping


def params_for_metric(metric: str | None, base: BaselineParams | None = None) -> BaselineParams:
    """The parameters for a metric: ``base`` (the defaults) with the metric's direction."""
    base = base or BaselineParams()
    if metric is None:
        return base
    try:
        return replace(base, direction=METRIC_DIRECTIONS[metric])
    except KeyError:
        known = ", ".join(sorted(METRIC_DIRECTIONS))
        raise ValueError(f"unknown metric {metric!r}; known: {known}") from None


def new_state(params: BaselineParams | None = None) -> dict[str, Any]:
    """A fresh detector state: JSON-able, to be kept per series (e.g. in a Faust table)."""
    return {
        "version": STATE_VERSION,
        "params": asdict(params or BaselineParams()),
        "nodes": {},  # key -> [samples (weighted), location, deviation, shift deviation]
        "cusum_high": 0.0,
        "cusum_low": 0.0,
        "last_seconds": None,
        "alarm_seconds": None,
    }


def expected(state: dict[str, Any], timestamp: datetime) -> float | None:
    """The learned normal for this time (weekday and hour), or None while warming up."""
    reference = _reference(state["nodes"], _params(state), timestamp)
    return None if reference is None else reference[0]


def score_point(state: dict[str, Any], timestamp: datetime, value: float) -> PointScore:
    """Score one point against what came before it, then learn it. Mutates ``state``."""
    if not math.isfinite(value):
        raise ValueError(f"value must be a finite number, not {value!r}")
    model = model_of(state)
    result = score_model(model, _params(state), timestamp, value)
    state["cusum_high"], state["cusum_low"], state["last_seconds"], state["alarm_seconds"] = model[1:]
    return result


# What a series has learned, without its parameters (a caller that keeps many series of one kind, such
# as the sensor detector, holds those once): [nodes, cusum high, cusum low, last seconds, alarm seconds].
NODES, CUSUM_HIGH, CUSUM_LOW, LAST_SECONDS, ALARM_SECONDS = range(5)


def new_model() -> list[Any]:
    return [{}, 0.0, 0.0, None, None]


def score_model(model: list[Any], params: BaselineParams, timestamp: datetime, value: float) -> PointScore:
    """``score_point`` on a bare model (``new_model``) with its parameters given. Mutates ``model``."""
    if not math.isfinite(value):
        raise ValueError(f"value must be a finite number, not {value!r}")
    now = _seconds(timestamp)
    last = model[LAST_SECONDS]
    if last is not None and now - last > params.gap_seconds:
        model[CUSUM_HIGH] = model[CUSUM_LOW] = 0.0
    model[LAST_SECONDS] = now

    nodes = model[NODES]
    reference = _reference(nodes, params, timestamp)
    result = PointScore(score=0.0, expected=None, spread=None, direction=0, raw_score=0.0)
    if reference is not None:
        result = _score(model, params, reference, value, now)
    weekly, daily = _profile_keys(timestamp)
    _learn(nodes, weekly, value, params.weekly_alpha, params)
    _learn(nodes, daily, value, params.daily_alpha, params)
    _learn(nodes, [("g", 1.0)], value, params.global_alpha, params)
    return result


def model_of(state: dict[str, Any]) -> list[Any]:
    """The bare model of a state (``new_state``): its parameters left out."""
    return [state["nodes"], state["cusum_high"], state["cusum_low"], state["last_seconds"],
            state["alarm_seconds"]]  # fmt: skip


def _params(state: dict[str, Any]) -> BaselineParams:
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"detector state version {state.get('version')!r}, expected {STATE_VERSION}")
    return BaselineParams(**state["params"])


def _seconds(moment: datetime) -> float:
    if moment.tzinfo is None:
        return (moment - _NAIVE_EPOCH).total_seconds()
    return moment.timestamp()


def _profile_keys(moment: datetime) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """The two hour-of-week nodes around a moment and the two hour-of-day nodes, with linear weights.
    Nodes sit at half past each hour, so a profile that rises within an hour is followed, not averaged."""
    hour_of_week = moment.weekday() * 24 + moment.hour + moment.minute / 60 + moment.second / 3600
    position = hour_of_week - 0.5
    lower = math.floor(position)
    upper_weight = position - lower
    pairs = ((lower % HOURS_PER_WEEK, 1.0 - upper_weight), ((lower + 1) % HOURS_PER_WEEK, upper_weight))
    weekly = [(f"w{node}", weight) for node, weight in pairs]
    daily = [(f"d{node % 24}", weight) for node, weight in pairs]
    return weekly, daily


class _Profile(NamedTuple):
    location: float
    deviation: float  # mean absolute deviation, fast: the yardstick of spikes
    shift_deviation: float  # mean absolute deviation, slow: the yardstick of the CUSUM
    samples: float  # of its youngest node


def _profile(
    nodes: dict[str, list[float]], keys: list[tuple[str, float]], min_samples: float
) -> _Profile | None:
    """The profile interpolated between its nodes, or None while a node is too young."""
    location = deviation = shift_deviation = 0.0
    fewest = math.inf
    for key, weight in keys:
        node = nodes.get(key)
        if node is None or node[0] < min_samples:
            return None
        location += weight * node[1]
        deviation += weight * node[2]
        shift_deviation += weight * node[3]
        fewest = min(fewest, node[0])
    return _Profile(location, deviation, shift_deviation, fewest)


def _reference(
    nodes: dict[str, list[float]], params: BaselineParams, moment: datetime
) -> tuple[float, float, float] | None:
    """The normal for a moment from the finest profile with enough history: (location, spread of
    spikes, spread of shifts), or None while warming up."""
    overall = nodes.get("g")
    if overall is None or overall[0] < params.global_min_samples:
        return None
    weekly_keys, daily_keys = _profile_keys(moment)
    daily = _profile(nodes, daily_keys, params.daily_min_samples)
    weekly = _profile(nodes, weekly_keys, params.weekly_min_samples)
    if weekly is not None and daily is not None:
        # A young weekly node is noisy: lean on the hour-of-day profile until it has more samples.
        share = weekly.samples / (weekly.samples + params.weekly_shrinkage)
        normal = _Profile(*(share * w + (1 - share) * d for w, d in zip(weekly, daily, strict=True)))
    else:
        normal = weekly or daily or _Profile(overall[1], overall[2], overall[3], overall[0])
    floor = params.spread_floor * overall[2] * MAD_TO_SIGMA
    spread = max(normal.deviation * MAD_TO_SIGMA, floor)
    if spread <= 0:  # a constant series so far: any change is news, but of unknown size
        spread = max(abs(normal.location) * 1e-6, 1e-9)
    shift_spread = max(normal.shift_deviation * MAD_TO_SIGMA, floor) or spread
    return normal.location, spread, shift_spread


def _learn(
    nodes: dict[str, list[float]],
    keys: list[tuple[str, float]],
    value: float,
    alpha: float,
    params: BaselineParams,
) -> None:
    """One robust LMS step of a piecewise-linear profile: the residual, clipped at ``clip`` spreads,
    moves each node by its weight; both deviations follow the clipped absolute residual the same way,
    the shift one at ``shift_alpha_ratio`` of the rate."""
    present = [(key, weight, nodes.get(key)) for key, weight in keys]
    if any(node is None for _, _, node in present):
        # First sample of a node: it starts at the value (the other node just counts the sample).
        for key, weight, node in present:
            if node is None:
                nodes[key] = [weight, value, 0.0, 0.0]
            else:
                node[0] += weight
        return
    location = sum(weight * node[1] for _, weight, node in present)  # type: ignore[index]
    deviation = sum(weight * node[2] for _, weight, node in present)  # type: ignore[index]
    shift_deviation = sum(weight * node[3] for _, weight, node in present)  # type: ignore[index]
    residual = value - location
    shift_residual = abs(residual)
    if shift_deviation > 0:
        shift_residual = min(shift_residual, params.clip * shift_deviation * MAD_TO_SIGMA)
    if deviation > 0:
        limit = params.clip * deviation * MAD_TO_SIGMA
        residual = max(-limit, min(limit, residual))
    for _, weight, node in present:
        if weight <= 0:
            continue
        node[0] += weight  # type: ignore[index]
        floor_rate = 1.0 / node[0]  # type: ignore[index]
        rate = weight * max(floor_rate, alpha)
        node[1] += rate * residual  # type: ignore[index]
        node[2] += rate * (abs(residual) - node[2])  # type: ignore[index]
        node[3] += weight * max(floor_rate, alpha * params.shift_alpha_ratio) * (shift_residual - node[3])  # type: ignore[index]


def _score(
    model: list[Any],
    params: BaselineParams,
    reference: tuple[float, float, float],
    value: float,
    now: float,
) -> PointScore:
    location, spread, shift_spread = reference
    z = (value - location) / spread
    # The CUSUM measures with the slow yardstick: a shift must not widen the spread it is judged by.
    step = max(-params.cusum_clip, min(params.cusum_clip, (value - location) / shift_spread))
    model[CUSUM_HIGH] = max(0.0, model[CUSUM_HIGH] + step - params.cusum_drift)
    model[CUSUM_LOW] = max(0.0, model[CUSUM_LOW] - step - params.cusum_drift)
    high = max(z / params.spike_z, model[CUSUM_HIGH] / params.cusum_limit, 0.0)
    low = max(-z / params.spike_z, model[CUSUM_LOW] / params.cusum_limit, 0.0)
    if params.direction > 0:
        low = 0.0
    elif params.direction < 0:
        high = 0.0
    if model[CUSUM_HIGH] >= params.cusum_limit or model[CUSUM_LOW] >= params.cusum_limit:
        model[CUSUM_HIGH] = model[CUSUM_LOW] = 0.0  # the shift is reported: start afresh
    departure = max(high, low)
    direction = 0 if departure == 0 else (1 if high >= low else -1)
    raw_score = departure / (1.0 + departure)
    score = raw_score
    alarm = model[ALARM_SECONDS]
    if alarm is not None and now - alarm < params.refractory_seconds:
        score *= params.refractory_factor
    elif raw_score >= params.alarm_level:
        model[ALARM_SECONDS] = now
    return PointScore(score, location, spread, direction, raw_score)
