"""``ioc notify``: the live picture's alerts to Prometheus Alertmanager (``ioc.notify``)."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Annotated

import typer

from ioc.cli.replay import NamespaceOption, settings_in


def notify(
    loglevel: Annotated[str, typer.Option(help="Log level: debug, info, warning.")] = "info",
    namespace: NamespaceOption = None,
) -> None:
    """Send every unresolved alert to Alertmanager (IOC_ALERTMANAGER_URLS, or `ioc infra`'s), with
    resolutions, and silence there what is acknowledged or silenced here. Run one."""
    from ioc.notify.runner import run

    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    settings = settings_in(namespace)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(settings, stop)

    asyncio.run(main())
