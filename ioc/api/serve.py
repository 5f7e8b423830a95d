"""``ioc api``: uvicorn, with two changes for production.

* **Open streams end on SIGTERM.** uvicorn stops accepting connections, then waits for the open ones to
  close; an SSE stream never closes by itself, so ``ioc api`` with a console open never stopped. The
  server here tells the app's streams to end as soon as a stop is asked (they end their responses), and
  after ``GRACEFUL_SHUTDOWN_SECONDS`` cancels whatever request is still running.
* **No secret in the access log.** uvicorn logs each request's path with its query; a query parameter
  that may hold a secret (``key=``, ``token=`` …) is written as ``***``. The API reads keys from a header
  only, but a client may still put one in a URL.
"""

from __future__ import annotations

import logging
from types import FrameType
from urllib.parse import parse_qsl, urlencode

import uvicorn
from fastapi import FastAPI

from ioc.api import stream

GRACEFUL_SHUTDOWN_SECONDS = 3.0  # then uvicorn cancels what is left: stopped within 5 s of SIGTERM
SECRET_PARAMETERS = frozenset({"key", "api_key", "apikey", "x-api-key", "token", "access_token", "ticket"})
REDACTED = "***"


def redact_query(target: str) -> str:
    """``target`` (a path with its query) with the values of secret-looking parameters replaced."""
    path, question, query = target.partition("?")
    if not question:
        return target
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(name.lower() in SECRET_PARAMETERS for name, _ in pairs):
        return target
    redacted = [(name, REDACTED if name.lower() in SECRET_PARAMETERS else value) for name, value in pairs]
    return f"{path}?{urlencode(redacted, safe='*')}"


class RedactQuery(logging.Filter):
    """For uvicorn's access log, whose record args are (client, method, path with query, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_query(args[2]), *args[3:])
        return True


class StreamStoppingServer(uvicorn.Server):
    """A uvicorn server that ends the app's open streams when asked to exit."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.ioc_app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        stream.stop_streams(self.ioc_app)
        super().handle_exit(sig, frame)


def serve(app: FastAPI, host: str, port: int) -> None:
    config = uvicorn.Config(
        app, host=host, port=port, log_level="info", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS
    )  # Config() sets uvicorn's logging up: the filter goes on after it
    logging.getLogger("uvicorn.access").addFilter(RedactQuery())
    StreamStoppingServer(config, app).run()
