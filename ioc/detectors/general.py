"""A general online anomaly detector for one series of unknown kind: O(1) work, a small JSON state.

Each point is scored from the past only, then learned. Five *views* of "unusual", each a surprise in
its own yardstick, so that none needs a per-file setting:

- **slow**: the value's z-score against a slow robust level and spread (Huber-clipped exponentially
  weighted mean and mean absolute deviation, memory ~2000 points): values the series has not been
  taking lately (spikes, level shifts, drift out of range).
- **jump**: the z-score against a fast level (the last few points) in the typical size of a one-step
  change: a break that stays inside the usual range (a smooth series that suddenly moves).
- **shift**: a two-sided, slightly leaky CUSUM of the slow z-score: a change no single point shows.
- **noise**: the log ratio of the recent to the usual one-step change: a variance change.
- **hour of day**: the z-score against the level and spread of the same hour of the day (24 slots for
  weekdays, 24 for weekends): a daily pattern broken inside the usual range (a missing peak, a flat
  day). Needs the timestamp. Tried: 168 hour-of-week slots learn too slowly for NAB's files (60.7).

z-scores below ``z_floor`` and noise ratios below ``noise_ratio`` count as nothing: ordinary wiggles
must not creep a record up. Each view is taken as is and averaged over the last few points (as HTM's
anomaly likelihood averages its raw scores: a sustained change stands out of a noisy series more than
one odd point does). The slow and hour-of-day surprises are also *held*: the least of the last
``held_steps`` (5), a departure that lasts. A held view's record is set by lasting departures only, so
a level shift is news to it even when far smaller than the spikes that set the plain view's record (an
hourly job's blips on a CPU series masked the level shift that followed: NAB 71.2 → 73.8). Twelve
surprises.

**Calibration by records.** Each surprise is compared with the largest that view has produced in
this series so far (its *record*, learned from the start-up on): the score is ``r²/(1+r²)`` of the
largest ratio ``r``, so **0.5 means "a surprise this series has not produced before"** whatever its
noise, tails or scale; a heavy-tailed tweet count and a clean sine reach 0.5 only at their own new
extreme. Once scoring, one point raises a record at most ``record_cap`` times (a huge anomaly does not
hide the next one for long). A record never fades: with a fading one a stationary series re-alarms
whenever its record has decayed below its ordinary extremes.

**Start-up.** The first ``warmup`` (250) points are learned, not scored: about a day of 5-minute
readings for the levels, spreads and records to form (130: 73.8 on NAB, 250: 75.4).

**One report per episode.** After a score reaches ``alarm_level`` (0.5) the next
``refractory_steps`` scores are multiplied by ``refractory_factor`` (0): the episode has been reported;
unless a point's odds ``s/(1-s)`` beat the episode's peak ``breakthrough`` (4) times: a far bigger event
is news again (a second spike days after the first on an hourly series).

Published detectors this learns from (read, not copied): Numenta HTM's anomaly likelihood (a series'
own distribution of surprise sets the alarm; short averaging), CAD OSE and ARTime (report novelty, then
hold off), NAB's windowed Gaussian (a rolling z-score alone scores 36: one view is not enough).

The state is a dict of numbers and lists (182 numbers: 48 hour slots of 3, 12 records, 5 averages,
5 held pairs, a few scalars; ~2.9 KB of JSON, ~3.4 KB with the parameters), JSON-able and bounded:
``json.loads(json.dumps(state))`` continues exactly where the original would. Cost: ~15 µs of CPU per
point in CPython (``benchmarks/nab_corpus.py --cost``; ~12 µs before the held views).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

STATE_VERSION = 1
BASE_VIEWS = 5  # slow, jump, shift, noise, hour of day
HELD_VIEWS = (0, 4)  # slow, hour of day: also held over a few points
# Each base view as is (0-4), averaged over the last few points (5-9), then the held ones (10, 11).
VIEWS = 2 * BASE_VIEWS + len(HELD_VIEWS)
HOURS = 24  # hour-of-day slots, weekdays and weekends apart (one slot set: 63.6, two: 64.8)
# Slow and jump, as is and averaged: least_z_record (the hour view with it: 62.5, taxi's broken days
# lost; the held slow view with it: 74.8).
Z_VIEWS = (0, 1, BASE_VIEWS, BASE_VIEWS + 1)
HOUR_VIEWS = (4, BASE_VIEWS + 4, 2 * BASE_VIEWS + 1)  # the hour of day: as is, averaged, held
MAX_ODDS = 1e12
MAD_TO_SIGMA = math.sqrt(math.pi / 2)  # mean absolute deviation → standard deviation (normal)

# The taxonomy: which way a departure matters, per kind of metric. The only per-metric setting; a
# series of unknown kind (None) watches both ways.
METRIC_KIND_DIRECTIONS: dict[str, int] = {
    "speed": -1,  # speed-like: congestion slows traffic down
    "travel_time": +1,  # delay-like: only longer matters
    "occupancy": 0,  # level-like: both ways (congestion; a closure or a detector fault)
    "flow": 0,  # count-like: a surge or a drop
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
    "dissolved_oxygen": -1,  # quality-like: only lows
    "wqi": -1,
}
# Kinds of human activity, with a daily and weekly rhythm (traffic, riders): the hour-of-day views
# start with the z views' least record (``hour_least_record``). On NAB's four files of these kinds (the
# city set) 88.4 → 91.1 (10/10 windows, FP rows 12 → 7; 1.5: 89.4, 2.5: 91.1, 3: 82.2); on the other
# 50, of unknown kind, it would cost 3 points (75.4 → 72.4: a broken daily pattern in a machine's
# first days is often the anomaly), so they keep the default.
ACTIVITY_KINDS = frozenset({"speed", "travel_time", "occupancy", "flow", "ridership", "taps"})


@dataclass(frozen=True)
class GeneralParams:
    """One configuration for every series (NAB corpus scores of the alternatives tried in comments)."""

    direction: int = 0  # +1: only highs matter, -1: only lows, 0: both
    # Points learned before the first score: a day of 5-minute readings (130, 180, 220, 300, 400:
    # 73.8, 74.3, 75.5, 74.5, 70.8 on NAB, whose shortest file's first scored row is 186).
    warmup: int = 250
    settle: int = 20  # points before the records start (first spreads mislead; 50: 54.3, 20: 55.6)
    slow_alpha: float = 0.0005  # slow level and spread: ~2000 points (0.002, 0.001, 0.0002: 64.8, 66.6, 67.8)
    fast_alpha: float = 0.3  # fast level: the last few points
    jump_alpha: float = 0.01  # the typical one-step change (0.002: worse)
    noise_alpha: float = 0.05  # the recent one-step change, against the typical one
    hour_alpha: float = 0.01  # an hour-of-day slot's rate per sample of its own (0.003, 0.03: worse)
    hour_min_samples: int = 12  # samples of a slot before it scores (6: 64.5, 24: 62.7)
    # One slot per hour of the week instead (168): for a metric with a weekly rhythm (a road's Friday
    # evening is not its Monday's), ready once it has seen that hour of the week ``hour_min_samples``
    # times' worth (a week at any cadence ``for_cadence`` gives).
    weekly: bool = False
    # The hour-of-day views' least record (0: ``least_record``, as the noise and shift views). For a
    # series of human activity (``ACTIVITY_KINDS``) ``least_z_record``, the other z views': its first
    # days' hour slots are still learning the rhythm's spread, and their first surprises are that.
    hour_least_record: float = 0.0
    held_steps: int = 5  # a held surprise is the least of this many (3, 4, 6, 7, 10: 70.8 .. 73.4)
    clip: float = 4.0  # residuals clipped at this many spreads when learning (Huber)
    cusum_drift: float = 1.0  # in slow z units (2: worse)
    cusum_scale: float = 5.0  # a CUSUM of this much counts like a z of 1
    cusum_leak: float = 0.001  # keeps the CUSUM bounded on a biased series (0, 0.01: 64.4)
    z_floor: float = 3.0  # z-scores below this are nothing (0, 1, 2, 4, 5: 56.7 .. 58.6)
    # Noise changes below this ratio are nothing: a clean sine's one-step change varies by pi/2 over its
    # cycle (1.5 scores 64.5 on NAB but alarms daily on a clean sine as the ratio's record creeps up).
    noise_ratio: float = 2.0
    smooth_alpha: float = 0.5  # the averaged views' rate (0.2, 0.1: no better)
    record_cap: float = 1.5  # (1.1, 1.2, 2, 3, uncapped: 57.0, 59.1, 59.4, 58.1, 57.7)
    least_record: float = 0.1  # a record smaller than this is still being formed (0.25: 62.3)
    least_z_record: float = 2.0  # so Gaussian noise needs z >= 5 to alarm (0.1, 0.5, 1: 63.8, 62.5, 61.8)
    record_power: float = 2.0  # the score's steepness around a record
    views: int = (1 << VIEWS) - 1  # which views score (bit i: view i), for ablations
    # A cold start for a stream that must not be blind through its first day: these views (bits, as
    # ``views``) score from ``early_warmup`` points on, the others from ``warmup``. None by default (NAB):
    # the jump view (bit 1) needs only a few points to know the usual one-step change.
    early_views: int = 0
    early_warmup: int = 0
    early_least_z: float = 0.0  # their least record until the start-up ends (a z of z_floor + this alarms)
    alarm_level: float = 0.5
    refractory_steps: int = 200  # (100, 150, 300: worse)
    refractory_factor: float = 0.0
    breakthrough: float = (
        4.0  # in-episode odds over the peak that report again (2, 3, 10, none: 70.4, 71.1, 71.0, 68.5)
    )

    def __post_init__(self) -> None:
        if self.direction not in (-1, 0, 1):
            raise ValueError(f"direction must be -1, 0 or 1, not {self.direction!r}")


def params_for_metric(
    metric: str | None, base: GeneralParams | None = None, cadence_seconds: float | None = None
) -> GeneralParams:
    """The parameters for a kind of metric (its direction) at a cadence (``for_cadence``); ``base`` for
    an unknown kind (None) at an unknown cadence (None: the defaults, as NAB measures them)."""
    base = base or GeneralParams()
    if cadence_seconds is not None:
        base = for_cadence(base, cadence_seconds)
    if metric is None:
        return base
    try:
        params = replace(base, direction=METRIC_KIND_DIRECTIONS[metric])
    except KeyError:
        known = ", ".join(sorted(METRIC_KIND_DIRECTIONS))
        raise ValueError(f"unknown metric {metric!r}; known: {known}") from None
    if metric in ACTIVITY_KINDS:
        params = replace(params, hour_least_record=max(params.hour_least_record, params.least_z_record))
    return params


# The defaults were chosen on NAB, whose series are mostly 5-minute ones: their counts of points that
# stand for durations (the start-up, the hold-off after a report) are durations at this cadence.
REFERENCE_CADENCE = 300.0
# Least counts at a slow cadence: enough points for spreads and records to mean something (an hourly
# series: two days' start-up, hour slots ready after four days).
LEAST_WARMUP = 48
LEAST_HOUR_SAMPLES = 4
# Series of hourly (or slower) means (air's statistical rules), chosen on the simulator's seeded weeks
# (the air stations' hourly PM2.5, seed 7's week and seed 11's three days; ``benchmarks/ground_truth.py``
# for the whole pipeline). Each value averages many readings, so what departs from the slow level is
# weather-like persistence, not noise: a CUSUM with a 1-spread drift adds it up into a "shift" every
# few days (seed 7, one-day start-up: 17 false episodes with 1, 3 with 2; the seasonal baseline the
# stream ran before needed 2 as well). And a day or two of points cannot show a view's ordinary
# extremes: a record under 1 (a CUSUM of 5 spreads, a noise ratio of 5.4) is not trusted (seeds 7 and
# 11, false episodes: 3 and 2 with a one-day start-up and 0.1; 3 and 1 with two days; 1 and 1 with 1;
# with both 1 and 0, seed 7's a sensor spike the stream's health rule keeps out).
SLOW_CADENCE = 3600.0
SLOW_CUSUM_DRIFT = 2.0
SLOW_LEAST_RECORD = 1.0


def for_cadence(base: GeneralParams, cadence_seconds: float) -> GeneralParams:
    """``base`` for a series read every ``cadence_seconds``. What stands for a duration keeps its
    duration at the reference 5-minute cadence, converted to points at this one: the start-up (250
    points, about a day; an hourly series gets ``LEAST_WARMUP``, two days: 250 would be ten), the
    hold-off after a report, the held views' hold; the hour-of-day slots, which get one sample a day at
    an hourly cadence, are ready after ``LEAST_HOUR_SAMPLES`` days rather than 12 samples (a day of
    5-minute readings). Rates per point stay: each is an estimate that needs as many samples at any
    cadence. Hourly or slower: ``SLOW_CUSUM_DRIFT`` and ``SLOW_LEAST_RECORD``. The reference cadence
    gives ``base`` itself, so NAB's figures (the default, unknown cadence) are unchanged."""
    if cadence_seconds <= 0:
        raise ValueError(f"cadence_seconds must be positive, not {cadence_seconds!r}")
    ratio = cadence_seconds / REFERENCE_CADENCE
    if ratio == 1.0:
        return base

    def points(count: int, least: int) -> int:
        return max(min(least, count), round(count / ratio))

    per_slot = max(1.0, 3600.0 / cadence_seconds)  # samples an hour slot gets a day
    params = replace(
        base,
        warmup=points(base.warmup, LEAST_WARMUP),
        settle=points(base.settle, 3),
        hour_min_samples=max(
            min(LEAST_HOUR_SAMPLES, base.hour_min_samples), round(base.hour_min_samples * per_slot / 12)
        ),
        held_steps=points(base.held_steps, 1),
        refractory_steps=points(base.refractory_steps, 1),
    )
    if cadence_seconds >= SLOW_CADENCE:
        params = replace(params, cusum_drift=max(base.cusum_drift, SLOW_CUSUM_DRIFT),
                         least_record=max(base.least_record, SLOW_LEAST_RECORD))  # fmt: skip
    return params


