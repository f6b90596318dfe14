"""Rule book 7 ("an excess becomes the customer's credit balance, applied to their next invoices"):
every command that issues invoices applies the customer's credit balance to them (``credit_after_issue``
after ``_issuing_command``; the sweep after each month start batch, tests/scheduler/test_sweep_credit.py),
idempotently, on the in-memory store, SQLite and PostgreSQL; a failed step is retried by the sweep.

Figures by hand from the sample catalog: garoon standard, 1,000 yen per user per month + 10% tax.
22 users -> 22,000 + 2,200 = 24,200 yen a month; 10 users -> 10,000 + 1,000 = 11,000 yen.
Approved 2026-03-24 -> first month April 2026 (Art. 8.1).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from application.actors import SCHEDULER, Actor, acting_as, actor_of
from application.service import CommandResult, ContractsApplication
from application.settlement import CREDIT_RETRIES
from domain.calendar import JST, Month
from domain.contract import BillingCycle
from domain.errors import ConcurrencyConflict

CONTRACTOR = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo"}


def jst(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, tzinfo=JST).astimezone(UTC)


def contract(app: ContractsApplication, customer: str, users: int) -> uuid.UUID:
    opened = app.open_contract(customer, "garoon", "standard", users, CONTRACTOR, jst(2026, 3, 9),
                               cycle=BillingCycle.MONTHLY)
    app.approve(opened.aggregate_id, jst(2026, 3, 24))
    app.advance(opened.aggregate_id, Month(2026, 4))
    return opened.aggregate_id


def period(app: ContractsApplication, contract_id: uuid.UUID, name: str):  # type: ignore[no-untyped-def]
    return next(i for i in app.get_contract(contract_id).ledger.invoices.values() if i.period == name)


def credit(app: ContractsApplication, customer: str) -> int:
    account = app.find_account(customer)
    return 0 if account is None else account.credit_balance


def test_rule_book_7_credit_of_5000_pays_part_of_the_next_invoice_of_24200(app: ContractsApplication) -> None:
    """April 24,200 paid with 29,200 -> 5,000 credit. The command that issues May's invoice (here the
    scheduler's month start, one command) applies it: 24,200 - 5,000 = 19,200 outstanding, credit 0."""
    cid = contract(app, "CUST-7A", 22)
    app.receive_transfer("CUST-7A", "ｻﾝﾌﾟﾙ", "BANK-7A-1", 29_200, date(2026, 4, 20), jst(2026, 4, 20))
    assert credit(app, "CUST-7A") == 5_000

    actor = Actor.scheduler("month_start", date(2026, 5, 1))
    with acting_as(actor):
        result = app.advance(cid, Month(2026, 5))
    may = period(app, cid, "2026-05")
    assert (may.paid, may.outstanding) == (5_000, 19_200)
    assert [(p.amount, p.source, p.paid_on) for p in may.payments] == [(5_000, "credit_balance", date(2026, 5, 1))]
    assert credit(app, "CUST-7A") == 0
    assert result.version == app.get_contract(cid).version  # the answer is the contract after the credit step
    applied = [e for e in app.events.get(cid) if type(e).__name__ == "PaymentReceived"][-1]
    recorded = actor_of(applied)
    assert recorded is not None and recorded.kind == SCHEDULER and recorded.deadline == "month_start 2026-05-01"

    # idempotent: re-running applies nothing twice and stores nothing
    version = app.get_contract(cid).version
    assert app.apply_credit_to_new_invoices(["CUST-7A", "CUST-7A"], jst(2026, 5, 1, 0)) == []
    assert app.advance(cid, Month(2026, 5)).events == 0
    assert app.get_contract(cid).version == version and period(app, cid, "2026-05").outstanding == 19_200


