"""Rule book 7 ("applied to their next invoices"): the month start sweep applies each invoiced
customer's credit balance to the invoices it just issued, after each saved batch (and after the
one-by-one fallback), as the scheduler with the deadline it fired (rule book 13). SQLite and PostgreSQL.

Figures by hand from the sample catalog: garoon standard, 1,000 yen per user per month + 10% tax.
22 users -> 24,200 yen a month; 10 users -> 11,000. Approved 2026-03-24 -> first month April 2026.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from scheduler_kit import CONTRACTOR, World, jst

from application.actors import SCHEDULER, actor_of
from domain.calendar import Month
from domain.contract import BillingCycle
from domain.errors import ConcurrencyConflict


def _open(w: World, customer: str, users: int) -> uuid.UUID:
    opened = w.app.open_contract(customer, "garoon", "standard", users, CONTRACTOR, jst(2026, 3, 9),
                                 cycle=BillingCycle.MONTHLY)
    w.app.approve(opened.aggregate_id, jst(2026, 3, 24))
    return opened.aggregate_id


def _outstanding(w: World, cid: uuid.UUID, period: str) -> int:
    return next(i.outstanding for i in w.app.get_contract(cid).ledger.invoices.values() if i.period == period)


def _credit(w: World, customer: str) -> int:
    account = w.app.find_account(customer)
    return 0 if account is None else account.credit_balance


def _check(w: World, a: uuid.UUID, b: uuid.UUID, c: uuid.UUID) -> None:
    w.sweep_on(date(2026, 4, 1))  # April invoices: 24,200 / 11,000 / 11,000
    w.app.receive_transfer("CUST-S7A", "ｻﾝﾌﾟﾙ", "BANK-S7A", 29_200, date(2026, 4, 20), jst(2026, 4, 20))
    w.app.receive_transfer("CUST-S7B", "ｻﾝﾌﾟﾙ", "BANK-S7B", 26_000, date(2026, 4, 20), jst(2026, 4, 20))
    assert (_credit(w, "CUST-S7A"), _credit(w, "CUST-S7B")) == (5_000, 15_000)

    report = w.sweep_on(date(2026, 5, 1))
    assert report.complete and not report.failures
    assert _outstanding(w, a, "2026-05") == 19_200 and _credit(w, "CUST-S7A") == 0  # 24,200 - 5,000
    assert _outstanding(w, b, "2026-05") == 0 and _credit(w, "CUST-S7B") == 4_000  # 15,000 - 11,000
    assert _outstanding(w, c, "2026-05") == 11_000  # no credit: untouched
    paid = [e for e in w.app.events.get(a) if type(e).__name__ == "PaymentReceived"][-1]
    actor = actor_of(paid)
    assert actor is not None and actor.kind == SCHEDULER and actor.deadline == "month_start 2026-05-01"

    versions = {cid: w.app.get_contract(cid).version for cid in (a, b, c)}
    again = w.sweep_on(date(2026, 5, 1))  # idempotent: nothing applied twice
    assert (again.fired, again.events, again.failures) == (0, 0, [])
    assert {cid: w.app.get_contract(cid).version for cid in (a, b, c)} == versions
    assert (_credit(w, "CUST-S7A"), _credit(w, "CUST-S7B")) == (0, 4_000)

    w.sweep_on(date(2026, 6, 1))  # June's 11,000 takes B's 4,000 left -> 7,000
    assert _outstanding(w, b, "2026-06") == 7_000 and _credit(w, "CUST-S7B") == 0


def test_rule_book_7_month_start_batch_applies_credit_to_the_new_invoices(store: Callable[..., World]) -> None:
    w = store()
    _check(w, _open(w, "CUST-S7A", 22), _open(w, "CUST-S7B", 10), _open(w, "CUST-S7C", 10))


def test_rule_book_7_one_by_one_month_start_applies_credit_too(store: Callable[..., World]) -> None:
    """Batches of one contract still save per batch; contracts that fail to load go one by one
    (``_handle_one``): credit is applied on both paths."""
    w = store(batch_size=1)
    ids = [_open(w, "CUST-S7A", 22), _open(w, "CUST-S7B", 10), _open(w, "CUST-S7C", 10)]
    w.app.get_contracts = lambda _ids: {}  # type: ignore[method-assign]  # every contract via the single path
    _check(w, *ids)


def test_rule_book_7_a_failed_credit_step_is_retried_by_the_next_sweep(store: Callable[..., World]) -> None:
    """The 05-01 batch issues May's 24,200 but its credit step conflicts: the invoice stays issued,
    the 5,000 credit waits. The next sweep (06:00 -> 07:00) retries it: 19,200 outstanding, credit 0,
    recorded as the scheduler's credit retry; a third sweep stores nothing."""
    w = store()
    a = _open(w, "CUST-S7D", 22)
    w.sweep_on(date(2026, 4, 1))
    w.app.receive_transfer("CUST-S7D", "ｻﾝﾌﾟﾙ", "BANK-S7D", 29_200, date(2026, 4, 20), jst(2026, 4, 20))
    real, failing = w.app.apply_credit_balance, [True]

    def flaky(customer_number: str, at: datetime) -> Any:
        if failing and failing.pop():
            raise ConcurrencyConflict("rule book 3", "the aggregate was changed concurrently", None)
        return real(customer_number, at)

    w.app.apply_credit_balance = flaky  # type: ignore[method-assign]
    report = w.sweep_on(date(2026, 5, 1))
    assert report.complete and not report.failures and report.by_kind["month_start"] == 1
    assert _outstanding(w, a, "2026-05") == 24_200 and _credit(w, "CUST-S7D") == 5_000

    retry = w.sweep_on(date(2026, 5, 1), hour=7)
    assert retry.credit_retried == 1 and not retry.failures
    assert _outstanding(w, a, "2026-05") == 19_200 and _credit(w, "CUST-S7D") == 0  # 24,200 - 5,000
    paid = [e for e in w.app.events.get(a) if type(e).__name__ == "PaymentReceived"][-1]
    actor = actor_of(paid)
    assert actor is not None and actor.kind == SCHEDULER and actor.deadline == "credit_retry 2026-05-01"

    version = w.app.get_contract(a).version
    assert w.sweep_on(date(2026, 5, 1), hour=8).credit_retried == 0
    assert w.app.get_contract(a).version == version


