"""The one rounding rule of the published indices: round half up to an integer."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# Binary floats turn 109.5 into 109.49999999999999; six decimals absorb that error and nothing real.
_ABSORB_FLOAT_ERROR_DIGITS = 6


def round_half_up(value: float) -> int:
    """Round to the nearest integer, halves away from zero (59.35 → 59, 109.5 → 110, 65.4 → 65)."""
    exact = Decimal(repr(round(value, _ABSORB_FLOAT_ERROR_DIGITS)))
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