def new_state(params: GeneralParams | None = None) -> dict[str, Any]:
    """A fresh state, to be kept per series (JSON-able)."""
    return {
        "version": STATE_VERSION,
        "params": asdict(params or GeneralParams()),
        "n": 0,
        "slow_level": 0.0,
        "slow_spread": 0.0,
        "fast_level": 0.0,
        "jump_spread": 0.0,  # the typical one-step change (mean absolute)
        "fast_spread": 0.0,  # the recent one-step change
        "cusum_high": 0.0,
        "cusum_low": 0.0,
        "hours": [[0, 0.0, 0.0] for _ in range(2 * HOURS)],  # weekday, weekend hours: n, level, spread
        "recent": [],  # the slow and hour views' last held_steps surprises, oldest first
        "averages": [0.0] * BASE_VIEWS,  # per view: its recent surprises' average
        "records": [0.0] * VIEWS,  # per view: the largest surprise so far
        "since_alarm": -1,  # points since the last alarm, -1 when none is recent
        "episode_peak": 0.0,  # the highest odds score/(1-score) of the current episode
    }


def new_series() -> dict[str, Any]:
    """A fresh state without its parameters, for a caller that keeps many series of one configuration
    (the stream's sensor states): ``score_with`` takes them."""
    state = new_state()
    del state["version"], state["params"]
    state["hours"] = [[0, 0, 0] for _ in range(2 * HOURS)]  # shorter JSON; the same numbers
    return state


