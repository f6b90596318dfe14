"""SLA: 24-hour outage guarantee (Art. 20), exclusions (Art. 17, 20.2), liability cap (Art. 21.1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from uuid import UUID

from domain.calendar import Month, jst_date


class OutageCause(Enum):
    PROVIDER_NETWORK = "provider_network"  # the only cause that can breach (Art. 20.1)
    SCHEDULED_MAINTENANCE = "scheduled_maintenance"  # Art. 17.1
    EMERGENCY_MAINTENANCE = "emergency_maintenance"  # Art. 17.2.1
    OVERLOAD_OR_ATTACK = "overload_or_attack"  # Art. 17.2.2 / 17.2.3
    PUBLIC_UTILITY = "public_utility"  # Art. 17.2.4
    FORCE_MAJEURE = "force_majeure"  # Art. 17.2.5
    CUSTOMER_EQUIPMENT = "customer_equipment"  # Art. 20.2.2
    NOT_ATTRIBUTABLE = "not_attributable"  # Art. 20.2.3


class Remedy(Enum):
    FEE_REDUCTION = "fee_reduction"  # on the next invoice (POLICY default)
    EXTENSION = "extension"  # service period extended by the credit days
    REFUND = "refund"  # of the breach month's fee


BREACH_AFTER = timedelta(hours=24)


def breach_date(outage_started_at: datetime) -> date:
    """Art. 20.1 / spec 8 breach date: the JST date of the outage's start + 24 hours."""
    return jst_date(outage_started_at + BREACH_AFTER)


@dataclass(frozen=True)
class OutageFacts:
    outage_id: UUID
    service: str
    started_at: datetime
    ended_at: datetime
    cause: OutageCause

    @property
    def duration(self) -> timedelta:
        return self.ended_at - self.started_at

    @property
    def breaches(self) -> bool:
        """Art. 20.1: more than 24 consecutive hours, caused by the provider's network."""
        return self.cause is OutageCause.PROVIDER_NETWORK and self.duration > BREACH_AFTER

    @property
    def breach_date(self) -> date:
        """The JST date of start + 24h (spec 8): ``breach_date``."""
        return breach_date(self.started_at)

    @property
    def credit_days(self) -> int:
        return self.duration // BREACH_AFTER


@dataclass(frozen=True)
class Coverage:
    """What the contract was at the breach: decides Art. 20.2.1 and the fee."""

    trial: bool
    beta: bool
    store: bool
    sla_eligible: bool
    monthly_fee: int | None  # fee of the breach month; None when no paid service that month

    @classmethod
    def of(cls, monthly_fee: int | None, had_trial: bool, beta: bool, store: bool,
           sla_eligible: bool) -> Coverage:
        """The coverage of a month (Art. 20.2.1): a month without a fee of a contract that had a
        trial is a trial month; the plan's flags say beta, store and SLA eligibility."""
        return cls(trial=monthly_fee is None and had_trial, beta=beta, store=store,
                   sla_eligible=sla_eligible, monthly_fee=monthly_fee)

    @property
    def covered(self) -> bool:
        """Art. 20.2.1: trials, beta services and the store service are not covered by the SLA."""
        return not (self.trial or self.beta or self.store or not self.sla_eligible)


def liability_cap(coverage: Coverage) -> int:
    """Art. 21.1 liability cap: one month's fee of the month the damage occurred; zero where
    the SLA does not cover the service (Art. 20.2.1: trials, beta, store)."""
    return (coverage.monthly_fee or 0) if coverage.covered else 0


@dataclass(frozen=True)
class ClaimAssessment:
    eligible: bool
    reason: str | None  # why not, naming the article
    breach_date: date | None
    breach_month: Month | None
    credit_days: int
    minimum: int
    maximum: int
    liability_cap: int


def assess_claim(
    outage: OutageFacts,
    received_on: date,
    proof_of_payment: bool,
    proof_of_breach: bool,
    coverage: Coverage,
    window_days: int = 60,
) -> ClaimAssessment:
    """Eligibility and the allowed credit range of one claim (spec 8)."""
    breach_on = outage.breach_date if outage.duration > BREACH_AFTER else None
    month = Month.of(breach_on) if breach_on else Month.of(jst_date(outage.started_at))
    fee = coverage.monthly_fee or 0
    cap = liability_cap(coverage)
    days = outage.credit_days
    maximum = fee
    minimum = min(maximum, fee * days // month.days)
    reason: str | None = None
    if outage.cause is not OutageCause.PROVIDER_NETWORK:
        reason = f"Art. 20.2 / Art. 17: excluded cause {outage.cause.value}"
    elif outage.duration <= BREACH_AFTER:
        reason = "Art. 20.1: outage not longer than 24 consecutive hours (too short)"
    elif coverage.trial:
        reason = "Art. 20.2.1: trials are not covered"
    elif coverage.store:  # checked before sla_eligible: store grades are never sla_eligible
        reason = "Art. 20.2.1: the store service is not covered"
    elif coverage.beta or not coverage.sla_eligible:
        reason = "Art. 20.2.1: beta services are not covered"
    elif coverage.monthly_fee is None:
        reason = "Art. 20.1: no paid service in the breach month"
    elif breach_on is not None and received_on > breach_on + timedelta(days=window_days):
        reason = f"Art. 20.3: claim received after {window_days} days from the breach date (late claim)"
    elif not (proof_of_payment and proof_of_breach):
        missing = [n for n, ok in (("payment", proof_of_payment), ("breach", proof_of_breach)) if not ok]
        reason = f"Art. 20.3: missing proof of {' and '.join(missing)}"
    if reason is not None:
        return ClaimAssessment(False, reason, breach_on, month, 0, 0, 0, cap)
    return ClaimAssessment(True, None, breach_on, month, days, minimum, maximum, cap)
