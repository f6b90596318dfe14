"""Helpers for the rule tests of the Contract aggregate (spec 1-10), driven directly in memory.

Imported by the ``test_rules_*`` modules of this folder (pytest puts the folder on ``sys.path``).
Every expected value in the tests is worked out by hand from the spec; nothing here computes
an expectation.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pytest

from domain.calendar import JST, Month
from domain.catalog import Campaign, PricePlan
from domain.contract import BillingCycle, Contract
from domain.errors import DomainError
from domain.invoice_numbers import InvoiceSequence, NumberBook
from domain.invoicing import Issuer
from domain.policy import Policy
from domain.sla import OutageCause, OutageFacts
from infrastructure.catalog_loader import load_catalog
from infrastructure.japanese_holidays import business_calendar

CATALOG = load_catalog()  # the shipped sample catalog (spec 2)
ISSUER = Issuer("テスト運営株式会社", "T7123456789012", "東京都千代田区試験町1-2-3", "billing@example.invalid")
POLICY = Policy(issuer=ISSUER)  # the spec's POLICY defaults, with the operator as issuer (rule book 6.1)
CAL = business_calendar(POLICY)
MONTHLY, ANNUAL = BillingCycle.MONTHLY, BillingCycle.ANNUAL
CONTRACTOR = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo", "contact_email": "a@example.invalid"}


def jst(y: int, m: int, d: int, h: int = 10, mi: int = 0) -> datetime:
    """An aware UTC instant given as Tokyo wall-clock time."""
    return datetime(y, m, d, h, mi, tzinfo=JST).astimezone(UTC)


def utc(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=UTC)


def plan(service: str, grade: str) -> PricePlan:
    return CATALOG.plan(service, grade)


def odd_plan(grade: str = "odd", rank: int = 1, monthly: int = 1235, annual: int = 10001, min_users: int = 1,
             initial_fee: int = 555, campaign: Campaign | None = None) -> PricePlan:
    """A plan of the test-only service ``testsvc`` with prices that do not divide evenly."""
    return PricePlan(service="testsvc", grade=grade, rank=rank, monthly_price=monthly, annual_price=annual,
                     min_users=min_users, trial_days=30, initial_fee=initial_fee, beta=False,
                     sla_eligible=True, store=False, campaign=campaign)


def new_contract(service: str = "kintone") -> Contract:
    return Contract.open(f"CUST-{uuid.uuid4().hex[:10]}", service)


def applied(service: str = "kintone", grade: str = "standard", users: int = 10, cycle: BillingCycle = MONTHLY,
            at: datetime | None = None, price_plan: PricePlan | None = None) -> Contract:
    p = price_plan or plan(service, grade)
    c = new_contract(p.service)
    c.apply(p, cycle, users, CONTRACTOR, at or jst(2026, 3, 24))
    return c


def concluded(service: str = "kintone", grade: str = "standard", users: int = 10, cycle: BillingCycle = MONTHLY,
              approved_at: datetime | None = None, price_plan: PricePlan | None = None) -> Contract:
    at = approved_at or jst(2026, 3, 24)
    c = applied(service, grade, users, cycle, at, price_plan)
    c.approve(at)
    return c


def active(service: str = "kintone", grade: str = "standard", users: int = 10, cycle: BillingCycle = MONTHLY,
           approved_at: datetime | None = None, until: Month | None = None,
           price_plan: PricePlan | None = None, policy: Policy = POLICY) -> Contract:
    """Approved at ``approved_at`` (default 2026-03-24 JST, first month April 2026) and advanced."""
    c = concluded(service, grade, users, cycle, approved_at, price_plan)
    assert c.first_month is not None
    c.advance_to(until or c.first_month, policy, numbers())
    return c


def numbers() -> NumberBook:
    """A book drawing from a fresh in-memory sequence (these tests look at one contract at a time;
    numbering across contracts is tested in ``test_rules_invoices``)."""
    return NumberBook(POLICY.invoice_number_format, ISSUER.registration_number,
                      lambda scope: InvoiceSequence.start(ISSUER.registration_number, scope))


def trial(service: str = "kintone", grade: str = "standard", users: int = 10,
          at: datetime | None = None) -> Contract:
    c = new_contract(service)
    c.start_trial(plan(service, grade), users, CONTRACTOR, at or jst(2026, 3, 2))
    return c


def names(events: Sequence[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


def invoice(c: Contract, period: str) -> Any:
    """The period invoice of a period, e.g. ``"2026-04"`` or ``"2026-05..2027-04"`` (not an upgrade,
    interest invoice, correction or credit note)."""
    found = [i for i in c.ledger.invoices.values() if i.period == period and i.kind in ("monthly", "annual")]
    assert len(found) == 1, f"no single invoice for {period}: {[i.period for i in c.ledger.invoices.values()]}"
    return found[0]


def upgrade_invoices(c: Contract) -> list[Any]:
    return sorted((i for i in c.ledger.invoices.values() if i.kind == "upgrade"), key=lambda i: i.issued_on)


def lines(inv: Any) -> dict[str, int]:
    """Invoice lines as {kind: amount}."""
    out: dict[str, int] = {}
    for line in inv.lines:
        out[line.kind] = out.get(line.kind, 0) + line.amount
    return out


def outage(service: str, started_at: datetime, ended_at: datetime,
           cause: OutageCause = OutageCause.PROVIDER_NETWORK) -> OutageFacts:
    return OutageFacts(uuid.uuid4(), service, started_at, ended_at, cause)


def summary(c: Contract) -> tuple[Any, ...]:
    """Everything a replay must reproduce."""
    return (
        c.version, c.state, c.plan.grade if c.plan else None, c.users, c.cycle, c.first_month,
        c.period_start, c.period_end, c.termination_month, c.termination_reason, c.termination_article,
        c.ended_on, c.retention_until, c.suspension_stop_on, c.extension_days, c.data_deleted,
        tuple((p.effective_month, p.plan.grade, p.users, p.upgrade_charge) for p in c.pending_changes),
        tuple(sorted(c.overdue)), tuple(sorted((str(k), v.decided) for k, v in c.claims.items())),
        tuple(sorted((str(i.invoice_id), i.period, i.total, i.outstanding, i.refunded)
                     for i in c.ledger.invoices.values())),
        tuple(c.ledger.pending_credits),
    )


def assert_refused(c: Contract, command: Callable[[], Any], error: type[DomainError], article: str) -> DomainError:
    """The command raises ``error`` naming ``article`` and leaves the aggregate untouched (no event)."""
    c.collect_events()
    before = summary(c)
    with pytest.raises(error) as info:
        command()
    assert info.value.article == article, info.value
    assert str(info.value).startswith(f"{article}: "), info.value  # the message names the rule (spec 3)
    assert c.collect_events() == [], "a refused command must not record an event"
    assert summary(c) == before
    return info.value


def replay(events: Sequence[Any]) -> Contract:
    aggregate: Any = None
    for e in events:
        aggregate = e.mutate(aggregate)
    assert isinstance(aggregate, Contract)
    return aggregate


def d(y: int, m: int, day: int) -> date:
    return date(y, m, day)