def score_value(state: dict[str, Any], value: float, moment: datetime | None = None) -> float:
    """The anomaly score in [0, 1] of ``value`` given the points before it, then learn it (mutates
    ``state``). ``moment`` (local time) feeds the hour-of-day view; without it that view is silent."""
    return score_with(state, _params(state), value, moment)


def resume(state: dict[str, Any], value: float) -> None:
    """Restart the series' last-points view at ``value`` after a gap in it (a sensor silent, or stuck
    and so not learned): the fast level is hours old, and the way back from it is not a jump."""
    if state["n"]:
        state["fast_level"] = value


def expected(state: dict[str, Any], params: GeneralParams, moment: datetime | None) -> float | None:
    """The series' normal for ``moment`` before its next point: its hour of the day's level once that
    slot is ready, else the slow level; None before the first point."""
    if state["n"] == 0:
        return None
    hour = hour_normal(state, params, moment) if moment is not None else None
    return hour if hour is not None else float(state["slow_level"])


def hour_normal(state: dict[str, Any], params: GeneralParams, moment: datetime) -> float | None:
    """The level of ``moment``'s hour slot once it is ready (of the day, or of the week); else None."""
    if state["n"] == 0:
        return None
    samples, level, _ = _slot(state, params, moment)
    return float(level) if samples >= params.hour_min_samples else None


