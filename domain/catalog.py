"""Catalog value objects (spec 2). Prices are integer yen per user.

A ``PricePlan`` is the snapshot of a grade's prices that events carry, so that
replaying history never depends on today's catalog file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from domain.errors import InvalidInput
from domain.invoicing import STANDARD_RATE


@dataclass(frozen=True)
class Campaign:
    """Art. 9.2: campaign prices for the first ``months`` service months, normal price after.

    Monthly contracts pay ``monthly_price`` per user in each campaign month. Annual
    contracts pay ``annual_price`` per user for a term that starts within the campaign
    months (when ``annual_price`` is set).
    """

    monthly_price: int
    months: int
    annual_price: int | None = None


@dataclass(frozen=True)
class PricePlan:
    service: str
    grade: str
    rank: int
    monthly_price: int
    annual_price: int
    min_users: int
    trial_days: int
    initial_fee: int
    beta: bool
    sla_eligible: bool
    store: bool = False
    campaign: Campaign | None = None
    tax_rate: Decimal = STANDARD_RATE  # rule book 6.1: each item names its rate (POLICY default 10%)

    def to_dict(self) -> dict[str, Any]:
        """Same as ``dataclasses.asdict`` (field order kept), without its recursive deep copy:
        every event carrying a plan encodes it. The rate is text (exact, and plain JSON)."""
        data = dict(vars(self))
        if self.campaign is not None:
            data["campaign"] = dict(vars(self.campaign))
        data["tax_rate"] = str(self.tax_rate)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PricePlan:
        """Plans recorded before rates were named carry none: the standard rate applied to them."""
        data = dict(data)
        campaign = data.pop("campaign", None)
        rate = Decimal(str(data.pop("tax_rate", STANDARD_RATE)))
        return cls(**data, campaign=Campaign(**campaign) if campaign else None, tax_rate=rate)


@dataclass(frozen=True)
class Catalog:
    plans: dict[tuple[str, str], PricePlan] = field(default_factory=dict)

    def plan(self, service: str, grade: str) -> PricePlan:
        try:
            return self.plans[(service, grade)]
        except KeyError:
            if not any(s == service for s, _ in self.plans):
                raise InvalidInput("Art. 7", f"unknown service (valid: {', '.join(self.services())})",
                                   "service") from None
            grades = ", ".join(sorted(g for s, g in self.plans if s == service))
            raise InvalidInput("Art. 7", f"unknown grade for this service (valid: {grades})", "grade") from None

    def services(self) -> list[str]:
        return sorted({s for s, _ in self.plans})
