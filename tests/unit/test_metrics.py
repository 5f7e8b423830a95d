"""GET /metrics' pure parts: latency buckets, the histogram read back from Redis, lag, and the rendering."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from aiokafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from connectors.sinks.redis_metrics import (
    LATENCY_BUCKETS,
    RedisSnapshot,
    bucket_of,
    count_open_alerts,
    histograms_from_fields,
    latency_increments,
    live_latencies,
    split_dead_letters,
)
from ioc.api.metrics import KafkaSnapshot, consumer_lag, families, render, topic_stages
from ioc.feeds import FEEDS
from ioc.settings import Settings
from ioc.windows import PublishedWindow


@pytest.mark.parametrize(
    ("seconds", "bound"),
    [(0, 0.25), (0.25, 0.25), (0.2500001, 0.5), (1, 1), (1.5, 2), (59.9, 60), (300, 300), (301, math.inf)],
)
def test_a_latency_falls_in_the_smallest_bucket_at_least_as_large(seconds, bound):
    assert bucket_of(seconds) == bound


def test_increments_count_each_observation_once_per_bucket_and_clamp_negative_latency():
    counts, sums = latency_increments([("air", 0.1), ("air", 0.7), ("air", -3.0), ("water", 1000.0)])
    assert counts == Counter({"air:0.25": 2, "air:1.0": 1, "air:count": 3, "water:+Inf": 1, "water:count": 1})
    assert sums == pytest.approx({"air:sum": 0.8, "water:sum": 1000.0})


def published(feed: str, last_time: float) -> PublishedWindow:
    return PublishedWindow(feed, "s", "1m", int(last_time) // 60 * 60, 1, last_time, {}, b"{}")


def test_only_live_windows_are_measured_a_backfilled_one_is_left_out():
    now = 1_790_000_000.0
    windows = [
        published("air", now - 2.5),
        published("air", now - 3600),  # an hour old: the bound, still live
        published("air", 1_451_606_400.0),  # 2016-01-01: backfill, ~3e8 s old
        published("water", now + 4),  # a sensor clock ahead of ours: live (counts as 0)
    ]
    assert live_latencies(windows, now) == [("air", 2.5), ("air", 3600.0), ("water", -4.0)]
    counts, sums = latency_increments(live_latencies(windows, now))
    assert counts["air:count"] == 2 and sums["air:sum"] == pytest.approx(3602.5)


def test_the_histogram_read_back_is_cumulative_and_ends_with_the_count():
    counts, sums = latency_increments([("air", 0.1), ("air", 0.7), ("air", 0.9), ("air", 45.0), ("air", 9e9)])
    fields = {name: str(value) for name, value in {**counts, **sums}.items()}
    histogram = histograms_from_fields(fields)["air"]
    assert histogram.count == 5 and histogram.sum == pytest.approx(9e9 + 46.7)
    assert dict(histogram.buckets) == {
        "0.25": 1,
        "0.5": 1,
        "1.0": 3,
        "2.0": 3,
        "5.0": 3,
        "10.0": 3,
        "30.0": 3,
        "60.0": 4,
        "300.0": 4,
        "+Inf": 5,
    }
    assert [label for label, _ in histogram.buckets][-1] == "+Inf" and len(histogram.buckets) == len(
        LATENCY_BUCKETS
    )


def test_open_alerts_count_only_unresolved_records_by_severity_and_feed():
    docs = [
        '{"status": "open", "severity": "warning", "feed": "air"}',
        '{"status": "acknowledged", "severity": "warning", "feed": "air"}',
        '{"status": "open", "severity": "critical", "feed": "water"}',
        '{"status": "resolved", "severity": "critical", "feed": "water"}',  # resolved meanwhile
        None,  # the record went away meanwhile
    ]
    assert count_open_alerts(docs) == Counter({("warning", "air"): 2, ("critical", "water"): 1})


def test_dead_letter_fields_split_on_the_first_colon():
    assert split_dead_letters({"air:late": "2", "traffic:invalid": "7"}) == {
        ("air", "late"): 2,
        ("traffic", "invalid"): 7,
    }


def test_lag_counts_from_the_log_start_where_the_group_committed_nothing():
    a, b, c = (TopicPartition("t", p) for p in range(3))
    end = {a: 10, b: 5, c: 7}
    start = {a: 0, b: 2, c: 0}
    assert consumer_lag(end, start, {a: 10}) == 0 + 3 + 7
    assert consumer_lag(end, start, {a: 4, b: -1, c: 7}) == 6 + 3 + 0


def test_every_consumed_topic_has_one_stage():
    settings = Settings(topic_prefix="x")
    stages = topic_stages(settings)
    assert stages["x.air.raw"] == "pipeline" and stages["x.air.agg.1m"] == "picture"
    assert stages["x.anomalies"] == stages["x.silences"] == stages["x.alert-commands"] == "alerts"
    assert stages["x.alerts.by-district"] == "incidents" and stages["x.alerts"] == "picture"
    assert stages["x.dlq"] == "dead-letters" and stages["x.incidents"] == "picture"


def _parse(body: bytes) -> dict[str, tuple[str, str, dict[str, dict[tuple, float]]]]:
    """{family: (type, help, {sample name: {sorted label pairs: value}})} of a Prometheus text body."""
    parsed: dict[str, tuple[str, str, dict[str, dict[tuple, float]]]] = {}
    for family in text_string_to_metric_families(body.decode()):
        samples: dict[str, dict[tuple, float]] = {}
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
        parsed[family.name] = (family.type, family.documentation, samples)
    return parsed


def _values(parsed, family: str, sample: str | None = None, *names: str) -> dict:
    """{label values in ``names`` order: value} of one sample name of a family."""
    return {
        tuple(dict(labels)[name] for name in names) if len(names) != 1 else dict(labels)[names[0]]: value
        for labels, value in parsed[family][2][sample or family].items()
    }


def test_the_rendering_is_prometheus_text_with_every_family_and_zero_series_for_known_feeds():
    counts, sums = latency_increments([("air", 0.4), ("air", 3.0)])
    redis = RedisSnapshot(
        dead_letters={("air", "invalid"): 2, ("air", "late"): 1},
        latency=histograms_from_fields({k: str(v) for k, v in {**counts, **sums}.items()}),
        open_alerts=Counter({("critical", "air"): 1, ("warning", "traffic"): 2}),
        open_incidents=1,
    )
    kafka = KafkaSnapshot(
        events_in={"air": 12, "traffic": 0}, lag={("pipeline", "x.air.raw"): 3, ("alerts", "x.anomalies"): 0}
    )
    m = _parse(render(families(kafka, redis, 0.01)))
    assert _values(m, "ioc_scrape_kafka_up") == _values(m, "ioc_scrape_redis_up") == {(): 1}
    assert m["ioc_events_in"][0] == "counter"
    assert _values(m, "ioc_events_in", "ioc_events_in_total", "feed") == {"air": 12, "traffic": 0}
    assert _values(m, "ioc_consumer_lag", None, "stage", "topic") == {
        ("pipeline", "x.air.raw"): 3,
        ("alerts", "x.anomalies"): 0,
    }
    assert _values(m, "ioc_dead_letters", "ioc_dead_letters_total", "feed", "reason") == {
        ("air", "invalid"): 2,
        ("air", "late"): 1,
    }
    late = _values(m, "ioc_late_events", "ioc_late_events_total", "feed")
    assert late == {"air": 1, **{feed: 0 for feed in FEEDS if feed != "air"}}
    kind, text, _ = m["ioc_event_to_picture_seconds"]
    assert kind == "histogram" and "live feeds" in text
    buckets = _values(m, "ioc_event_to_picture_seconds", "ioc_event_to_picture_seconds_bucket", "feed", "le")
    assert buckets[("air", "0.25")] == 0 and buckets[("air", "0.5")] == 1 and buckets[("air", "5.0")] == 2
    assert buckets[("air", "+Inf")] == 2 and buckets[("water", "+Inf")] == 0
    assert _values(m, "ioc_event_to_picture_seconds", "ioc_event_to_picture_seconds_count", "feed") == {
        "air": 2,
        **{feed: 0 for feed in FEEDS if feed != "air"},
    }
    sums = _values(m, "ioc_event_to_picture_seconds", "ioc_event_to_picture_seconds_sum", "feed")
    assert sums["air"] == pytest.approx(3.4)
    alerts = _values(m, "ioc_open_alerts", None, "severity", "feed")
    assert len(alerts) == 3 * len(FEEDS) and sum(alerts.values()) == 3
    assert alerts[("critical", "air")] == 1 and alerts[("warning", "traffic")] == 2
    assert alerts[("info", "water")] == 0
    assert _values(m, "ioc_open_incidents") == {(): 1}


def test_a_source_that_did_not_answer_is_left_out_and_flagged():
    m = _parse(render(families(None, None, 3.0)))
    assert _values(m, "ioc_scrape_kafka_up") == _values(m, "ioc_scrape_redis_up") == {(): 0}
    assert set(m) == {"ioc_scrape_kafka_up", "ioc_scrape_redis_up", "ioc_scrape_duration_seconds"}
