"""The API's PostgreSQL connections: one pool per API process, opened at startup and closed at shutdown,
that every route reading the history store borrows from (``GET /v1/history``, ``/v1/history/alerts`` and
``/incidents``, ``GET /v1/kpis``, the NGSI-LD temporal reads). A connection per request cost a TCP
connect, authentication and a backend fork each time: more than a sensor's day of history takes to read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import psycopg
from fastapi import HTTPException, Request
from psycopg_pool import ConnectionPool

from ioc.settings import Settings

T = TypeVar("T")

# How long a read waits for a connection (all in use, or the server not answering) before its 503, and
# how long the pool tries to open one before it gives up until the next read asks: a PostgreSQL that
# comes back is used at once, not after a back-off grown over minutes.
WAIT_SECONDS = 5.0
IDLE_SECONDS = 600.0  # an idle connection is closed after this; the pool opens one again when needed
APPLICATION_NAME = "ioc-api"  # how the pool's sessions show in pg_stat_activity


def open_pool(settings: Settings) -> ConnectionPool:
    """The process's pool of ``IOC_DATABASE_POOL_SIZE`` connections at most, none opened until a read
    needs one: an API without a history store starts, serves the live picture, and says 503 on its history
    routes only."""
    pool = ConnectionPool(
        settings.database_address,
        min_size=0,
        max_size=settings.database_pool_size,
        timeout=WAIT_SECONDS,
        reconnect_timeout=WAIT_SECONDS,
        max_idle=IDLE_SECONDS,
        # A connection the server dropped (a PostgreSQL restart) is replaced before a read gets it.
        check=ConnectionPool.check_connection,
        kwargs={"connect_timeout": round(WAIT_SECONDS), "application_name": APPLICATION_NAME},
        name="ioc-api-history",
        open=False,
    )
    pool.open(wait=False)
    return pool


async def on_database(request: Request, query: Callable[[psycopg.Connection], T]) -> T:
    """``query`` on one of the pool's connections, off the event loop, in one transaction (committed when
    it returns: the KPI reads keep the days they computed). Raises psycopg's errors; a pool that gives no
    connection within ``WAIT_SECONDS`` raises ``psycopg_pool.PoolTimeout``, an ``OperationalError``."""
    pool: ConnectionPool = request.app.state.database

    def run() -> T:
        with pool.connection() as connection:
            return query(connection)

    return await asyncio.to_thread(run)


async def read_store(request: Request, query: Callable[[psycopg.Connection], T]) -> T:
    """``on_database``, with the history store's failures as the API's 503s."""
    try:
        return await on_database(request, query)
    except psycopg.errors.UndefinedTable:
        raise HTTPException(503, "The history store has no schema yet: run `ioc db upgrade`.") from None
    except psycopg.OperationalError:
        raise HTTPException(503, "The history store is not reachable.") from None
