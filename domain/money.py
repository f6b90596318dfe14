"""Integer yen arithmetic with Decimal; rounding is always down (floor) where the spec says."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal


def floor_yen(amount: Decimal | int) -> int:
    """Round a Decimal amount down to a whole yen (towards minus infinity)."""
    return int(Decimal(amount).to_integral_value(rounding=ROUND_FLOOR))
