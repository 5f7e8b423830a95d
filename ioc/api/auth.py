"""API keys by role, from ``IOC_API_KEYS``. Keys are compared in constant time and never logged.

A key is read from the ``X-API-Key`` header only, never from the URL: URLs end up in access logs,
proxies' logs and browsers' histories (the console reads its stream with fetch, which sends the header).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader

from ioc.settings import Role

api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="A key from IOC_API_KEYS (role:key pairs)."
)


def role_of(key: str, keys: dict[str, Role]) -> Role | None:
    caller = identify(key, keys)
    return caller.role if caller else None


@dataclass(frozen=True)
class Caller:
    """Who called: the key's role and its id, ``<role>#<n>`` for the n-th key of IOC_API_KEYS.

    The id names a key in logs, dead letters and rate limits without revealing anything about it.
    """

    role: Role
    key_id: str


def identify(key: str, keys: dict[str, Role]) -> Caller | None:
    found = None
    # Digests of equal length, so the comparison does not even reveal a key's length.
    offered = hashlib.sha256(key.encode()).digest()
    for position, (candidate, role) in enumerate(keys.items(), start=1):
        # Check every key, so timing does not tell how much of a key matched.
        if hmac.compare_digest(hashlib.sha256(candidate.encode()).digest(), offered):
            found = Caller(role, f"{role}#{position}")
    return found


def require(*roles: Role) -> Callable[..., Role]:
    """Dependency: the caller's key must belong to one of ``roles`` (admin may do everything)."""
    allowed = {*roles, Role.admin}

    def check(request: Request, key: str | None = Depends(api_key_header)) -> Role:
        return _caller(request, key, allowed).role

    return check


def require_caller(*roles: Role) -> Callable[..., Caller]:
    """Like ``require``, but gives the caller's key id too (for logs, dead letters and rate limits)."""
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
    caller = identify(key, request.app.state.settings.keys_by_value)
    if caller is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "The API key is not one of IOC_API_KEYS.")
    if caller.role not in allowed:
        needed = " or ".join(sorted(allowed))
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"This endpoint needs the {needed} role; your key has {caller.role}."
        )
    return caller


Operator = Annotated[Role, Depends(require(Role.operator))]
OperatorCaller = Annotated[Caller, Depends(require_caller(Role.operator))]
Integrator = Annotated[Caller, Depends(require_caller(Role.integrator))]
