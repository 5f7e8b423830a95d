"""The one command line, ``ioc``: ``main`` holds the app and the process commands (worker, api, simulate,
demo); each other module is one command group (infra, bridge, dlq, index, detect)."""

from ioc.cli.main import app, main

__all__ = ["app", "main"]
