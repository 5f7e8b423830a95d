"""``GET /metrics``: the pipeline's health in the Prometheus text format.

A scrape reads its numbers fresh: offsets from Kafka (one long-lived admin client and one group-less
consumer on ``app.state``, created at the first scrape; each scrape bounded to ``KAFKA_TIMEOUT`` seconds)
and counters from Redis (``connectors.sinks.redis_metrics``, over the API's pool); ``prometheus_client``
only renders them. Its answer then serves every scrape of the process for ``IOC_METRICS_MAX_AGE_SECONDS``
(``ioc.api.health.Recent``).
When Kafka or Redis does not answer, its metrics are left out and ``ioc_scrape_kafka_up`` /
``ioc_scrape_redis_up`` say 0: the scrape itself still succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.datastructures import State

from connectors.kafka import aiokafka_options
from connectors.sinks.redis_metrics import RedisMetrics, RedisSnapshot, empty_histogram
from ioc.feeds import FEEDS, REGISTRY
from ioc.history.sink import history_group, history_topics
from ioc.models.anomaly import Severity
from ioc.notify.runner import read_report
from ioc.settings import Settings, mask_password

log = logging.getLogger(__name__)

router = APIRouter()

KAFKA_TIMEOUT = 3.0  # seconds a scrape waits for Kafka's offsets
REDIS_TIMEOUT = 3.0
HISTORY = "history"  # the lag stage of the history sink (``ioc history``), a consumer group of its own


def topic_stages(settings: Settings) -> dict[str, str]:
    """Each topic the worker consumes → the stage that reads it (the consumer lag's ``stage`` label).

    One Faust app, one consumer group: Kafka knows a committed offset per topic partition, not per agent,
    so a topic two stages read (silences: the alert manager and the picture) has one lag, here under
    ``alerts``; Faust commits an offset once every agent reading the topic is done with it."""
    stages: dict[str, str] = {}
    for feed in FEEDS:
        stages[settings.raw_topic(feed)] = "pipeline"
        if REGISTRY[feed].neighbourhood:
            stages[settings.neighbours_topic(feed)] = "neighbourhood"
    for topic in (settings.anomalies_topic, settings.alert_commands_topic, settings.silences_topic):
        stages[topic] = "alerts"
    stages[settings.alerts_by_district_topic] = "incidents"
    for feed in FEEDS:
        for spec in settings.windows_of(feed):
            stages[settings.agg_topic(feed, spec.label)] = "picture"
    stages[settings.alerts_topic] = "picture"
    stages[settings.incidents_topic] = "picture"
    stages[settings.dlq_topic] = "dead-letters"
    return stages


@dataclass
class KafkaSnapshot:
    """End offsets summed per raw topic's feed, and the worker group's lag per consumed topic."""

    events_in: dict[str, int] = field(default_factory=dict)  # feed → records ever written
    lag: dict[tuple[str, str], int] = field(default_factory=dict)  # (stage, topic) → records behind


def consumer_lag(
    end: dict[TopicPartition, int], start: dict[TopicPartition, int], committed: dict[TopicPartition, int]
) -> int:
    """Records behind over the partitions of ``end``: end − committed, or end − log start when the group
    has committed nothing there (a new group starts from the earliest record)."""
    behind = 0
    for tp, last in end.items():
        position = committed.get(tp, -1)
        if position < 0:
            position = start.get(tp, 0)
        behind += max(0, last - position)
    return behind


class KafkaOffsets:
    """The API's long-lived Kafka clients for ``/metrics``; created lazily, dropped after a failure."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            admin = AIOKafkaAdminClient(**aiokafka_options(self.settings), client_id="ioc-api-metrics")
            consumer = AIOKafkaConsumer(
                **aiokafka_options(self.settings),
                client_id="ioc-api-metrics",
                group_id=None,
                enable_auto_commit=False,
            )
            try:
                await admin.start()
                await consumer.start()
            except BaseException:
                await _close(admin, consumer)
                raise
            self._admin, self._consumer = admin, consumer
        return self._admin, self._consumer

    async def snapshot(self) -> KafkaSnapshot:
        """The offsets now; raises when Kafka does not answer within ``KAFKA_TIMEOUT`` (then the clients
        are closed and the next scrape starts afresh)."""
        async with self._lock:
            try:
                return await asyncio.wait_for(self._snapshot(), KAFKA_TIMEOUT)
            except BaseException:
                await self.close()
                raise

    async def _snapshot(self) -> KafkaSnapshot:
        admin, consumer = await self._clients()
        stages = topic_stages(self.settings)
        # All topics' metadata, not just ours: naming a missing topic would make the broker create it.
        partitions = {
            described["topic"]: [
                TopicPartition(described["topic"], p["partition"]) for p in described["partitions"]
            ]
            for described in await admin.describe_topics()
            if described["topic"] in stages and described["error_code"] == 0
        }
        every = [tp for tps in partitions.values() for tp in tps]
        if not every:
            return KafkaSnapshot()
        end, start, committed, history = await asyncio.gather(
            consumer.end_offsets(every),
            consumer.beginning_offsets(every),
            admin.list_consumer_group_offsets(self.settings.worker_id),
            admin.list_consumer_group_offsets(history_group(self.settings)),
        )
        committed_at = {tp: meta.offset for tp, meta in committed.items()}
        snapshot = KafkaSnapshot()
        for feed in FEEDS:
            raw = self.settings.raw_topic(feed)
            if raw in partitions:
                snapshot.events_in[feed] = sum(end[tp] for tp in partitions[raw])
        for topic, tps in partitions.items():
            snapshot.lag[(stages[topic], topic)] = consumer_lag(
                {tp: end[tp] for tp in tps}, start, committed_at
            )
        # The history sink (``ioc history``), its own group: once it has committed (a deployment without
        # one would otherwise show its whole retention as lag).
        if history_at := {tp: meta.offset for tp, meta in history.items() if meta.offset >= 0}:
            for topic in history_topics(self.settings):
                if topic in partitions:
                    tps = partitions[topic]
                    snapshot.lag[(HISTORY, topic)] = consumer_lag(
                        {tp: end[tp] for tp in tps}, start, history_at
                    )
        return snapshot

    async def close(self) -> None:
        admin, consumer = self._admin, self._consumer
        self._admin = self._consumer = None
        await _close(admin, consumer)


async def _close(admin: AIOKafkaAdminClient | None, consumer: AIOKafkaConsumer | None) -> None:
    for closing in (admin.close() if admin else None, consumer.stop() if consumer else None):
        if closing is not None:
            with suppress(Exception):
                await asyncio.wait_for(closing, 2.0)


# --- rendering ----------------------------------------------------------------------------------------

LATENCY_HELP = (
    "Seconds from an aggregate's newest event time (lastEventTime) to its write into the Redis picture, "
    "per stored aggregate. Meaningful for live feeds only: replayed or simulated data sent faster than real "
    "time carries old event times."
)


def families(kafka: KafkaSnapshot | None, redis: RedisSnapshot | None, scrape_seconds: float) -> list[Metric]:
    """The metric families of one scrape; ``None``: that source did not answer (its metrics are left out)."""
    out: list[Metric] = []
    kafka_up = GaugeMetricFamily("ioc_scrape_kafka_up", "1 when this scrape read Kafka's offsets, else 0.")
    kafka_up.add_metric([], 1 if kafka is not None else 0)
    redis_up = GaugeMetricFamily("ioc_scrape_redis_up", "1 when this scrape read Redis, else 0.")
    redis_up.add_metric([], 1 if redis is not None else 0)
    duration = GaugeMetricFamily(
        "ioc_scrape_duration_seconds", "Seconds this scrape took to read Kafka and Redis."
    )
    duration.add_metric([], scrape_seconds)
    out += [kafka_up, redis_up, duration]

    if kafka is not None:
        events = CounterMetricFamily(
            "ioc_events_in",
            "Records ever written to the feed's raw topic <prefix>.<feed>.raw (its end offsets summed over "
            "partitions): every event ingested, valid or not.",
            labels=["feed"],
        )
        for feed, number in sorted(kafka.events_in.items()):
            events.add_metric([feed], number)
        lag = GaugeMetricFamily(
            "ioc_consumer_lag",
            "Records of the topic the worker's consumer group (IOC_WORKER_ID) has not committed yet, summed "
            "over partitions; stage: pipeline, alerts, incidents, picture, dead-letters; history: the "
            "history sink's own group (<worker id>-history), once it has committed.",
            labels=["stage", "topic"],
        )
        for (stage, topic), behind in sorted(kafka.lag.items()):
            lag.add_metric([stage, topic], behind)
        out += [events, lag]

    if redis is not None:
        dead = CounterMetricFamily(
            "ioc_dead_letters",
            "Events sent to the dead-letter topic <prefix>.dlq, per feed and reason (counted at least once).",
            labels=["feed", "reason"],
        )
        for (feed, reason), number in sorted(redis.dead_letters.items()):
            dead.add_metric([feed, reason], number)
        late = CounterMetricFamily(
            "ioc_late_events",
            "Events that arrived after every window they fall in had closed (the dead letters of reason "
            "late).",
            labels=["feed"],
        )
        for feed in _feeds(f for f, _ in redis.dead_letters):
            late.add_metric([feed], redis.dead_letters.get((feed, "late"), 0))
        latency = HistogramMetricFamily("ioc_event_to_picture_seconds", LATENCY_HELP, labels=["feed"])
        for feed in _feeds(redis.latency):
            histogram = redis.latency.get(feed) or empty_histogram()
            latency.add_metric([feed], histogram.buckets, histogram.sum)
        alerts = GaugeMetricFamily(
            "ioc_open_alerts",
            "Alerts not resolved yet (open or acknowledged, silenced ones included), per severity and feed.",
            labels=["severity", "feed"],
        )
        severities = [str(s) for s in Severity] + sorted({s for s, _ in redis.open_alerts} - set(Severity))
        for severity in severities:
            for feed in _feeds(f for s, f in redis.open_alerts if s == severity):
                alerts.add_metric([severity, feed], redis.open_alerts.get((severity, feed), 0))
        incidents = GaugeMetricFamily("ioc_open_incidents", "Incidents open now.")
        incidents.add_metric([], redis.open_incidents)
        out += [dead, late, latency, alerts, incidents, *_notify_families(redis.notify)]
    return out


def _notify_families(fields: dict[str, str]) -> list[Metric]:
    """``ioc notify``'s report per Alertmanager; no series until a notifier has run."""
    report = read_report(fields)
    queue = GaugeMetricFamily(
        "ioc_notify_queue",
        "Alert changes ioc notify holds for an Alertmanager, not delivered yet (it is down or refusing).",
        labels=["alertmanager"],
    )
    failures = CounterMetricFamily(
        "ioc_notify_failures",
        "Attempts to reach an Alertmanager that failed, since ioc notify started; it retries with back-off.",
        labels=["alertmanager"],
    )
    delivered = CounterMetricFamily(
        "ioc_notify_delivered",
        "Alerts (openings, changes, re-sends, resolutions) an Alertmanager accepted since ioc notify "
        "started.",
        labels=["alertmanager"],
    )
    up = GaugeMetricFamily(
        "ioc_notify_up",
        "1 when ioc notify's last attempt at an Alertmanager succeeded.",
        labels=["alertmanager"],
    )
    for family, what in ((queue, "queue"), (failures, "failures"), (delivered, "delivered"), (up, "up")):
        for url, number in sorted(report[what].items()):
            family.add_metric([mask_password(url)], number)  # /metrics is public: no basic-auth password
    out: list[Metric] = [queue, failures, delivered, up]
    if "updated" in fields:  # a notifier that stopped leaves its last numbers: this says how old they are
        cycle = GaugeMetricFamily(
            "ioc_notify_last_cycle_timestamp_seconds",
            "Unix time of ioc notify's last cycle; alert when it is more than a minute old.",
        )
        cycle.add_metric([], float(fields["updated"]))
        out.append(cycle)
    return out


def _feeds(seen: object) -> list[str]:
    """The known feeds (so their series exist at 0), then any other seen."""
    return [*FEEDS, *sorted(set(seen) - set(FEEDS))]  # type: ignore[call-overload]


class _Fixed(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics


def render(metrics: list[Metric]) -> bytes:
    """The Prometheus text exposition of ``metrics``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(metrics))
    return generate_latest(registry)


# --- the endpoint ----------------------------------------------------------------------------------------

EXAMPLE = """\
# HELP ioc_scrape_kafka_up 1 when this scrape read Kafka's offsets, else 0.
# TYPE ioc_scrape_kafka_up gauge
ioc_scrape_kafka_up 1.0
# HELP ioc_events_in_total Records ever written to the feed's raw topic <prefix>.<feed>.raw …
# TYPE ioc_events_in_total counter
ioc_events_in_total{feed="air"} 12840.0
# HELP ioc_consumer_lag Records of the topic the worker's consumer group (IOC_WORKER_ID) has not …
# TYPE ioc_consumer_lag gauge
ioc_consumer_lag{stage="pipeline",topic="ioc.air.raw"} 0.0
ioc_consumer_lag{stage="picture",topic="ioc.air.agg.1m"} 3.0
# HELP ioc_dead_letters_total Events sent to the dead-letter topic <prefix>.dlq, per feed and reason …
# TYPE ioc_dead_letters_total counter
ioc_dead_letters_total{feed="air",reason="invalid"} 4.0
ioc_dead_letters_total{feed="air",reason="late"} 1.0
# HELP ioc_late_events_total Events that arrived after every window they fall in had closed …
# TYPE ioc_late_events_total counter
ioc_late_events_total{feed="air"} 1.0
# HELP ioc_event_to_picture_seconds Seconds from an aggregate's newest event time …
# TYPE ioc_event_to_picture_seconds histogram
ioc_event_to_picture_seconds_bucket{feed="air",le="0.25"} 0.0
ioc_event_to_picture_seconds_bucket{feed="air",le="0.5"} 310.0
ioc_event_to_picture_seconds_bucket{feed="air",le="1.0"} 2290.0
ioc_event_to_picture_seconds_bucket{feed="air",le="+Inf"} 2301.0
ioc_event_to_picture_seconds_count{feed="air"} 2301.0
ioc_event_to_picture_seconds_sum{feed="air"} 1544.2
# HELP ioc_open_alerts Alerts not resolved yet (open or acknowledged, silenced ones included) …
# TYPE ioc_open_alerts gauge
ioc_open_alerts{feed="air",severity="critical"} 1.0
# HELP ioc_open_incidents Incidents open now.
# TYPE ioc_open_incidents gauge
ioc_open_incidents 1.0
"""

DESCRIPTION = """
The pipeline's health for a Prometheus scraper, read from Kafka and Redis over connections the API keeps;
one read answers every scrape of an API process for `IOC_METRICS_MAX_AGE_SECONDS` (5 s):

* `ioc_events_in_total{feed}`: records ever written to `<prefix>.<feed>.raw` (Kafka end offsets).
* `ioc_consumer_lag{stage,topic}`: records the worker's consumer group has not committed yet, per topic it
  reads; `stage` is `pipeline` (raw topics), `alerts` (anomalies, alert commands, silences), `incidents`,
  `picture` (aggregates, alerts, incidents into Redis), `dead-letters`; and `history`, the history sink's
  own group (`ioc history`, `<worker id>-history`) per topic it writes to PostgreSQL, once it has committed.
* `ioc_dead_letters_total{feed,reason}` and `ioc_late_events_total{feed}` (the `late` reason).
* `ioc_event_to_picture_seconds{feed}` histogram: event time → written into the Redis picture, per stored
  aggregate. Only meaningful for live feeds: replayed or simulated data has old event times.
* `ioc_open_alerts{severity,feed}` (open or acknowledged), `ioc_open_incidents`.
* `ioc_scrape_kafka_up`, `ioc_scrape_redis_up`: 0 when that source did not answer within 3 s; its metrics
  are then left out (the scrape still answers 200). `ioc_scrape_duration_seconds`.

**No API key needed** (like `/healthz`): scrapers rarely carry one, and the body holds only counts — no
ids, no names, no personal data. Keep the API's port off the internet, or put the path behind the
reverse proxy's own authentication, if even counts are not public.
"""


@router.get(
    "/metrics",
    tags=["health"],
    summary="Prometheus metrics",
    description=DESCRIPTION,
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text exposition format.",
            "content": {"text/plain": {"example": EXAMPLE}},
        }
    },
)
async def metrics(request: Request) -> Response:
    state = request.app.state
    scraped = await state.metrics_body.get(lambda: scrape(state))
    return Response(scraped.body, media_type=CONTENT_TYPE_LATEST)


@dataclass(frozen=True)
class Scrape:
    body: bytes  # the exposition
    complete: bool  # both Kafka and Redis answered


async def scrape(state: State) -> Scrape:
    """Read Kafka and Redis now (over the clients the API keeps) and render the exposition."""
    settings: Settings = state.settings
    began = time.perf_counter()
    kafka_result, redis_result = await asyncio.gather(
        state.kafka_offsets.snapshot(),
        asyncio.wait_for(RedisMetrics(settings, state.redis).snapshot(), REDIS_TIMEOUT),
        return_exceptions=True,
    )
    kafka = None
    if isinstance(kafka_result, KafkaSnapshot):
        kafka = kafka_result
    else:
        log.warning("metrics: Kafka did not answer: %r", kafka_result)
    redis = None
    if isinstance(redis_result, RedisSnapshot):
        redis = redis_result
    else:
        log.warning("metrics: Redis did not answer: %r", redis_result)
    body = render(families(kafka, redis, time.perf_counter() - began))
    return Scrape(body, kafka is not None and redis is not None)
