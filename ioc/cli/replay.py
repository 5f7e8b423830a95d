"""``ioc record`` and ``ioc replay``: the raw topics to a recording file, and back, paced by event time."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ioc.feeds import FEEDS
from ioc.settings import Settings

console = Console(stderr=True)

NamespaceOption = Annotated[
    str | None,
    typer.Option(
        help="Isolate under this name: topics <name>.*, Redis keys <name>:*, consumer group <name> "
        "[IOC_NAMESPACE]. Run a worker with the same --namespace to process them."
    ),
]


def settings_in(namespace: str | None) -> Settings:
    """The settings, moved into ``namespace`` when one is given (a bad name is a usage error)."""
    settings = Settings()  # any other setting that does not validate is reported as itself
    if not namespace:
        return settings
    try:
        return Settings(namespace=namespace)
    except ValueError as error:
        raise typer.BadParameter(
            "a namespace is 1–48 of a-z, 0-9, '-' and '_', starting with a letter or digit",
            param_hint="--namespace",
        ) from error


def parse_time(value: str | None, option: str) -> datetime | None:
    """ISO 8601 with an offset, ``now``, or None."""
    if value is None:
        return None
    if value == "now":
        return datetime.now(UTC).replace(microsecond=0)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint=option) from None
    if moment.tzinfo is None:
        raise typer.BadParameter(
            f"{value!r} has no UTC offset; write e.g. 2026-01-15T00:00:00+07:00", param_hint=option
        )
    return moment


def record(
    out: Annotated[Path, typer.Option(help="Recording to write; gzip-compressed when it ends in .gz.")],
    feeds: Annotated[str, typer.Option(help=f"Comma-separated feeds: {', '.join(FEEDS)}.")] = ",".join(FEEDS),
    start: Annotated[
        str | None, typer.Option("--from", help="First event time kept (ISO 8601 with offset).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Events before this event time are kept (ISO 8601 or now).")
    ] = None,
    namespace: NamespaceOption = None,
) -> None:
    """Record the feeds' raw topics to a file: every retained event with its event time in [--from, --to)."""
    from connectors.sinks.recording import record_topics
    from connectors.sources.simulator import parse_feeds
    from ioc.recording import RecordingHeader, write_recording

    settings = settings_in(namespace)
    try:
        chosen = parse_feeds(feeds)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--feeds") from None
    first, last = parse_time(start, "--from"), parse_time(end, "--to")
    with Progress(
        TextColumn("reading"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    ) as bar:
        task = bar.add_task("reading", total=None)
        recorded = record_topics(
            settings,
            chosen,
            first,
            last,
            on_read=lambda read, total: bar.update(task, completed=read, total=total),
        )
    header = RecordingHeader(
        created_at=datetime.now(UTC).replace(microsecond=0),
        source=f"kafka {settings.bootstrap_servers} {settings.topic_prefix}.<feed>.raw",
        feeds=chosen,
        start=first,
        end=last,
    )
    written = write_recording(recorded.events, out, header)
    skipped = f"; {recorded.unreadable:,} unreadable values left out" if recorded.unreadable else ""
    console.print(f"{written:,} events of {recorded.read:,} read written to {out}{skipped}")


def replay(
    recording: Annotated[
        Path,
        typer.Argument(
            exists=True, help="A recording (.jsonl, .jsonl.gz), a feed CSV (air.csv …) or a folder of them."
        ),
    ],
    speed: Annotated[
        str, typer.Option(help="Event-time pace: 1 = as it happened, 10 = ten times faster, max = no pacing.")
    ] = "max",
    shift_to: Annotated[
        str | None,
        typer.Option(help="Move every event in time so the first one is at this time: now or ISO 8601."),
    ] = None,
    namespace: NamespaceOption = None,
    allow_future: Annotated[
        bool,
        typer.Option(
            "--allow-future",
            help="Send events dated more than IOC_FUTURE_TOLERANCE_SECONDS ahead of the wall clock too "
            "(e.g. --shift-to now faster than real time), stamped in Kafka with their event time. "
            "Without it they are refused, listed, and the exit status is 1.",
        ),
    ] = False,
) -> None:
    """Replay a recording into Kafka's raw topics, each sensor's events in event-time order."""
    from connectors.kafka import create_topics
    from connectors.sources.replay import replay as replay_events
    from connectors.sources.replay import replay_plan
    from ioc.city import load_city
    from ioc.recording import RecordedEvent, load_events

    live = Settings()
    settings = settings_in(namespace)
    if namespace and namespace in (live.topic_prefix, live.redis_prefix, live.worker_id):
        raise typer.BadParameter(f"{namespace!r} is the live system's own name", param_hint="--namespace")
    pace = _speed(speed)
    target = parse_time(shift_to, "--shift-to")
    try:
        header, loaded = load_events(recording, load_city(settings.city))
    except ValueError as error:  # RecordingError, or a CSV row the feed model rejects
        raise typer.BadParameter(str(error), param_hint="RECORDING") from None
    events = replay_plan(loaded, target)
    if not events:
        console.print(f"{recording} holds no events")
        return
    create_topics(settings)
    where = f"namespace {namespace}" if namespace else f"topics {settings.topic_prefix}.<feed>.raw"
    console.print(
        f"Replaying {len(events):,} events ({', '.join(header.feeds)}; event time "
        f"{events[0].event_time.isoformat()} → {events[-1].event_time.isoformat()}) into {where}"
    )
    began = time.monotonic()
    with Progress(
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[at]}"),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("replaying", total=len(events), at="")
        first = events[0].event_time

        def progress(acknowledged: int, event_seconds: float) -> None:
            at = datetime.fromtimestamp(first.timestamp() + event_seconds, first.tzinfo)
            bar.update(task, completed=acknowledged, at=f"event time {at.isoformat()}")

        refused: list[tuple[RecordedEvent, str]] = []
        sent = asyncio.run(
            replay_events(
                events,
                settings,
                speed=pace,
                on_sent=progress,
                allow_future=allow_future,
                on_refused=lambda event, reason: refused.append((event, reason)),
            )
        )
    elapsed = time.monotonic() - began
    rate = f" ({sent / elapsed:,.0f} events/s)" if elapsed > 0 else ""
    if refused:
        event, reason = refused[0]
        console.print(
            f"{len(refused):,} events refused, not sent: dated too far ahead of the wall clock. The first: "
            f"{event.feed} {event.key} dateObserved {reason}. Send them with --allow-future."
        )
    if sent + len(refused) < len(events):
        console.print(
            f"Stopped: {sent:,} of {len(events):,} events acknowledged by Kafka, in {elapsed:.1f} s"
        )
        raise typer.Exit(130)
    console.print(f"{sent:,} events acknowledged by Kafka in {elapsed:.1f} s{rate}")
    if namespace:
        console.print(
            f"Process them: ioc worker --namespace {namespace}; see them: ioc api --namespace {namespace} "
            "--port 8001"
        )
    if refused:
        raise typer.Exit(1)


def _speed(value: str) -> float | None:
    if value == "max":
        return None
    try:
        pace = float(value)
    except ValueError:
        pace = 0.0
    if pace <= 0:
        raise typer.BadParameter(f"{value!r}: give a positive number or max", param_hint="--speed")
    return pace
