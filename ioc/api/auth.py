"""API keys by role and name, from ``IOC_API_KEYS`` and ``IOC_API_KEYS_FILE``.

The server holds each key as its SHA-256 only, and compares the digest of an offered key with every key's
in constant time. A caller is known by the key's name (``alice``, or ``operator-3f9a1c`` for an unnamed
``role:key``): the audit trail and the logs show it, never the key.

A key is read from the ``X-API-Key`` header only, never from the URL: URLs end up in access logs,
proxies' logs and browsers' histories (the console reads its stream with fetch, which sends the header).

Wrong keys are counted per client address (``IOC_AUTH_FAILURES_MAX`` within
``IOC_AUTH_FAILURES_WINDOW_SECONDS``); past the limit, that address gets 429 with Retry-After before any
key it sends is checked, so guessing costs time and a leaked key's prefix cannot be probed quickly.
"""

from __future__ import annotations

import hmac
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader

from ioc.settings import ApiKey, Role, key_digest

log = logging.getLogger(__name__)

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="A key of IOC_API_KEYS (name:role:key or role:key; an operator's role may be scoped to "
    "districts, operator@dong-da+ba-dinh) or of IOC_API_KEYS_FILE.",
)

# Addresses the failure counter remembers at most: an attacker cycling through addresses cannot make it
# grow without bound (the longest-quiet address is forgotten first).
MAX_TRACKED_ADDRESSES = 100_000


def role_of(key: str, keys: list[ApiKey]) -> Role | None:
    caller = identify(key, keys)
    return caller.role if caller else None


@dataclass(frozen=True)
class Caller:
    """Who called: the key's role and its name (what logs, dead letters, rate limits and the audit trail
    show; it reveals nothing of the key), and the districts it is scoped to (None: the whole city)."""

    role: Role
    name: str
    districts: frozenset[str] | None = None

    def sees(self, district: str | None) -> bool:
        """Whether the caller's scope holds ``district`` (a sensor's, an alert's, an incident's). Nothing
        without a district (an ``unregistered:`` sensor) is in a scope."""
        return self.districts is None or district in self.districts


def identify(key: str, keys: list[ApiKey]) -> Caller | None:
    found = None
    # Digests of equal length, so the comparison does not even reveal a key's length.
    offered = key_digest(key)
    for candidate in keys:
        # Check every key, so timing does not tell which key (or how much of one) matched.
        if hmac.compare_digest(candidate.digest, offered):
            found = Caller(candidate.role, candidate.name, candidate.districts)
    return found


class FailedLogins:
    """Wrong keys per client address over a sliding window, in this process."""

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        *,
        max_addresses: int = MAX_TRACKED_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self.max_addresses = max_addresses
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()  # the key checks run in FastAPI's thread pool

    def retry_after(self, address: str) -> float | None:
        """Seconds until ``address`` may send a key again; None when it may now."""
        with self._lock:
            return self._retry_after(address)

    def _retry_after(self, address: str) -> float | None:
        failures = self._failures.get(address)
        if failures is None or len(failures) < self.limit:
            return None
        wait = failures[0] + self.window_seconds - self.clock()
        return wait if wait > 0 else None

    def failed(self, address: str) -> bool:
        """Count a wrong key from ``address``; True when it has now reached the limit."""
        with self._lock:
            failures = self._failures.pop(address, None) or deque(maxlen=self.limit)
            failures.append(self.clock())
            self._failures[address] = failures  # the most recent last: the quietest is forgotten first
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)
            return self._retry_after(address) is not None


def client_address(request: Request) -> str:
    """The client's address: the peer's, or the one a trusted proxy forwarded (uvicorn's
    ``--forwarded-allow-ips``, ``FORWARDED_ALLOW_IPS``)."""
    return request.client.host if request.client else "unknown"


def require(*roles: Role) -> Callable[..., Role]:
    """Dependency: the caller's key must belong to one of ``roles`` (admin may do everything)."""
    allowed = {*roles, Role.admin}

    def check(request: Request, key: str | None = Depends(api_key_header)) -> Role:
        return _caller(request, key, allowed).role

    return check


def require_caller(*roles: Role) -> Callable[..., Caller]:
    """Like ``require``, but gives the caller's key name too (for the audit trail, logs, dead letters and
    rate limits)."""
    allowed = {*roles, Role.admin}

    def check(request: Request, key: str | None = Depends(api_key_header)) -> Caller:
        return _caller(request, key, allowed)

    return check


def _caller(request: Request, key: str | None, allowed: set[Role]) -> Caller:
    if not key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "This endpoint needs an API key in the X-API-Key header.",
        )
    state = request.app.state
    failures: FailedLogins = state.failed_logins
    address = client_address(request)
    if (wait := failures.retry_after(address)) is not None:
        seconds = math.ceil(wait)
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"Too many wrong API keys from {address} (IOC_AUTH_FAILURES_MAX {failures.limit} within "
            f"{failures.window_seconds:g} s); no key from it is checked for {seconds} s.",
            headers={"Retry-After": str(seconds)},
        )
    caller = identify(key, state.api_keys)
    if caller is None:
        if failures.failed(address):
            log.warning(
                "%d wrong API keys from %s within %g s: its keys are refused (429) for a while",
                failures.limit,
                address,
                failures.window_seconds,
            )
        else:
            log.info("a wrong API key from %s", address)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "The API key is not one of IOC_API_KEYS.")
    if caller.role not in allowed:
        needed = " or ".join(sorted(allowed))
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"This endpoint needs the {needed} role; your key has {caller.role}.",
        )
    return caller


TOO_MANY_WRONG_KEYS = (
    "Too many wrong API keys from this client address (IOC_AUTH_FAILURES_MAX within "
    "IOC_AUTH_FAILURES_WINDOW_SECONDS): no key it sends is checked until Retry-After has passed."
)


def document_429(openapi: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with the wrong-key limit's 429 on every operation that checks a key (those
    with a 401); where a 429 is documented already (a rate, a cap), its description says this one too."""
    has_problem = "Problem" in openapi.get("components", {}).get("schemas", {})
    for operations in openapi.get("paths", {}).values():
        for operation in operations.values():
            answers = operation.get("responses", {}) if isinstance(operation, dict) else {}
            if "401" not in answers:
                continue
            if "429" in answers:
                # The document is FastAPI's cached one, edited at every request for it: once only.
                if TOO_MANY_WRONG_KEYS not in answers["429"]["description"]:
                    answers["429"]["description"] += f" Or: {TOO_MANY_WRONG_KEYS}"
                continue
            content: dict[str, Any] = {
                "example": {
                    "detail": "Too many wrong API keys from 203.0.113.7 (IOC_AUTH_FAILURES_MAX 10 within "
                    "300 s); no key from it is checked for 212 s."
                }
            }
            if has_problem:
                content["schema"] = {"$ref": "#/components/schemas/Problem"}
            answers["429"] = {
                "description": TOO_MANY_WRONG_KEYS,
                "headers": {
                    "Retry-After": {
                        "description": "Seconds to wait before retrying.",
                        "schema": {"type": "integer"},
                    }
                },
                "content": {"application/json": content},
            }
    return openapi


Operator = Annotated[Role, Depends(require(Role.operator))]
OperatorCaller = Annotated[Caller, Depends(require_caller(Role.operator))]
Integrator = Annotated[Caller, Depends(require_caller(Role.integrator))]