def test_rule_book_10_and_7_erasure_waits_while_a_credit_balance_is_owed_then_goes(
        store: Callable[..., World]) -> None:
    """Rule book 10 ("kept ... while anything is owed") both ways. garoon standard x 22, April to June
    2026 (ended 06-30 by notice): 3 x 24,200 = 72,600 paid on 06-10 by one transfer of 77,600 -> 5,000
    credit owed to the customer. The records period of the last invoice (06-01, fiscal year to
    2027-03-31, return filed by 2027-05-31, + 7 years) ends 2034-05-31: the 2034-06-01 sweep holds the
    erasure and lists it for an operator; the operator refunds it on 2034-06-10; the next sweep erases,
    dated 2034-06-10 (the last day the credit was owed), and the payer data of the customer's transfer goes with it.
    On the way (rule book 7 item 2): April, due 05-31, was paid 06-10: 06-01..06-09 = 9 days of Art. 9.4
    interest, floor(24200 x 0.145 x 9 / 365) = floor(86.5) = 86 yen, billed on the interest invoice the
    07-01 end issues and paid from the credit at once: 5,000 - 86 = 4,914 left to refund."""
    w = store()
    cid = _open(w, "CUST-S7E", 22)
    w.app.notice_termination(cid, Month(2026, 6), jst(2026, 5, 1))
    w.sweep_on(date(2026, 6, 1))
    out = w.app.receive_transfer("CUST-S7E", "ｻﾝﾌﾟﾙ", "BANK-S7E", 77_600, date(2026, 6, 10), jst(2026, 6, 10))
    assert out.transfer.credit == 5_000 and _credit(w, "CUST-S7E") == 5_000  # 77,600 - 72,600
    w.sweep_on(date(2026, 7, 1))
    assert w.app.get_contract(cid).ended_on == date(2026, 6, 30)
    interest = [i for i in w.app.get_contract(cid).ledger.invoices.values() if i.kind == "interest"]
    assert [(i.total, i.issued_on, i.outstanding) for i in interest] == [(86, date(2026, 7, 1), 0)]
    assert _credit(w, "CUST-S7E") == 4_914

    held = w.sweep_on(date(2034, 6, 1))
    assert not held.failures and [(h.aggregate_id, h.kind, h.due_on) for h in held.held] == [
        (cid, "contractor_data_erasure", date(2034, 6, 1))]
    assert "credit balance owed to the customer 4914 yen" in held.held[0].error
    assert "ContractorDataErased" not in w.names(cid) and w.app.get_contract(cid).contractor == CONTRACTOR

    w.clock.set(jst(2034, 6, 10))
    w.app.refund_credit_balance("CUST-S7E", 4_914, "refunded to the customer's bank account", jst(2034, 6, 10))
    done = w.sweep_on(date(2034, 6, 10), hour=12)
    assert done.held == [] and not done.failures
    assert w.event(cid, "ContractorDataErased").erased_on == date(2034, 6, 10)
    assert w.app.get_transfer(out.transfer.id).payer_erased_on == date(2034, 6, 10)
