"""``ioc picture``: the Redis live picture, rebuilt from Kafka after Redis lost it."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ioc.cli.replay import NamespaceOption, settings_in
from ioc.settings import mask_password

picture_app = typer.Typer(help="The Redis live picture the API serves.", no_args_is_help=True)
console = Console(stderr=True)


@picture_app.command()
def rebuild(namespace: NamespaceOption = None) -> None:
    """Write every retained window, alert, incident and silence from Kafka into Redis again.

    For when Redis lost the picture (no persistence, a new instance). Safe while workers run: every
    write keeps the newest version. Nothing is published to Kafka, so alert events stay exactly once.
    Dead-letter and latency counters restart from zero, as counters do.
    """
    from connectors.sinks.picture_writer import rebuild_picture

    settings = settings_in(namespace)
    with Progress(
        TextColumn("rebuilding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    ) as bar:
        task = bar.add_task("rebuilding", total=None)

        def progress(read: int, total: int) -> None:
            bar.update(task, completed=read, total=total)

        rebuilt = asyncio.run(rebuild_picture(settings, on_read=progress))
    for topic, read in sorted(rebuilt.items()):
        console.print(f"{read:>10,}  {topic}")
    total = rebuilt.total()
    console.print(f"{total:,} records written into the picture at {mask_password(settings.redis_address)}")
