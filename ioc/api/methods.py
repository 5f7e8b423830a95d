"""A 405's ``Allow`` header lists every method of the path, not only the first route's.

FastAPI makes one route per method (``GET /v1/silences`` and ``POST /v1/silences`` are two), and
Starlette answers a method no route of the path takes with the methods of the first route that matched
the path alone: ``OPTIONS /v1/silences`` said ``Allow: GET``. RFC 9110 (15.5.6) wants every method the
resource supports.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MethodTable = list[tuple[re.Pattern[str], frozenset[str]]]


def method_table(routes: Sequence[BaseRoute]) -> MethodTable:
    """Each route's path pattern and its methods (FastAPI's routes take no HEAD of their own; Starlette's
    plain routes list it beside GET themselves)."""
    table = []
    for context in iter_route_contexts(routes):
        if isinstance(context.original_route, Mount) or not context.methods:
            continue
        table.append((compile_path(context.path)[0], frozenset(context.methods)))
    return table


def methods_of(table: MethodTable, path: str) -> list[str]:
    """Every method of the routes whose path matches ``path``."""
    return sorted({method for pattern, methods in table if pattern.match(path) for method in methods})


class AllowEveryMethod:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes
        self.table: MethodTable | None = None  # built at the first 405: the routes are all added by then

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                if self.table is None:
                    self.table = method_table(self.routes)
                allowed = methods_of(self.table, scope["path"].removeprefix(scope.get("root_path", "")))
                if allowed:
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                    message = message | {"headers": [*headers, (b"allow", ", ".join(allowed).encode())]}
            await send(message)

        await self.app(scope, receive, send_with_allow)