def score_with(
    state: dict[str, Any],
    params: GeneralParams,
    value: float,
    moment: datetime | None = None,
    damped: bool = True,
) -> float:
    """``score_value`` with the parameters given (``state`` may be a ``new_series``). ``damped=False``
    returns the score before the hold-off after a report: for a caller whose own condition makes one
    alert of an episode and must see the episode go on (the stream's rules, with hysteresis)."""
    if not math.isfinite(value):
        raise ValueError(f"value must be a finite number, not {value!r}")
    n = state["n"]
    if n == 0:
        state.update(slow_level=value, fast_level=value, n=1)
        return 0.0
    surprises = _surprises(state, params, value, moment)
    _learn(state, params, value)
    if n >= params.warmup:
        scoring = params.views  # the views that score now, as bits
    elif n >= params.early_warmup:
        scoring = params.views & params.early_views
    else:
        scoring = 0
    score = 0.0
    if scoring:
        for view, surprise in enumerate(surprises):
            if scoring >> view & 1:
                least = params.least_z_record if view in Z_VIEWS else params.least_record
                if view in HOUR_VIEWS:
                    least = max(least, params.hour_least_record)
                if n < params.warmup:
                    least = max(least, params.early_least_z)
                score = max(score, _calibrated(max(state["records"][view], least), params, surprise))
    if n >= params.settle:
        for view, surprise in enumerate(surprises):
            _learn_record(state["records"], view, params, surprise, capped=bool(scoring >> view & 1))
    if not scoring:
        return 0.0
    reported = _damped(state, params, score)
    return reported if damped else score


