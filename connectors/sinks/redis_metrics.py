"""The metrics the worker keeps in Redis, and what ``GET /metrics`` reads from there.

Keys (all under the configured prefix):
  ``<prefix>:metrics:dead-letters`` hash ``<feed>:<reason>`` → dead letters counted (written by
  ``RedisPicture.count_dead_letters``; ``late`` is the late-events count)
  ``<prefix>:metrics:latency`` hash of the event-to-picture latency histogram, per feed:
  ``<feed>:<le>`` → aggregates stored whose latency fell in that bucket and no lower one (per bucket,
  *not* cumulative: one HINCRBY per observation; the reader adds them up), ``<le>`` formatted as
  Prometheus does (``0.25``, ``1.0``, ``+Inf``); ``<feed>:count`` → observations; ``<feed>:sum`` → their
  seconds (HINCRBYFLOAT). One MULTI/EXEC per batch, so a reader never sees a count without its buckets.
Counters only grow, at least once like any metric (a batch the worker processes again after a crash is
counted again); they are not rebuilt from Kafka when Redis is lost.

The latency of a stored aggregate is the wall-clock time when its write returned minus its
``lastEventTime``: how long the newest event it counts took from the sensor to the picture. Only live
events are measured: an aggregate whose newest event is more than ``LIVE_LATENCY_BOUND_SECONDS`` (an hour)
old when it is stored is backfill (a replay, a recording, a sensor's buffer sent days later, a reading
from 2016) and is left out, so two such readings cannot make the sum ~1e9 s and drown the live feed. Event
time, not the ingest time, is still what is measured: it is on every aggregate already (the hot path adds
one comparison), it covers the sensor-to-edge leg too, and producers that write to Kafka directly stamp
no ingest time. A worker that is behind shows in ``ioc_consumer_lag``, not here. A negative latency (a
sensor clock ahead of ours) counts as 0.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client.utils import floatToGoString
from redis.asyncio import Redis

from ioc.settings import Settings
from ioc.windows import PublishedWindow

# Upper bounds (seconds) of the latency buckets; the last is +Inf.
LATENCY_BUCKETS: tuple[float, ...] = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, math.inf)

# Beyond this an aggregate's newest event is backfill, not live (see the module's docstring): above the
# largest finite bucket (300 s), so a live feed that is minutes behind still lands in +Inf and shows.
LIVE_LATENCY_BOUND_SECONDS = 3600.0

UNRESOLVED_STATUSES = frozenset({"open", "acknowledged"})
_CHUNK = 1000  # alert records fetched per pipeline round trip


def bucket_label(bound: float) -> str:
    """A bucket bound as Prometheus writes ``le``: ``0.25``, ``1.0``, ``+Inf``."""
    return floatToGoString(bound)


def bucket_of(seconds: float, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> float:
    """The smallest bound ≥ ``seconds`` (Prometheus' ``le``: the value is at most the bound)."""
    for bound in buckets:
        if seconds <= bound:
            return bound
    return math.inf


def latency_increments(
    observations: Iterable[tuple[str, float]], buckets: tuple[float, ...] = LATENCY_BUCKETS
) -> tuple[Counter[str], dict[str, float]]:
    """What (feed, seconds) observations add to the latency hash: integer increments per field
    (``<feed>:<le>``, ``<feed>:count``) and float ones (``<feed>:sum``). Negative seconds count as 0."""
    counts: Counter[str] = Counter()
    sums: dict[str, float] = {}
    for feed, seconds in observations:
        seconds = max(0.0, seconds)
        counts[f"{feed}:{bucket_label(bucket_of(seconds, buckets))}"] += 1
        counts[f"{feed}:count"] += 1
        sums[f"{feed}:sum"] = sums.get(f"{feed}:sum", 0.0) + seconds
    return counts, sums


def live_latencies(
    windows: Iterable[PublishedWindow], now: float, bound: float = LIVE_LATENCY_BOUND_SECONDS
) -> list[tuple[str, float]]:
    """(feed, seconds) of each window whose newest event is at most ``bound`` seconds before ``now``
    (epoch seconds): the live ones; backfilled windows are left out."""
    return [(w.feed, now - w.last_time) for w in windows if now - w.last_time <= bound]


@dataclass(frozen=True)
class Histogram:
    """One feed's histogram as Prometheus wants it: cumulative (le, count) pairs ending with +Inf."""

    buckets: list[tuple[str, int]]
    count: int
    sum: float


def histograms_from_fields(
    fields: Mapping[str, str], buckets: tuple[float, ...] = LATENCY_BUCKETS
) -> dict[str, Histogram]:
    """The latency hash read back, per feed: per-bucket counts made cumulative; +Inf is the count."""
    feeds = {name.rpartition(":")[0] for name in fields if name.endswith(":count")}
    result: dict[str, Histogram] = {}
    for feed in sorted(feeds):
        count = int(fields.get(f"{feed}:count", 0))
        running = 0
        cumulative: list[tuple[str, int]] = []
        for bound in buckets:
            label = bucket_label(bound)
            if math.isinf(bound):
                cumulative.append((label, count))
            else:
                running += int(fields.get(f"{feed}:{label}", 0))
                cumulative.append((label, running))
        if not math.isinf(buckets[-1]):
            cumulative.append(("+Inf", count))
        result[feed] = Histogram(cumulative, count, float(fields.get(f"{feed}:sum", 0.0)))
    return result


def empty_histogram(buckets: tuple[float, ...] = LATENCY_BUCKETS) -> Histogram:
    labels = [bucket_label(bound) for bound in buckets]
    if not math.isinf(buckets[-1]):
        labels.append("+Inf")
    return Histogram([(label, 0) for label in labels], 0, 0.0)


def count_open_alerts(documents: Iterable[str | None]) -> Counter[tuple[str, str]]:
    """Unresolved alerts by (severity, feed), from their stored JSON (a missing one is skipped)."""
    counts: Counter[tuple[str, str]] = Counter()
    for text in documents:
        if not text:
            continue
        alert = json.loads(text)
        if alert.get("status") in UNRESOLVED_STATUSES:
            counts[(alert.get("severity", ""), alert.get("feed", ""))] += 1
    return counts


def split_dead_letters(fields: Mapping[str, str]) -> dict[tuple[str, str], int]:
    """The dead-letter hash as {(feed, reason): count}."""
    result: dict[tuple[str, str], int] = {}
    for name, value in fields.items():
        feed, _, reason = name.partition(":")
        result[(feed, reason)] = int(value)
    return result


@dataclass
class RedisSnapshot:
    """What ``GET /metrics`` shows from Redis."""

    dead_letters: dict[tuple[str, str], int] = field(default_factory=dict)
    latency: dict[str, Histogram] = field(default_factory=dict)
    open_alerts: Counter[tuple[str, str]] = field(default_factory=Counter)
    open_incidents: int = 0
    notify: dict[str, str] = field(default_factory=dict)  # ``ioc notify``'s report (ioc.notify.runner)


class RedisMetrics:
    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis

    @property
    def latency_key(self) -> str:
        return self.settings.redis_key("metrics", "latency")

    @property
    def dead_letters_key(self) -> str:
        return self.settings.redis_key("metrics", "dead-letters")

    async def observe_latency(self, windows: Iterable[PublishedWindow], now: datetime) -> int:
        """Add each stored live window's event-to-picture latency (``now`` − its latest event time) to
        the histogram, in one transaction; the number observed (backfilled windows are not)."""
        counts, sums = latency_increments(live_latencies(windows, now.timestamp()))
        if not counts:
            return 0
        async with self.redis.pipeline(transaction=True) as pipe:
            for name, number in counts.items():
                pipe.hincrby(self.latency_key, name, number)
            for name, seconds in sums.items():
                pipe.hincrbyfloat(self.latency_key, name, seconds)
            await pipe.execute()
        return sum(number for name, number in counts.items() if name.endswith(":count"))

    async def snapshot(self) -> RedisSnapshot:
        """Dead letters, the latency histograms, open alerts by (severity, feed), open incidents."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.dead_letters_key)
            pipe.hgetall(self.latency_key)
            pipe.zrange(self.settings.redis_key("alerts", "unresolved"), 0, -1)
            pipe.zcard(self.settings.redis_key("incidents", "unresolved"))
            pipe.hgetall(self.settings.redis_key("notify"))
            dead, latency, alert_ids, incidents, notify = await pipe.execute()
        open_alerts: Counter[tuple[str, str]] = Counter()
        for start in range(0, len(alert_ids), _CHUNK):
            async with self.redis.pipeline(transaction=False) as pipe:
                for alert_id in alert_ids[start : start + _CHUNK]:
                    pipe.hget(self.settings.redis_key("alert", alert_id), "json")
                open_alerts += count_open_alerts(await pipe.execute())
        return RedisSnapshot(
            dead_letters=split_dead_letters(dead),
            latency=histograms_from_fields(latency),
            open_alerts=open_alerts,
            open_incidents=int(incidents),
            notify=notify,
        )
