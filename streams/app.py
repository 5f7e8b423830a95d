"""Builds the Faust app from the settings. Wiring only: the arithmetic lives in ``ioc``."""

from __future__ import annotations

import gc

import faust

from connectors.kafka import faust_broker_options
from ioc.feeds import FEEDS, REGISTRY
from ioc.settings import Settings
from streams.alerts import register_alert_manager, register_incidents
from streams.checkpointing import install_seek_safe_consumer
from streams.neighbourhood import register_neighbourhood
from streams.picture import register_picture_sinks
from streams.pipeline import register_pipeline_agent


def create_app(settings: Settings) -> faust.App:
    datadir = settings.run_dir / "faust" / settings.worker_id  # not the working directory
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.worker_id,
        **faust_broker_options(settings),  # broker and broker_credentials: TLS and SASL as every client
        store=settings.store,
        datadir=str(datadir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        # A new consumer group (a new namespace) starts from the beginning of every topic.
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # Faust sends each record at once by default (no linger): a request per aggregate. A few
        # milliseconds of linger batch a whole take() batch's outputs into a few requests.
        producer_linger=0.005,
        producer_max_batch_size=256 * 1024,
        broker_session_timeout=settings.worker_session_timeout_seconds,
        broker_commit_interval=settings.worker_commit_interval_seconds,
        broker_heartbeat_interval=settings.worker_session_timeout_seconds / 10,
        web_enabled=False,  # the API is its own process; several workers share one host
        key_serializer="raw",
        value_serializer="raw",
    )
    install_seek_safe_consumer(app)  # before anything creates the app's consumer
    for feed in FEEDS:
        register_pipeline_agent(app, settings, feed)
        if REGISTRY[feed].neighbourhood:
            register_neighbourhood(app, settings, feed)
    register_alert_manager(app, settings)
    register_incidents(app, settings)
    register_picture_sinks(app, settings)
    return app


# Allocations of container objects between two collections of the youngest generation (CPython's default
# 700), then young collections per older one. A worker allocates ~30 containers per event and keeps
# every sensor's state alive: at the defaults the collector ran 1,900 times in a 40,000-event catch-up
# and took 1.3 s of the worker's 10 s of CPU, mostly walking state that never dies. Most garbage here
# has no cycle and is freed by reference counts; cycles are still collected, a full collection every
# ~20 M allocations.
GC_THRESHOLDS = (50_000, 20, 20)


def tune_garbage_collection() -> None:
    """Set the collector up for a long-running worker: what was built before streaming starts (modules,
    the app, rules, the city) is frozen, out of every later collection, and collections are rarer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


# Faust's changelogs: compacted, so a table's topic keeps each key's latest value.
CHANGELOG_CONFIG = {"cleanup.policy": "compact"}


def changelog_topics(app: faust.App) -> list[str]:
    """Every table's changelog topic. ``ioc worker`` creates them before Faust starts: two workers starting
    together would each declare them while the other's consumer subscribes, and a consumer that read one
    as having no partitions stops at its first table write (``PartitionsMismatch``)."""
    return [table.changelog_topic.get_topic_name() for table in app.tables.values()]
