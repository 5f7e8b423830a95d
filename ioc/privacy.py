"""Pseudonymisation of personal identifiers: a transit card id becomes a keyed hash at the edge.

A keyed hash (HMAC-SHA256), not a plain hash: card numbers are short and structured, so an unkeyed
digest could be reversed by hashing every possible number. The key id travels with the digest so keys
can rotate without mixing up riders.
"""

from __future__ import annotations

import hashlib
import hmac


def pseudonymise_card(raw: str, key: bytes, key_id: str) -> tuple[str, str]:
    """Return ``(HMAC-SHA256 of the card id as 64 lowercase hex digits, key_id)``."""
    if not key:
        raise ValueError("the card HMAC key is empty")
    digest = hmac.new(key, raw.strip().encode(), hashlib.sha256).hexdigest()
    return digest, key_id
