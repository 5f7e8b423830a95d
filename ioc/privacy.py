"""Pseudonymisation of personal identifiers: a transit card id becomes a keyed hash at the edge.

A keyed hash (HMAC-SHA256), not a plain hash: card numbers are short and structured, so an unkeyed
digest could be reversed by hashing every possible number. The key id travels with the digest so keys
can rotate without mixing up riders.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ioc.settings import Settings


class CardKeyMissing(RuntimeError):
    """A process that pseudonymises card ids was started without ``IOC_CARD_HMAC_KEY``."""


def require_card_key(settings: Settings) -> bytes:
    """The card HMAC key of ``settings``, for a process that sees card ids; ``CardKeyMissing`` (a
    one-line message naming the variable and how to make a key) when it is not set. Checked when such a
    process starts, not at its first card."""
    from ioc.settings import CARD_KEY_HOWTO, CARD_KEY_MIN_HEX

    if settings.card_hmac_key is None:
        raise CardKeyMissing(
            f"IOC_CARD_HMAC_KEY is not set: this process pseudonymises transit card ids and has no default "
            f"key; give it {CARD_KEY_MIN_HEX}+ hexadecimal characters (32 random bytes), {CARD_KEY_HOWTO}"
        )
    return settings.card_hmac_key.get_secret_value().encode()


def pseudonymise_card(raw: str, key: bytes, key_id: str) -> tuple[str, str]:
    """Return ``(HMAC-SHA256 of the card id as 64 lowercase hex digits, key_id)``."""
    if not key:
        raise ValueError("the card HMAC key is empty")
    digest = hmac.new(key, raw.strip().encode(), hashlib.sha256).hexdigest()
    return digest, key_id
