"""``ioc``: the one command line. Every process and tool is a subcommand."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress, TextColumn

from ioc.cli.backtest import backtest
from ioc.cli.bridge import bridge_app
from ioc.cli.detect import detect
from ioc.cli.dlq import dlq_app
from ioc.cli.history import db_app, export, history, kpi_app
from ioc.cli.index import index_app
from ioc.cli.infra import infra_app
from ioc.cli.mailbox import mailbox
from ioc.cli.notify import notify
from ioc.cli.picture import picture_app
from ioc.cli.replay import NamespaceOption, parse_time, record, replay, settings_in
from ioc.cli.startup import card_key_or_exit, settings_error_lines
from ioc.feeds import FEEDS
from ioc.settings import Settings

app = typer.Typer(
    name="ioc",
    help="Event-stream backend for a city's Intelligent Operations Centre.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.add_typer(infra_app, name="infra")
app.add_typer(bridge_app, name="bridge")
app.add_typer(dlq_app, name="dlq")
app.add_typer(index_app, name="index")
app.add_typer(picture_app, name="picture")
app.add_typer(db_app, name="db")
app.add_typer(kpi_app, name="kpi")
app.command()(history)
app.command()(export)
app.command()(notify)
app.command()(mailbox)
console = Console(stderr=True)


@app.command()
def worker(
    loglevel: Annotated[str, typer.Option(help="Log level: debug, info, warning.")] = "info",
    namespace: NamespaceOption = None,
) -> None:
    """Run a stream-processing worker (Faust); start several to share the partitions."""
    from faust.worker import Worker

    from connectors.kafka import create_topics
    from streams.app import CHANGELOG_CONFIG, changelog_topics, create_app, tune_garbage_collection

    settings = settings_in(namespace)
    stream_app = create_app(settings)
    create_topics(settings)
    create_topics(settings, changelog_topics(stream_app), CHANGELOG_CONFIG)
    tune_garbage_collection()
    Worker(stream_app, loglevel=loglevel).execute_from_commandline()


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Listen address [IOC_API_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [IOC_API_PORT].")] = None,
    namespace: NamespaceOption = None,
) -> None:
    """Serve the HTTP API (live picture) from Redis; stateless, run as many as needed."""
    from ioc.api import create_app
    from ioc.api.serve import serve

    settings = settings_in(namespace)
    card_key_or_exit(settings)  # ingest pseudonymises transit card ids
    # uvicorn, ending open streams on SIGTERM and keeping secrets out of its access log.
    serve(create_app(settings), host=host or settings.api_host, port=port or settings.api_port)


@app.command()
def simulate(
    speed: Annotated[
        str, typer.Option(help="Event-time pace: 1 = real time, 10 = ten times faster, max = no pacing.")
    ] = "1",
    start: Annotated[str | None, typer.Option(help="First event time (ISO 8601 with offset) or now.")] = None,
    duration: Annotated[
        float | None, typer.Option(help="Seconds of event time to simulate; endless when omitted.")
    ] = None,
    interval: Annotated[
        float | None,
        typer.Option(
            help="Seconds of event time between a sensor's readings, for air, traffic and water; "
            "default per feed: air 60, traffic 300, water 900 (transit taps come as riders do)."
        ),
    ] = None,
    rate: Annotated[float | None, typer.Option(help="Cap on events per second.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same events.")] = 1,
    feeds: Annotated[
        str, typer.Option(help=f"Comma-separated feeds to simulate: {', '.join(FEEDS)}.")
    ] = ",".join(FEEDS),
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write a recording (JSON Lines, gzip when the name ends in .gz; see ioc replay) instead "
            "of producing to Kafka, as fast as possible (needs --duration)."
        ),
    ] = None,
    sensors: Annotated[
        int | None,
        typer.Option(help="Scale the registry up to this many sensors with synthetic copies (load tests)."),
    ] = None,
    scenarios: Annotated[
        str | None,
        typer.Option(
            help="Inject scenarios (needs --duration and --truth): all, or comma-separated kinds: "
            "pollution_episode, stuck_value, spike, dropout, out_of_range, traffic_incident, "
            "water_contamination, transit_surge, gate_offline, and those the feeds bring (their "
            "simulator's SCENARIOS; an unknown kind's error lists them all). Default: none."
        ),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(help="Write the scenarios' ground truth here, one JSON line per scenario."),
    ] = None,
) -> None:
    """Simulate Hanoi's sensor feeds into Kafka (or a JSON Lines file with --out)."""
    from connectors.sources.simulator import city_simulator, parse_feeds
    from connectors.sources.simulator.scale import with_synthetic_sensors
    from ioc.city import load_city
    from ioc.feeds import feed

    settings = Settings()
    try:
        chosen = parse_feeds(feeds)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--feeds") from None
    if out is not None and duration is None:
        raise typer.BadParameter("--out writes a finite file: give --duration too", param_hint="--out")
    if scenarios is not None and (truth is None or duration is None):
        raise typer.BadParameter("scenarios need --truth FILE and --duration", param_hint="--scenarios")
    city = load_city(settings.city)
    city = with_synthetic_sensors(city, sensors) if sensors else city
    first_event = parse_time(start, "--start") or datetime.now(UTC).replace(microsecond=0)
    span = timedelta(seconds=duration) if duration is not None else None
    reading_interval = timedelta(seconds=interval) if interval is not None else None
    # Fare taps (and the scenarios, which may inject some) carry card hashes: they need the key.
    card_ids = any(feed(name).card_ids for name in chosen)
    card_key = card_key_or_exit(settings) if card_ids or scenarios is not None else b""
    source = city_simulator(
        city,
        chosen,
        start=first_event,
        duration=span,
        interval=reading_interval,
        seed=seed,
        card_key=card_key,
        card_key_id=settings.card_hmac_key_id,
    )
    if scenarios is not None:
        from connectors.sources.simulator.scenarios import (
            ScenarioInjector,
            parse_kinds,
            plan_scenarios,
            write_ground_truth,
        )

        try:
            kinds = parse_kinds(scenarios)
            plan = plan_scenarios(
                city, kinds, start=first_event, duration=span, seed=seed, interval=reading_interval
            )
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--scenarios") from None
        write_ground_truth(plan, truth)
        console.print(f"{len(plan)} scenarios planned, ground truth in {truth}")
        source = ScenarioInjector(
            source, plan, city, seed=seed, card_key=card_key, card_key_id=settings.card_hmac_key_id
        )
    if out is not None:
        from ioc.recording import RecordedEvent, RecordingHeader, write_recording

        header = RecordingHeader(
            source=f"ioc simulate --seed {seed}" + (f" --scenarios {scenarios}" if scenarios else ""),
            feeds=chosen,
            start=first_event,
            end=first_event + span,
        )
        written = write_recording(map(RecordedEvent.of, source.events()), out, header)
        console.print(f"{written:,} events written to {out}")
        return

    from connectors.kafka import create_topics
    from connectors.sources.base import run_source

    pace = None if speed == "max" else float(speed)
    create_topics(settings)
    began = time.monotonic()
    # The bar follows event time: full when the whole --duration has been produced.
    with Progress(*Progress.get_default_columns(), TextColumn("{task.fields[sent]}"), console=console) as bar:
        task = bar.add_task("simulating", total=duration, sent="")

        def progress(acknowledged: int, event_seconds: float) -> None:
            bar.update(task, completed=event_seconds, sent=f"{acknowledged:,} events acknowledged by Kafka")

        sent = asyncio.run(run_source(source, settings, speed=pace, rate=rate, on_sent=progress))
    elapsed = time.monotonic() - began
    console.print(f"{sent:,} events acknowledged by Kafka in {elapsed:.1f} s ({sent / elapsed:,.0f}/s)")


@app.command()
def demo(
    interval: Annotated[float, typer.Option(help="Seconds between a simulated sensor's readings.")] = 10,
) -> None:
    """Start Kafka, Redis, a worker, the API and the simulator together; Ctrl-C stops them all."""
    from ioc.demo import run_demo

    run_demo(Settings(), console, interval=interval)


app.command()(backtest)
app.command()(detect)
app.command()(record)
app.command()(replay)


def honour_sigint() -> None:
    """Take SIGINT back when this process was started with it ignored.

    A shell without job control starts its background jobs (``cmd &`` in a script, a CI step) with SIGINT
    ignored, and children inherit that; ``asyncio.run`` installs its clean-stop handler only over Python's
    default one, so ``ioc replay`` (or ``simulate``) ignored Ctrl-C and ``kill -INT`` for good. Every ioc
    command documents SIGINT as its clean stop."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main() -> None:
    honour_sigint()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Client libraries narrate every connection at INFO; keep their warnings only.
    for chatty in ("kafka", "aiokafka", "httpx"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        app()
    except ValidationError as error:
        if error.title != Settings.__name__:
            raise
        # A setting that does not validate: one line per variable, never its value (secrets among them).
        for line in settings_error_lines(error):
            console.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
