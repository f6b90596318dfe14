"""Helpers for the application-level tests (imported by ``test_app_*`` modules of this folder)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from application.service import ContractsApplication
from domain.calendar import JST, Month
from domain.contract import BillingCycle, Contract
from domain.errors import DomainError

MONTHLY, ANNUAL = BillingCycle.MONTHLY, BillingCycle.ANNUAL
CONTRACTOR = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo", "contact_email": "a@example.invalid"}


def jst(y: int, m: int, d: int, h: int = 10, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=JST).astimezone(UTC)


def utc(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=UTC)


def customer() -> str:
    return f"CUST-{uuid.uuid4().hex[:12]}"


def monthly_to_june(app: ContractsApplication, contractor: dict[str, str] | None = None) -> uuid.UUID:
    """A monthly kintone standard x 10 contract approved 2026-03-24 (first month April, Art. 8.1),
    its month starts run up to June 2026."""
    cid = app.open_contract(customer(), "kintone", "standard", 10, contractor or CONTRACTOR, jst(2026, 3, 24),
                            cycle=MONTHLY).aggregate_id
    app.approve(cid, jst(2026, 3, 24))
    app.advance(cid, Month(2026, 6))
    return cid


def summary(c: Contract) -> tuple[Any, ...]:
    """State a replay must reproduce: state, plan grade, users, pending changes, termination month,
    dates, claims, and the ledger's invoices (totals, outstanding, refunds) and pending credits."""
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


def replay(events: Sequence[Any]) -> Contract:
    aggregate: Any = None
    for e in events:
        aggregate = e.mutate(aggregate)
    assert isinstance(aggregate, Contract)
    return aggregate


def names(app: ContractsApplication, cid: uuid.UUID) -> list[str]:
    return [type(e).__name__ for e in app.events.get(cid)]


def stored(app: ContractsApplication, cid: uuid.UUID | None = None) -> tuple[int, int]:
    """(last notification id, number of events of ``cid``): both unchanged after a refusal."""
    count = len(list(app.events.get(cid))) if cid is not None else 0
    return app.recorder.max_notification_id() or 0, count


def assert_refused(app: ContractsApplication, cid: uuid.UUID | None, command: Callable[[], Any],
                   error: type[DomainError], article: str) -> DomainError:
    before = stored(app, cid)
    with pytest.raises(error) as info:
        command()
    assert info.value.article == article, info.value
    assert str(info.value).startswith(f"{article}: "), info.value  # the message names the rule (spec 3)
    assert stored(app, cid) == before, "a refused command must store no event"
    return info.value


def invoice(app: ContractsApplication, cid: uuid.UUID, period: str) -> Any:
    found = [i for i in app.get_contract(cid).ledger.invoices.values() if i.period == period]
    assert len(found) == 1, period
    return found[0]


def lines(inv: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in inv.lines:
        out[line.kind] = out.get(line.kind, 0) + line.amount
    return out
