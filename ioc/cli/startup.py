"""Start-up checks shared by the commands: the card key a process needs, settings that do not validate."""

from __future__ import annotations

import typer
from pydantic import ValidationError
from rich.console import Console

from ioc.privacy import CardKeyMissing, require_card_key
from ioc.settings import Settings

err = Console(stderr=True)


def card_key_or_exit(settings: Settings) -> bytes:
    """The card HMAC key for a command that pseudonymises card ids; without one, a one-line error
    naming IOC_CARD_HMAC_KEY and status 2, before anything is started."""
    try:
        return require_card_key(settings)
    except CardKeyMissing as error:
        err.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True, markup=True)
        raise typer.Exit(2) from None


def settings_error_lines(error: ValidationError) -> list[str]:
    """One line per invalid setting, named by its variable; the values are never shown."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False):
        where = problem["loc"]
        name = f"IOC_{str(where[0]).upper()}" if where else "settings"
        message = str(problem["msg"]).removeprefix("Value error, ")
        lines.append(message if message.startswith(name) else f"{name}: {message}")
    return lines
