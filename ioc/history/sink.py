"""``ioc history``: the worker's outputs (window aggregates, alert and incident events), and the fare taps
of the transit raw topic (for boardings and origin–destination flows: window counts know neither line,
direction nor card), from Kafka into the PostgreSQL history store.

A process of its own, one consumer group (``<worker id>-history``): the worker's CPU stays on the
reading path, and the sink can be stopped, restarted or scaled (the partitions are shared) on its own.
Per poll: rows written in one transaction, then the offsets committed, so a crash between the two writes
the batch again, which the store's idempotent writes leave as once.
"""

from __future__ import annotations

import logging
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from kafka import KafkaConsumer

from connectors.kafka import kafka_python_options
from connectors.sinks.picture_writer import aggregate_topics
from ioc.city import load_city
from ioc.history.store import HistoryStore, WindowRow, alert_row, incident_row, tap_row, window_row
from ioc.settings import Settings

log = logging.getLogger(__name__)

POLL_RECORDS = 5000  # records per poll at most: one transaction each
PRUNE_EVERY = 3600.0  # seconds between deletions of windows past their retention
REPORT_EVERY = 30.0  # seconds between progress lines, when something was written


def history_group(settings: Settings) -> str:
    """The sink's consumer group (its committed offsets are its progress, and its lag in ``/metrics``)."""
    return f"{settings.worker_id}-history"


def history_topics(settings: Settings) -> list[str]:
    return [
        *aggregate_topics(settings),
        settings.alerts_topic,
        settings.incidents_topic,
        settings.raw_topic("transit"),
    ]


@dataclass
class Rows:
    windows: list[WindowRow] = field(default_factory=list)
    alerts: list[tuple[Any, ...]] = field(default_factory=list)
    incidents: list[tuple[Any, ...]] = field(default_factory=list)
    taps: list[tuple[Any, ...]] = field(default_factory=list)
    unreadable: int = 0


def rows_of(settings: Settings, records: list[tuple[str, bytes]]) -> Rows:
    """(topic, value) records → the rows they make; a record that does not parse is counted and skipped
    (the worker dead-letters what it cannot read; its outputs parse)."""
    rows = Rows()
    taps_topic, zone = settings.raw_topic("transit"), ZoneInfo(load_city(settings.city).timezone)
    for topic, value in records:
        try:
            if topic == taps_topic:
                rows.taps.append(tap_row(value, zone))
            elif topic == settings.alerts_topic:
                rows.alerts.append(alert_row(value))
            elif topic == settings.incidents_topic:
                rows.incidents.append(incident_row(value))
            else:
                rows.windows.append(window_row(value))
        except (ValueError, KeyError, TypeError):
            rows.unreadable += 1
    return rows


def run_sink(settings: Settings) -> None:
    """Until SIGINT or SIGTERM."""
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    store = HistoryStore(settings.database_address, load_city(settings.city).timezone)
    consumer = KafkaConsumer(
        *history_topics(settings),
        **kafka_python_options(settings),
        group_id=history_group(settings),
        client_id="ioc-history",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=POLL_RECORDS,
    )
    written: Counter[str] = Counter()
    reported = time.monotonic()
    pruned = -PRUNE_EVERY  # at start, then hourly
    log.info(
        "history: %s into PostgreSQL (group %s)", ", ".join(history_topics(settings)), history_group(settings)
    )
    try:
        while not stopping:
            polled = consumer.poll(timeout_ms=500, max_records=POLL_RECORDS)
            records = [
                (tp.topic, r.value) for tp, batch in polled.items() for r in batch if r.value is not None
            ]
            if records:
                rows = rows_of(settings, records)
                store.write(rows.windows, rows.alerts, rows.incidents, rows.taps)
                consumer.commit()
                written.update(
                    windows=len(rows.windows),
                    alerts=len(rows.alerts),
                    incidents=len(rows.incidents),
                    taps=len(rows.taps),
                    unreadable=rows.unreadable,
                )
            if time.monotonic() - pruned >= PRUNE_EVERY:
                if deleted := store.prune(settings.history_retention_days, datetime.now(UTC)):
                    log.info("history: %d windows past their retention deleted", deleted)
                if deleted := store.prune_taps(settings.transit_taps_retention_days, datetime.now(UTC)):
                    log.info("history: %d fare taps past their retention deleted", deleted)
                pruned = time.monotonic()
            if time.monotonic() - reported >= REPORT_EVERY and written:
                log.info(
                    "history: %d windows, %d alert events, %d incident events, %d fare taps written; "
                    "%d unreadable",
                    written["windows"],
                    written["alerts"],
                    written["incidents"],
                    written["taps"],
                    written["unreadable"],
                )
                written, reported = Counter(), time.monotonic()
    finally:
        consumer.close(autocommit=False)
        store.close()
