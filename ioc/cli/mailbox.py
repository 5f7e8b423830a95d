"""``ioc mailbox``: a development SMTP server that keeps every message in a Maildir, so the routing
example's emails (``deploy/alertmanager``, smarthost 127.0.0.1:2525) can be read without a mail server.
``ioc demo`` starts it beside the local Alertmanager. aiosmtpd comes with the ``dev`` extras."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from ioc.settings import Settings

DEFAULT_PORT = 2525  # the shipped routing example's smtp_smarthost


def mailbox_dir(settings: Settings) -> Path:
    return settings.run_dir / "mailbox"


def mailbox(
    port: Annotated[int, typer.Option(help="Port to listen on, on 127.0.0.1.")] = DEFAULT_PORT,
    directory: Annotated[
        Path | None, typer.Option(help="The Maildir; <IOC_RUN_DIR>/mailbox when not given.")
    ] = None,
) -> None:
    """Receive mail on 127.0.0.1 into a Maildir (one file per message under new/). For development."""
    try:
        from aiosmtpd.controller import Controller
        from aiosmtpd.handlers import Mailbox
    except ImportError:
        raise typer.BadParameter("aiosmtpd is not installed: pip install -e '.[dev]'") from None
    path = directory or mailbox_dir(Settings())
    for part in ("tmp", "new", "cur"):  # a Maildir's; aiosmtpd makes them only when the folder is new
        (path / part).mkdir(parents=True, exist_ok=True)
    controller = Controller(Mailbox(str(path)), hostname="127.0.0.1", port=port)
    controller.start()
    typer.echo(f"mailbox: SMTP on 127.0.0.1:{port}, messages in {path}/new")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
