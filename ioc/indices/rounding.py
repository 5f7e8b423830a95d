"""The one rounding rule of the published indices: round half up to an integer."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# Binary floats turn 109.5 into 109.49999999999999; six decimals absorb that error and nothing real.
_ABSORB_FLOAT_ERROR_DIGITS = 6
# Farther than this from a half, rounding to six decimals first cannot change the result (it moves a
# value by at most 5e-7), so the plain comparison gives it; nearer, the decimal arithmetic decides.
_CLEAR_OF_HALF = 1e-5
_PLAIN_BELOW = 2.0**52  # where a float still has a fraction to compare


def round_half_up(value: float) -> int:
    """Round to the nearest integer, halves away from zero (59.35 → 59, 109.5 → 110, 65.4 → 65)."""
    if 0.0 <= value < _PLAIN_BELOW:  # the indices' case, and the fast one (NaN fails the test)
        whole = int(value)
        fraction = value - whole
        if abs(fraction - 0.5) > _CLEAR_OF_HALF:
            return whole + 1 if fraction > 0.5 else whole
    exact = Decimal(repr(round(value, _ABSORB_FLOAT_ERROR_DIGITS)))
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