def _surprises(
    state: dict[str, Any], params: GeneralParams, value: float, moment: datetime | None
) -> list[float]:
    """Every view's surprise at ``value`` (instant, held, then averaged); updates their memories."""
    instant = _views(state, params, value) + [_hour_of_day(state, params, value, moment)]
    held = _held(state["recent"], params, [instant[view] for view in HELD_VIEWS])
    return instant + _averaged(state["averages"], params, instant) + held


def _params(state: dict[str, Any]) -> GeneralParams:
    return _params_of(tuple(state["params"].items()))


@lru_cache(maxsize=64)
def _params_of(items: tuple[tuple[str, Any], ...]) -> GeneralParams:
    return GeneralParams(**dict(items))  # built once per configuration, not once per point


def _directed(z: float, direction: int) -> float:
    return max(z * direction, 0.0) if direction else abs(z)


def _beyond_floor(z: float, params: GeneralParams) -> float:
    return max(0.0, _directed(z, params.direction) - params.z_floor)


def _sigma(spread: float, level: float) -> float:
    """A mean absolute deviation as a standard deviation, never 0 (a flat series)."""
    return max(spread * MAD_TO_SIGMA, 1e-9 + 1e-3 * abs(level))


def _views(state: dict[str, Any], params: GeneralParams, value: float) -> list[float]:
    """The slow, jump, shift and noise views' surprises; updates the CUSUM."""
    z_slow = (value - state["slow_level"]) / _sigma(state["slow_spread"], state["slow_level"])
    z_jump = (value - state["fast_level"]) / _sigma(state["jump_spread"], state["slow_level"])
    step = max(-params.clip, min(params.clip, z_slow))
    keep = 1.0 - params.cusum_leak
    state["cusum_high"] = max(0.0, keep * state["cusum_high"] + step - params.cusum_drift)
    state["cusum_low"] = max(0.0, keep * state["cusum_low"] - step - params.cusum_drift)
    z_shift = (state["cusum_high"] - state["cusum_low"]) / params.cusum_scale
    tiny = 1e-9 + 1e-3 * abs(state["slow_level"])
    noise_change = abs(math.log((state["fast_spread"] + tiny) / (state["jump_spread"] + tiny)))
    noise = max(0.0, noise_change - math.log(params.noise_ratio))
    return [
        _beyond_floor(z_slow, params),
        _beyond_floor(z_jump, params),
        _directed(z_shift, params.direction),
        noise,
    ]


def _hour_of_day(
    state: dict[str, Any], params: GeneralParams, value: float, moment: datetime | None
) -> float:
    """The value's surprise against its hour of the day's level and spread; then learns them."""
    if moment is None:
        return 0.0
    slot = _slot(state, params, moment)
    samples, level, spread = slot
    surprise = 0.0
    if samples >= params.hour_min_samples:
        surprise = _beyond_floor((value - level) / _sigma(spread, level), params)
    alpha = max(params.hour_alpha, 1.0 / (samples + 1))
    limit = _clip_at(spread, params, samples > 2)
    clipped = max(-limit, min(limit, value - level))
    slot[0] = samples + 1
    slot[1] = level + alpha * clipped
    slot[2] = spread + alpha * (abs(clipped) - spread)
    return surprise


