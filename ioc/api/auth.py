"""API keys by role, from ``IOC_API_KEYS``. Keys are compared in constant time and never logged."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader

from ioc.settings import Role

api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="A key from IOC_API_KEYS (role:key pairs)."
)


def role_of(key: str, keys: dict[str, Role]) -> Role | None:
    found = None
    for candidate, role in keys.items():
        # Check every key, so timing does not tell how much of a key matched.
        if hmac.compare_digest(candidate.encode(), key.encode()):
            found = role
    return found


def require(*roles: Role) -> Callable[..., Role]:
    """Dependency: the caller's key must belong to one of ``roles`` (admin may do everything)."""
    allowed = {*roles, Role.admin}

    def check(request: Request, key: str | None = Depends(api_key_header)) -> Role:
        if not key:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "This endpoint needs an API key in the X-API-Key header.",
            )
        role = role_of(key, request.app.state.settings.keys_by_value)
        if role is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "The API key is not one of IOC_API_KEYS.")
        if role not in allowed:
            needed = " or ".join(sorted(allowed))
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"This endpoint needs the {needed} role; your key has {role}."
            )
        return role

    return check


Operator = Annotated[Role, Depends(require(Role.operator))]