def test_rule_book_7_credit_larger_than_the_invoice_leaves_the_rest(app: ContractsApplication) -> None:
    """April 11,000 paid with 26,000 -> 15,000 credit. May's 11,000 is paid in full from it; 4,000 stays."""
    cid = contract(app, "CUST-7B", 10)
    app.receive_transfer("CUST-7B", "ｻﾝﾌﾟﾙ", "BANK-7B-1", 26_000, date(2026, 4, 20), jst(2026, 4, 20))
    assert credit(app, "CUST-7B") == 15_000
    app.advance(cid, Month(2026, 5))
    may = period(app, cid, "2026-05")
    assert (may.paid, may.outstanding) == (11_000, 0)
    assert credit(app, "CUST-7B") == 4_000
    assert app.apply_credit_to_new_invoices(["CUST-7B"], jst(2026, 5, 1, 0)) == []  # nothing open: nothing twice
    assert credit(app, "CUST-7B") == 4_000

    app.advance(cid, Month(2026, 6), jst(2026, 6, 3))  # June's 11,000: the 4,000 left pays part of it -> 7,000
    june = period(app, cid, "2026-06")
    assert (june.outstanding, credit(app, "CUST-7B")) == (7_000, 0)
    assert [p.paid_on for p in june.payments] == [date(2026, 6, 3)]  # an operator's run: as of its instant


def test_rule_book_7_customers_without_credit_are_skipped(app: ContractsApplication) -> None:
    """No account (never paid) and an account with 0 credit: nothing stored, nothing refused."""
    cid = contract(app, "CUST-7C", 10)
    app.receive_transfer("CUST-7C", "ｻﾝﾌﾟﾙ", "BANK-7C-1", 11_000, date(2026, 4, 20), jst(2026, 4, 20))
    result = app.advance(cid, Month(2026, 5))
    assert [type(e).__name__ for e in app.events.get(cid, gt=result.version - result.events)] == [
        "Renewed", "InvoiceIssued"]  # no credit step stored anything
    assert app.apply_credit_to_new_invoices(["CUST-7C", "NO-SUCH-CUSTOMER"], jst(2026, 5, 1, 0)) == []
    assert period(app, cid, "2026-05").outstanding == 11_000


def test_rule_book_7_a_failed_credit_step_is_pending_and_the_sweep_retry_applies_it(
        app: ContractsApplication, monkeypatch: pytest.MonkeyPatch) -> None:
    """The credit step after an issue conflicts (a concurrent writer): May's 24,200 stays issued and
    unpaid, the customer is pending; the retry applies the 5,000 (19,200 outstanding) once, and a
    second retry stores nothing. A step that keeps failing is retried at most CREDIT_RETRIES times."""
    cid = contract(app, "CUST-7D", 22)
    app.receive_transfer("CUST-7D", "ｻﾝﾌﾟﾙ", "BANK-7D-1", 29_200, date(2026, 4, 20), jst(2026, 4, 20))
    real = app.apply_credit_balance
    failing = {"left": 1}

    def flaky(customer_number: str, at: datetime) -> CommandResult:
        if failing["left"] > 0:
            failing["left"] -= 1
            raise ConcurrencyConflict("rule book 3", "the aggregate was changed concurrently", None)
        return real(customer_number, at)

    monkeypatch.setattr(app, "apply_credit_balance", flaky)
    app.advance(cid, Month(2026, 5))
    assert period(app, cid, "2026-05").outstanding == 24_200 and credit(app, "CUST-7D") == 5_000
    assert app.pending_credit == {"CUST-7D": 0}

    assert len(app.retry_pending_credit(jst(2026, 5, 1, 6))) == 1
    assert period(app, cid, "2026-05").outstanding == 19_200 and credit(app, "CUST-7D") == 0
    assert app.pending_credit == {}
    assert app.retry_pending_credit(jst(2026, 5, 1, 7)) == []

    calls: list[str] = []

    def broken(customer_numbers: list[str], at: datetime) -> list[CommandResult]:
        calls.extend(customer_numbers)
        raise ConcurrencyConflict("rule book 3", "the aggregate was changed concurrently", None)

    monkeypatch.setattr(app, "apply_credit_to_new_invoices", broken)  # keeps failing: bounded
    app.pending_credit["CUST-7D"] = 0
    for _ in range(CREDIT_RETRIES + 2):
        assert app.retry_pending_credit(jst(2026, 5, 2)) == []
    assert app.pending_credit == {} and calls == ["CUST-7D"] * CREDIT_RETRIES
