"""Integer yen arithmetic with Decimal; rounding is always down (floor) where the spec says."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal


def floor_yen(amount: Decimal | int) -> int:
    """Round a Decimal amount down to a whole yen (towards minus infinity)."""
    return int(Decimal(amount).to_integral_value(rounding=ROUND_FLOOR))


def tax_on(subtotal: int, rate: Decimal) -> int:
    """Consumption tax on an invoice's taxable subtotal, one rounding per invoice (spec 1)."""
    if subtotal <= 0:
        return 0
    return floor_yen(Decimal(subtotal) * rate)
