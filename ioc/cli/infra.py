"""``ioc infra``: start, stop and inspect the local Kafka, Redis, Mosquitto, PostgreSQL and Alertmanager."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.table import Table

from ioc import infra
from ioc.infra import secure
from ioc.infra.process import ServiceStatus
from ioc.settings import Settings

infra_app = typer.Typer(
    help="Start, stop and inspect the local Kafka, Redis, Mosquitto, PostgreSQL and Alertmanager.",
    no_args_is_help=True,
)

console = Console()
if not console.is_terminal:
    # Piped or captured output has no width to respect; don't fold paths at rich's default 80 columns.
    console = Console(width=200)
err_console = Console(stderr=True)

STATE_STYLE = {"running": "green", "stopped": "red", "external": "cyan"}


class _ProgressHandler(logging.Handler):
    """Shows the manager's progress messages ("fetching jars…", "waiting for the broker…")."""

    def emit(self, record: logging.LogRecord) -> None:
        err_console.print(f"[dim]•[/] {record.getMessage()}", highlight=False)


def _show_progress() -> None:
    logger = logging.getLogger("ioc.infra")
    if not any(isinstance(h, _ProgressHandler) for h in logger.handlers):
        logger.addHandler(_ProgressHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False
    # kafka-python logs every refused connection while the broker boots; the outcome is what matters.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)


def _table(statuses: list[ServiceStatus]) -> Table:
    table = Table("service", "state", "address", "PID", "version", "log file", box=box.SIMPLE_HEAD)
    # Addresses and paths are what people copy from this table: never cut them with "…".
    table.columns[2].no_wrap = True
    table.columns[5].overflow = "fold"
    for s in statuses:
        style = STATE_STYLE.get(s.state, "")
        table.add_row(
            s.name,
            f"[{style}]{s.state}[/]" if style else s.state,
            s.address,
            str(s.pid) if s.pid else "-",
            s.version or "-",
            _short(s.log_file) if s.log_file else "-",
        )
    return table


def _short(path: Path) -> str:
    try:
        return f"~/{path.relative_to(Path.home())}"
    except ValueError:
        return str(path)


def _run(action: Callable[[Settings], list[ServiceStatus]], secured: bool = False) -> None:
    try:
        settings = Settings()
        if secured:
            settings = secure.secured(settings)
        statuses = action(settings)
    except (ValidationError, RuntimeError, TimeoutError, OSError) as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(_table(statuses))
    if secured:
        path = secure.env_file(settings)
        env = secure.masked(secure.client_env(settings))
        err_console.print(
            f"Secured: TLS with the CA {secure.ca_file(settings)}, and a user and password for each server. "
            f"Every ioc process needs this environment (passwords masked here; the file {path}, mode 0600, "
            f"holds them): set -a; . {path}; set +a",
            highlight=False,
            soft_wrap=True,
        )
        console.print("\n".join(f"{name}={value}" for name, value in env.items()), highlight=False)


@infra_app.command()
def up(
    timeout: float = typer.Option(180, help="Seconds to wait for the broker to answer."),
    secured: bool = typer.Option(
        False,
        "--secure",
        help="Kafka (SASL_SSL, SCRAM-SHA-512), Redis (TLS, an ACL user) and Mosquitto (TLS, a password file) "
        "with a CA of this run dir; prints the IOC_… environment clients need (kept in "
        "<run dir>/secure/client.env).",
    ),
) -> None:
    """Start the local Kafka, Redis, Mosquitto, PostgreSQL and Alertmanager (those not already running and
    not external)."""
    _show_progress()
    _run(lambda settings: infra.up(settings, timeout=timeout), secured=secured)


@infra_app.command()
def down() -> None:
    """Stop the local Kafka, Redis, Mosquitto, PostgreSQL and Alertmanager started by `ioc infra up`."""
    _show_progress()
    _run(infra.down)


@infra_app.command()
def status() -> None:
    """Show whether the local Kafka, Redis, Mosquitto, PostgreSQL and Alertmanager are running."""
    _run(infra.status)


@infra_app.command()
def fetch() -> None:
    """Fetch Kafka's jars from Maven Central (and install Redis, Mosquitto, PostgreSQL and Alertmanager
    when missing). Starts nothing."""
    _show_progress()
    _run(infra.fetch)