def _slot(state: dict[str, Any], params: GeneralParams, moment: datetime) -> list[Any]:
    """The moment's hour slot: its hour of the day, weekdays and weekends apart, or of the week."""
    hours = state["hours"]
    if not params.weekly:
        return hours[moment.hour + (HOURS if moment.weekday() >= 5 else 0)]
    if len(hours) < 7 * HOURS:  # a new series: one slot per hour of the week
        hours[:] = [[0, 0, 0] for _ in range(7 * HOURS)]
    return hours[moment.weekday() * HOURS + moment.hour]


def _held(recent: list[list[float]], params: GeneralParams, surprises: list[float]) -> list[float]:
    """Each surprise held over the last ``held_steps`` points (their least): a departure that lasts.
    A spike's huge record does not mask a later level shift, a smaller but lasting surprise."""
    recent.append(surprises)
    if len(recent) > params.held_steps:
        del recent[0]
    if len(recent) < params.held_steps:
        return [0.0] * len(surprises)
    return [min(point[view] for point in recent) for view in range(len(surprises))]


def _averaged(averages: list[float], params: GeneralParams, surprises: list[float]) -> list[float]:
    for view, surprise in enumerate(surprises):
        averages[view] += params.smooth_alpha * (surprise - averages[view])
    return list(averages)


def _clip_at(spread: float, params: GeneralParams, ready: bool) -> float:
    return params.clip * max(spread * MAD_TO_SIGMA, 1e-12) if ready else math.inf


def _learn(state: dict[str, Any], params: GeneralParams, value: float) -> None:
    """Learn the point, Huber-clipped; the rates start at 1/n (a plain mean of the first points)."""
    n = state["n"]
    slow_alpha = max(params.slow_alpha, 1.0 / (n + 1))
    limit = _clip_at(state["slow_spread"], params, n > 2)
    clipped = max(-limit, min(limit, value - state["slow_level"]))
    state["slow_level"] += slow_alpha * clipped
    state["slow_spread"] += slow_alpha * (abs(clipped) - state["slow_spread"])
    jump_alpha = max(params.jump_alpha, 1.0 / (n + 1))
    jump = abs(value - state["fast_level"])
    jump_limit = _clip_at(state["jump_spread"], params, n > 2)
    state["jump_spread"] += jump_alpha * (min(jump, jump_limit) - state["jump_spread"])
    state["fast_spread"] += max(params.noise_alpha, 1.0 / (n + 1)) * (jump - state["fast_spread"])
    state["fast_level"] += params.fast_alpha * (value - state["fast_level"])
    state["n"] = n + 1


def _learn_record(
    records: list[float], view: int, params: GeneralParams, surprise: float, capped: bool
) -> None:
    record = records[view]
    if not capped or record <= 0.0:
        records[view] = max(record, surprise)
    else:
        records[view] = max(record, min(surprise, params.record_cap * record))


def _calibrated(record: float, params: GeneralParams, surprise: float) -> float:
    """``r^k / (1 + r^k)`` with ``r`` the surprise over the view's record: 0.5 at a new record."""
    ratio = (surprise / record) ** params.record_power
    return ratio / (1.0 + ratio)


def _damped(state: dict[str, Any], params: GeneralParams, score: float) -> float:
    """One report per episode: after an alarm, the next ``refractory_steps`` scores are damped, unless
    a point's odds beat the episode's peak ``breakthrough`` times (a far bigger event: news again)."""
    since = state["since_alarm"]
    in_episode = 0 <= since < params.refractory_steps
    state["since_alarm"] = since + 1 if in_episode else -1
    odds = min(score / (1.0 - score), MAX_ODDS) if score < 1.0 else MAX_ODDS  # finite: JSON has no inf
    if in_episode:
        peak = state["episode_peak"]
        state["episode_peak"] = max(peak, odds)
        if odds <= params.breakthrough * peak:
            return score * params.refractory_factor
    if score >= params.alarm_level:
        state["since_alarm"] = 0
        state["episode_peak"] = odds
    return score
