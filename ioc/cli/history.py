"""``ioc db``, ``ioc history`` and ``ioc kpi``: the PostgreSQL history store's schema, the sink that fills it,
and the KPIs it keeps per day."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ioc.cli.replay import NamespaceOption, settings_in

db_app = typer.Typer(
    help="The PostgreSQL history store (IOC_DATABASE_URL, or `ioc infra`'s).", no_args_is_help=True
)
kpi_app = typer.Typer(help="The KPIs kept per local day in the history store.", no_args_is_help=True)
console = Console(stderr=True)


@db_app.command()
def upgrade(namespace: NamespaceOption = None) -> None:
    """Apply the schema migrations the database lacks (`ioc infra up` does it too)."""
    from ioc.history.store import current_version, upgrade

    settings = settings_in(namespace)
    applied = upgrade(settings.database_address)
    version = current_version(settings.database_address)
    if applied:
        console.print(f"applied {', '.join(map(str, applied))}; the schema is at version {version}")
    else:
        console.print(f"the schema is at version {version}: nothing to apply")


def history(
    loglevel: Annotated[str, typer.Option(help="Log level: debug, info, warning.")] = "info",
    namespace: NamespaceOption = None,
) -> None:
    """Write the worker's windows, alert events and incident events from Kafka into PostgreSQL."""
    from ioc.history.sink import run_sink
    from ioc.history.store import upgrade

    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_in(namespace)
    upgrade(settings.database_address)
    run_sink(settings)


def _period(first: str, last: str) -> tuple[date, date]:
    from ioc.kpis.report import MAX_DAYS

    try:
        start, end = date.fromisoformat(first), date.fromisoformat(last)
    except ValueError as error:
        raise typer.BadParameter(f"a day is YYYY-MM-DD: {error}") from None
    if start > end or (end - start).days >= MAX_DAYS:
        raise typer.BadParameter(f"--from must not be after --to, and a period is at most {MAX_DAYS} days")
    return start, end


@kpi_app.command()
def recompute(
    first: Annotated[str, typer.Option("--from", help="First local day, e.g. 2026-12-01.")],
    last: Annotated[str, typer.Option("--to", help="Last local day, included.")],
    namespace: NamespaceOption = None,
) -> None:
    """Compute the period's closed days again from the stored windows and fare taps (their metro trips
    matched again too) and keep them; today is computed on every read."""
    from datetime import UTC, datetime

    from ioc.city import load_city
    from ioc.kpis.days import recompute

    settings = settings_in(namespace)
    start, end = _period(first, last)
    done = recompute(
        settings.database_address,
        load_city(settings.city),
        start,
        end,
        settings.reading_interval_seconds,
        datetime.now(UTC),
    )
    if done:
        console.print(f"recomputed {len(done)} days, {done[0]} to {done[-1]}")
    else:
        console.print("no closed day in the period: nothing kept to recompute (today is computed when read)")


def export(
    first: Annotated[str, typer.Option("--from", help="First local day, e.g. 2026-12-01.")],
    last: Annotated[str, typer.Option("--to", help="Last local day, included.")],
    out: Annotated[Path | None, typer.Option(help="Open-data directory (default IOC_OPEN_DATA_DIR).")] = None,
    namespace: NamespaceOption = None,
) -> None:
    """Write a period's open data (KPIs as JSON and CSV, daily VN_AQI per station, stations as GeoJSON)."""
    from ioc.city import load_city
    from ioc.kpis.export import export_period

    settings = settings_in(namespace)
    start, end = _period(first, last)
    folder = export_period(
        settings.database_address,
        load_city(settings.city),
        start,
        end,
        out or settings.open_data_path,
        settings.reading_interval_seconds,
    )
    for path in sorted(folder.iterdir()):
        console.print(f"{path.stat().st_size:>10,}  {path}")
