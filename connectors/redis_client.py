"""The one place Redis clients are made: the address, the ACL user and password, and TLS from the settings.

``redis_url`` may carry its own user and password (``rediss://ioc:secret@host:6380/0``); otherwise
``redis_username`` and ``redis_password`` are used. A ``rediss://`` address checks the server's certificate
against ``redis_ca_file`` (or ``tls_ca_file``; unset: the system's CAs).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio

from ioc.settings import Settings


def redis_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of ``Redis.from_url(settings.redis_address, …)`` beyond the URL: credentials
    (a user and password in the URL win: redis-py lets the URL override them) and the CA for rediss://."""
    options: dict[str, Any] = {}
    if settings.redis_username:
        options["username"] = settings.redis_username
    if settings.redis_password is not None:
        options["password"] = settings.redis_password.get_secret_value()
    if urlsplit(settings.redis_address).scheme == "rediss":
        # Only for TLS: a plain connection refuses unknown ssl_* arguments.
        ca_file = settings.ca_file("redis")
        options |= {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
        if ca_file:
            options["ssl_ca_certs"] = str(ca_file)
    return options


def connect_async(settings: Settings, **options: Any) -> redis.asyncio.Redis:
    """An asyncio client of the settings' Redis; ``options`` (``decode_responses``, pool sizes, timeouts)
    go to redis-py as they are."""
    return redis.asyncio.Redis.from_url(settings.redis_address, **(redis_options(settings) | options))


def connect_sync(settings: Settings, **options: Any) -> redis.Redis:
    """A blocking client of the settings' Redis (tools, probes, tests); ``options`` as for
    ``connect_async``."""
    return redis.Redis.from_url(settings.redis_address, **(redis_options(settings) | options))
