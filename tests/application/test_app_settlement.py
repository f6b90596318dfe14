"""Rule book section 7 (Art. 9.3, 9.4, 9.5): bank transfers for a customer, allocation (消込),
fee shortfall, credit balance, reversal, write-offs and the Art. 9.5 proviso, on the in-memory
store, SQLite and PostgreSQL.

Every figure is worked by hand from the sample catalog: garoon standard, 10 users, monthly,
1,000 yen per user -> 10,000 + 10% tax 1,000 = 11,000 yen per month, no initial fee. Approved
2026-03-24 -> first month April 2026 (Art. 8.1). April's invoice is due 2026-05-31, May's 06-30
(POLICY due: last day of the next month).
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from application.service import ContractsApplication
from domain.billing import InvoiceLine
from domain.calendar import JST, Month
from domain.contract import BillingCycle, State
from domain.errors import ConcurrencyConflict, InvalidInput, RuleViolation
from domain.settlement import RULE_FEE_TOLERANCE, RULE_NAMED, RULE_OLDEST_FIRST
from domain.sla import OutageCause

CONTRACTOR = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo"}
CUSTOMER = "CUST-7"
MONTHLY_TOTAL = 11_000


def jst(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, tzinfo=JST).astimezone(UTC)


def contract_with_invoices(app: ContractsApplication, *months: str, service: str = "garoon",
                           customer: str = CUSTOMER) -> uuid.UUID:
    opened = app.open_contract(customer, service, "standard", 10, CONTRACTOR, jst(2026, 3, 9),
                               cycle=BillingCycle.MONTHLY)
    app.approve(opened.aggregate_id, jst(2026, 3, 24))
    for month in months:
        app.advance(opened.aggregate_id, Month.parse(month))
    return opened.aggregate_id


def invoice(app: ContractsApplication, contract_id: uuid.UUID, period: str):  # type: ignore[no-untyped-def]
    return next(i for i in app.get_contract(contract_id).ledger.invoices.values() if i.period == period)


def test_rule_7_one_transfer_pays_two_invoices_oldest_first(app: ContractsApplication) -> None:
    cid = contract_with_invoices(app, "2026-04", "2026-05")
    out = app.receive_transfer(CUSTOMER, "ｶ)ｻﾝﾌﾟﾙﾄﾚｰﾃﾞｨﾝｸﾞ", "BANK-0001", 22_000, date(2026, 5, 20), jst(2026, 5, 20))
    transfer = app.get_transfer(out.transfer.id)
    assert transfer.status == "applied" and transfer.credit == 0
    assert [(a.invoice_id, a.amount, a.rule) for a in transfer.allocations] == [
        (invoice(app, cid, "2026-04").invoice_id, 11_000, RULE_OLDEST_FIRST),
        (invoice(app, cid, "2026-05").invoice_id, 11_000, RULE_OLDEST_FIRST)]
    assert invoice(app, cid, "2026-04").outstanding == 0 and invoice(app, cid, "2026-05").outstanding == 0
    assert invoice(app, cid, "2026-04").payments[0].transfer_id == transfer.id


def test_rule_7_transfers_are_idempotent_on_the_bank_reference_per_customer(app: ContractsApplication) -> None:
    contract_with_invoices(app, "2026-04")
    app.receive_transfer(CUSTOMER, "ｻﾝﾌﾟﾙ", "BANK-0002", 5_000, date(2026, 4, 20), jst(2026, 4, 20))
    with pytest.raises(RuleViolation) as refused:
        app.receive_transfer(CUSTOMER, "ｻﾝﾌﾟﾙ", "BANK-0002", 5_000, date(2026, 4, 20), jst(2026, 4, 21))
    assert refused.value.article == "rule book 7"
    other = contract_with_invoices(app, "2026-04", customer="CUST-8")  # another customer may reuse it
    app.receive_transfer("CUST-8", "ｱﾅｻﾞｰ", "BANK-0002", 1_000, date(2026, 4, 20), jst(2026, 4, 21))
    assert invoice(app, other, "2026-04").outstanding == 10_000


def test_rule_7_a_fee_shortfall_within_the_tolerance_is_written_off(app: ContractsApplication) -> None:
    app.policy = dataclasses.replace(app.policy, transfer_fee_tolerance=440)
    cid = contract_with_invoices(app, "2026-04")
    april = invoice(app, cid, "2026-04").invoice_id
    out = app.receive_transfer(CUSTOMER, "ｻﾝﾌﾟﾙ", "BANK-0003", 11_000 - 440, date(2026, 5, 20), jst(2026, 5, 20),
                               invoice_ids=[april])
    assert [(w.amount, w.rule) for w in app.get_transfer(out.transfer.id).written_off] == [(440, RULE_FEE_TOLERANCE)]
    inv = invoice(app, cid, "2026-04")
    assert (inv.paid, inv.written_off, inv.outstanding) == (10_560, 440, 0)
    assert inv.late_interest(date(2026, 7, 1), app.policy.late_interest_rate) == 0  # paid (and written off) in time


def test_rule_7_art_9_4_a_shortfall_beyond_the_tolerance_stays_open_and_accrues(app: ContractsApplication) -> None:
    app.policy = dataclasses.replace(app.policy, transfer_fee_tolerance=330)
    cid = contract_with_invoices(app, "2026-04")
    app.receive_transfer(CUSTOMER, "ｻﾝﾌﾟﾙ", "BANK-0004", 10_560, date(2026, 5, 20), jst(2026, 5, 20))
    inv = invoice(app, cid, "2026-04")
    assert (inv.paid, inv.written_off, inv.outstanding) == (10_560, 0, 440)
    # Art. 9.4: 440 unpaid from 06-01 to 06-30 (30 days): floor(440 x 0.145 x 30 / 365) = floor(5.24) = 5
    assert inv.late_interest(date(2026, 7, 1), app.policy.late_interest_rate) == 5
    app.mark_overdue(cid, inv.invoice_id, date(2026, 6, 1))  # the Art. 9.5 path runs as before
    assert app.get_contract(cid).overdue == {inv.invoice_id}


def test_rule_7_an_overpayment_is_credit_applied_to_the_next_invoice(app: ContractsApplication) -> None:
    cid = contract_with_invoices(app, "2026-04")
    out = app.receive_transfer(CUSTOMER, "ｻﾝﾌﾟﾙ", "BANK-0005", 15_000, date(2026, 4, 20), jst(2026, 4, 20))
    assert app.get_transfer(out.transfer.id).credit == 4_000  # 15,000 - April's 11,000
    account = app.find_account(CUSTOMER)
    assert account is not None and account.credit_balance == 4_000
    app.advance(cid, Month(2026, 5))  # May's invoice, 11,000: the command issuing it applies the credit
    may = invoice(app, cid, "2026-05")
    assert (may.paid, may.outstanding) == (4_000, 7_000)
    assert [(p.amount, p.source, p.transfer_id) for p in may.payments] == [(4_000, "credit_balance", out.transfer.id)]
    account = app.find_account(CUSTOMER)
    assert account is not None and account.credit_balance == 0
    with pytest.raises(RuleViolation):
        app.apply_credit_balance(CUSTOMER, jst(2026, 5, 3))


def test_rule_7_credit_can_be_refunded_by_an_operator(app: ContractsApplication) -> None:
    contract_with_invoices(app, "2026-04")
    app.receive_transfer(CUSTOMER, "ｻﾝﾌﾟﾙ", "BANK-0006", 12_000, date(2026, 4, 20), jst(2026, 4, 20))
    with pytest.raises(RuleViolation):
        app.refund_credit_balance(CUSTOMER, 1_001, "customer asked", jst(2026, 4, 21))
    with pytest.raises(InvalidInput):
        app.refund_credit_balance(CUSTOMER, 1_000, " ", jst(2026, 4, 21))
    app.refund_credit_balance(CUSTOMER, 1_000, "customer asked for the excess back", jst(2026, 4, 21))
    account = app.find_account(CUSTOMER)
    assert account is not None and (account.credit_balance, account.refunded) == (0, 1_000)


def test_rule_7_art_9_4_9_5_reversal_after_a_lifted_suspension(app: ContractsApplication) -> None:
    """April unpaid: overdue 06-01, noticed 06-14 with stop 06-28 (14 + 14 days, rule book 7). A
    transfer of 22,000 on 06-20 pays April and May and lifts the suspension; it bounces on 06-25:
    April (past due) is overdue again, the suspension comes back with its stop date 06-28, May (due
    06-30) is simply unpaid. Late interest on April as of 07-01 counts 06-01..06-30 on 11,000 as if
    nothing had been paid: floor(11000 x 0.145 x 30 / 365) = floor(131.09) = 131 (it would be
    floor(11000 x 0.145 x 19 / 365) = 83 had the transfer stood)."""
    cid = contract_with_invoices(app, "2026-04", "2026-05", "2026-06")
    april = invoice(app, cid, "2026-04")
    app.mark_overdue(cid, april.invoice_id, date(2026, 6, 1))
    app.notice_suspension(cid, date(2026, 6, 14))
    assert app.get_contract(cid).suspension_stop_on == date(2026, 6, 28)
    out = app.receive_transfer(CUSTOMER, "ｻﾝﾌﾟﾙ", "BANK-0007", 22_000, date(2026, 6, 20), jst(2026, 6, 20))
    lifted = app.get_contract(cid)
    assert lifted.state is State.ACTIVE and lifted.suspension_stop_on is None
    assert invoice(app, cid, "2026-04").late_interest(date(2026, 7, 1), app.policy.late_interest_rate) == 83

    app.reverse_transfer(out.transfer.id, "returned by the bank (振込組戻し)", date(2026, 6, 25), jst(2026, 6, 25))
    back = app.get_contract(cid)
    assert back.state is State.SUSPENSION_NOTICED and back.suspension_stop_on == date(2026, 6, 28)
    assert back.overdue == {april.invoice_id}
    april_now, may_now = invoice(app, cid, "2026-04"), invoice(app, cid, "2026-05")
    assert (april_now.paid, april_now.outstanding, may_now.outstanding) == (0, 11_000, 11_000)
    assert [(p.amount, p.source) for p in april_now.payments] == [(11_000, "transfer"), (-11_000, "reversal")]
    assert april_now.late_interest(date(2026, 7, 1), app.policy.late_interest_rate) == 131
    assert app.get_transfer(out.transfer.id).status == "reversed"
    with pytest.raises(RuleViolation):
        app.reverse_transfer(out.transfer.id, "again", date(2026, 6, 26), jst(2026, 6, 26))
    app.stop_for_non_payment(cid, date(2026, 6, 28))  # Art. 9.5: the stop date as first notified
    ended = app.get_contract(cid)
    assert ended.state is State.TERMINATED and ended.ended_on == date(2026, 6, 28)


def test_rule_7_a_transfer_after_termination_still_settles(app: ContractsApplication) -> None:
    cid = contract_with_invoices(app, "2026-04", "2026-05", "2026-06")
    app.mark_overdue(cid, invoice(app, cid, "2026-04").invoice_id, date(2026, 6, 1))
    app.notice_suspension(cid, date(2026, 6, 14))
    app.stop_for_non_payment(cid, date(2026, 6, 28))
    app.receive_transfer(CUSTOMER, "ｻﾝﾌﾟﾙ", "BANK-0008", 33_000, date(2026, 7, 10), jst(2026, 7, 10))
    ended = app.get_contract(cid)
    # the principal is settled; the late interest it accrued is billed at once on an interest invoice
    # (rule book 6, Art. 9.4: no next invoice will come): April's 11,000 due 05-31, paid 07-10 (39 days)
    # floor(11000 x 0.145 x 39 / 365) = 170; May's due 06-30 (9 days) floor(11000 x 0.145 x 9 / 365) = 39
    interest = [i for i in ended.ledger.invoices.values() if i.kind == "interest"]
    assert ended.state is State.TERMINATED and [i.total for i in interest] == [209]
    assert ended.ledger.outstanding() == 209 and interest[0].issued_on == date(2026, 7, 10)
    assert sorted(line.amount for line in interest[0].lines) == [39, 170]
    assert all(line.tax_rate is None for line in interest[0].lines)  # damages: no consumption tax


@pytest.mark.parametrize("replace", ["void", "correct"])
def test_rule_book_6_1_art_9_4_rule_book_8_a_void_or_correction_on_an_ended_contract_settles_at_once(
        app: ContractsApplication, replace: str) -> None:
    """garoon standard x 10 (10,000 + 1,000 tax a month). April (due 05-31) paid 06-30: 29 days late ->
    floor(11,000 x 0.145 x 29 / 365) = 126. A 50-hour June outage: 2 credit days, minimum
    floor(10,000 x 2 / 30) = 666 as a fee reduction. Termination noticed 06-10 (June deadline 06-23): July
    is the last month. July: 10,000 - 666 = 9,334 + floor(933.4) = 933 tax + 126 interest = 10,393. The
    contract ends 07-31. July is voided (or corrected to its fee alone) on 08-05: no next invoice will come,
    so what July billed by rule is settled by the same command (rule book 6: interest invoice; rule book 8:
    refund with a credit note on the invoice of the breach month): 666 + 66 = 732 on June, and 126."""
    cid = contract_with_invoices(app, "2026-04", "2026-05", "2026-06")
    april = invoice(app, cid, "2026-04")
    app.record_payment(cid, april.invoice_id, 11_000, date(2026, 6, 30), jst(2026, 6, 30))
    app.notice_termination(cid, None, jst(2026, 6, 10))
    outage = app.record_outage("garoon", jst(2026, 6, 10, 9), jst(2026, 6, 12, 11), OutageCause.PROVIDER_NETWORK,
                               jst(2026, 6, 12, 12)).aggregate_id
    claim, _ = app.claim_sla(cid, outage, jst(2026, 6, 20), True, True, "ticket 42")
    app.decide_claim(cid, app.claim_id(cid, outage), None, None, jst(2026, 6, 22))
    app.advance(cid, Month(2026, 8))
    assert app.get_contract(cid).state is State.TERMINATED
    july = invoice(app, cid, "2026-07")
    assert july.total == 10_393 and [(x.kind, x.amount) for x in july.lines if x.kind != "tax"] == [
        ("base_fee", 10_000), ("sla_credit", -666), ("late_interest", 126)]
    if replace == "void":
        app.void_invoice(cid, july.invoice_id, "issued in error", jst(2026, 8, 5))
    else:
        app.correct_invoice(cid, july.invoice_id, [InvoiceLine(
            "base_fee", "Art. 9.1 base fee", "garoon standard 2026-07 x 10 users", 10_000, 10, 1_000,
            Decimal("0.10"))], "wrong description", jst(2026, 8, 5))
    ended = app.get_contract(cid)
    issued = [i for i in ended.ledger.invoices.values() if i.issued_on == date(2026, 8, 5)]
    assert [(i.kind, i.total, i.due_on) for i in issued if i.kind != "correction"] == [
        ("sla_refund", 732, date(2026, 8, 5)), ("interest", 126, date(2026, 9, 30))]
    (refund,) = [i for i in issued if i.kind == "sla_refund"]
    assert refund.original is not None and refund.original["number"] == invoice(app, cid, "2026-06").number
    assert ended.ledger.pending_credits == [] and invoice(app, cid, "2026-04").interest_billed == 126
    assert [i.number for i in issued] == [f"INV-2026-{n:06d}" for n in range(5, 5 + len(issued))]


def test_rule_7_named_invoices_are_paid_in_the_order_named(app: ContractsApplication) -> None:
    cid = contract_with_invoices(app, "2026-04", "2026-05")
    may = invoice(app, cid, "2026-05").invoice_id
    out = app.receive_transfer(CUSTOMER, "ｻﾝﾌﾟﾙ", "BANK-0009", 11_000, date(2026, 5, 20), jst(2026, 5, 20),
                               invoice_ids=[may])
    assert [(a.invoice_id, a.rule) for a in app.get_transfer(out.transfer.id).allocations] == [(may, RULE_NAMED)]
    assert invoice(app, cid, "2026-04").outstanding == 11_000
    with pytest.raises(InvalidInput) as refused:
        app.receive_transfer(CUSTOMER, "ｻﾝﾌﾟﾙ", "BANK-0010", 1_000, date(2026, 5, 20), jst(2026, 5, 20),
                             invoice_ids=[uuid.uuid4()])
    assert refused.value.field == "invoice_ids"


def test_rule_7_an_unmatched_transfer_is_kept_and_applied_by_hand(app: ContractsApplication) -> None:
    cid = contract_with_invoices(app, "2026-04")
    out = app.receive_transfer(None, "ﾌﾒｲ", "BANK-0011", 11_000, date(2026, 4, 20), jst(2026, 4, 20))
    assert [t.id for t in app.unapplied_transfers()] == [out.transfer.id]
    assert invoice(app, cid, "2026-04").outstanding == 11_000  # never lost, never guessed
    app.apply_unapplied(out.transfer.id, CUSTOMER, jst(2026, 4, 22))
    assert app.unapplied_transfers() == [] and invoice(app, cid, "2026-04").outstanding == 0
    assert app.get_transfer(out.transfer.id).customer_number == CUSTOMER


def test_rule_7_art_9_5_operator_discretion_and_write_off(app: ContractsApplication) -> None:
    cid = contract_with_invoices(app, "2026-04", "2026-05", "2026-06")
    april = invoice(app, cid, "2026-04").invoice_id
    app.mark_overdue(cid, april, date(2026, 6, 1))
    app.notice_suspension(cid, date(2026, 6, 14))
    with pytest.raises(InvalidInput) as refused:
        app.move_suspension_stop(cid, date(2026, 6, 20), "later payment allowed", jst(2026, 6, 21))
    assert refused.value.field == "stop_on"
    app.move_suspension_stop(cid, date(2026, 7, 15), "later payment allowed (Art. 9.5 proviso)", jst(2026, 6, 21))
    assert app.get_contract(cid).suspension_stop_on == date(2026, 7, 15)
    with pytest.raises(RuleViolation):
        app.stop_for_non_payment(cid, date(2026, 6, 28))  # not the stop date any more
    app.lift_suspension(cid, "continued at the provider's discretion", jst(2026, 6, 22))
    assert app.get_contract(cid).state is State.ACTIVE
    app.write_off_debt(cid, april, 11_000, "uncollectible: debtor in liquidation", jst(2026, 6, 23))
    inv = invoice(app, cid, "2026-04")
    assert (inv.paid, inv.written_off, inv.outstanding) == (0, 11_000, 0)
    # Art. 9.4 interest ran until the write-off: 06-01..06-22 = 22 days: floor(1595 x 22 / 365) = floor(96.1) = 96
    assert inv.late_interest(date(2026, 7, 1), app.policy.late_interest_rate) == 96
    names = [type(e).__name__ for e in app.events.get(cid)]
    assert names[-3:] == ["SuspensionStopMoved", "SuspensionLifted", "DebtWrittenOff"]


@pytest.mark.postgres
@pytest.mark.parametrize("store", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_rule_7_concurrent_transfers_for_one_customer_never_allocate_twice(app: ContractsApplication,
                                                                           store: object) -> None:
    cid = contract_with_invoices(app, "2026-04")
    errors: list[BaseException] = []

    def pay(ref: str) -> None:
        for _ in range(10):
            try:
                app.receive_transfer(CUSTOMER, "ｻﾝﾌﾟﾙ", ref, 11_000, date(2026, 4, 20), jst(2026, 4, 20))
                return
            except ConcurrencyConflict:
                continue
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                return

    threads = [threading.Thread(target=pay, args=(f"BANK-C{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    april = invoice(app, cid, "2026-04")
    assert april.paid == 11_000 and april.outstanding == 0  # paid once
    account = app.find_account(CUSTOMER)
    assert account is not None and account.credit_balance == 3 * 11_000  # the other three became credit


def _opened_before_accounts(app: ContractsApplication, customer: str, service: str) -> uuid.UUID:
    """A contract as the code before customer accounts stored it: the contract's events only."""
    from domain.contract import Contract

    contract = Contract.open(customer, service)
    contract.apply(app.catalog.plan(service, "standard"), BillingCycle.MONTHLY, 10, CONTRACTOR, jst(2026, 3, 9))
    contract.approve(jst(2026, 3, 24))
    book = app.number_book()
    contract.advance_to(Month(2026, 4), app.policy, book)
    app.save(contract, *book.close(None))
    assert app.find_account(customer) is None
    return contract.id


def test_rule_7_contracts_from_before_accounts_are_registered_when_the_customer_is_next_met(
        app: ContractsApplication) -> None:
    """Rule book 7: a contract from before accounts is found by its derived id and registered by the
    next command for the customer. CUST-OLD: a garoon contract only (April 11,000 yen, due 05-31).
    CUST-MIXED: a kintone contract from before accounts (April: campaign 1,200 x 10 + initial fee
    10,000 + 10% tax = 24,200 yen) and a garoon one opened since, which made the account knowing
    only itself; a transfer of 24,200 + 11,000 = 35,200 yen naming no contract pays both."""
    old = _opened_before_accounts(app, "CUST-OLD", "garoon")
    view = app.account_of("CUST-OLD")
    assert view is not None and view.contract_ids == [old]  # made for it, not saved
    assert app.find_account("CUST-OLD") is None
    out = app.receive_transfer("CUST-OLD", "ｷｭｳｹｲﾔｸ", "BANK-OLD-1", 11_000, date(2026, 5, 20), jst(2026, 5, 20))
    assert [(a.contract_id, a.amount) for a in out.transfer.allocations] == [(old, 11_000)]
    account = app.find_account("CUST-OLD")
    assert account is not None and account.contract_ids == [old]
    assert invoice(app, old, "2026-04").outstanding == 0

    other = _opened_before_accounts(app, "CUST-MIXED", "kintone")
    new = contract_with_invoices(app, "2026-04", customer="CUST-MIXED")  # registers itself (and only itself)
    stored = app.find_account("CUST-MIXED")
    assert stored is not None and stored.contract_ids == [new]
    shown = app.account_of("CUST-MIXED")
    assert shown is not None and set(shown.contract_ids) == {new, other}
    out = app.receive_transfer("CUST-MIXED", "ｷｭｳｹｲﾔｸ", "BANK-MIXED-1", 35_200, date(2026, 5, 20), jst(2026, 5, 20))
    assert sorted(a.amount for a in out.transfer.allocations) == [11_000, 24_200] and out.transfer.credit == 0
    assert {a.contract_id for a in out.transfer.allocations} == {new, other}
    account = app.find_account("CUST-MIXED")
    assert account is not None and set(account.contract_ids) == {new, other}


def test_rule_7_and_6_1_a_credit_note_on_a_paid_invoice_becomes_credit_balance(app: ContractsApplication) -> None:
    """Rule book 6.1: a credit after issue is a credit note; on an invoice paid in full, what it returns
    was paid already, so (rule book 7, like an overpayment) it is the customer's credit balance.
    April (11,000) paid 2026-04-20; credit note of 4,000 yen at 10% = 4,000 + 400 tax = 4,400 returned:
    credit balance 4,400, applied to May on 05-02: May owes 11,000 - 4,400 = 6,600."""
    cid = contract_with_invoices(app, "2026-04", "2026-05")
    april = invoice(app, cid, "2026-04").invoice_id
    app.receive_transfer(CUSTOMER, "ｻﾝﾌﾟﾙ", "BANK-0101", 11_000, date(2026, 4, 20), jst(2026, 4, 20),
                         invoice_ids=[april])
    app.issue_credit_note(cid, april, 4_000, "discount agreed after issue", jst(2026, 5, 1))
    note = next(i for i in app.get_contract(cid).ledger.invoices.values() if i.kind == "credit_note")
    assert note.total == 4_400 and note.document_type == "credit_note"
    assert invoice(app, cid, "2026-04").refund_due == 4_400 and invoice(app, cid, "2026-04").outstanding == 0
    account = app.find_account(CUSTOMER)
    assert account is not None and account.credit_balance == 4_400
    app.apply_credit_balance(CUSTOMER, jst(2026, 5, 2))
    assert invoice(app, cid, "2026-05").outstanding == 6_600
    after = app.find_account(CUSTOMER)
    assert after is not None and after.credit_balance == 0
    with pytest.raises(RuleViolation):  # nothing left to refund
        app.refund_credit_balance(CUSTOMER, 1, "refund", jst(2026, 5, 3))


def test_rule_7_and_6_1_a_credit_note_on_an_unpaid_invoice_lowers_what_is_owed(app: ContractsApplication) -> None:
    """Unpaid April (11,000): a credit note of 4,000 + 400 tax leaves 6,600 owed and no credit balance."""
    cid = contract_with_invoices(app, "2026-04")
    april = invoice(app, cid, "2026-04").invoice_id
    app.issue_credit_note(cid, april, 4_000, "discount agreed after issue", jst(2026, 4, 10))
    assert invoice(app, cid, "2026-04").outstanding == 6_600 and invoice(app, cid, "2026-04").refund_due == 0
    account = app.find_account(CUSTOMER)
    assert account is None or account.credit_balance == 0


def test_rule_7_a_reversal_takes_back_refunded_credit_as_a_debt_of_the_customer(app: ContractsApplication) -> None:
    """April 11,000 paid by a transfer of 15,000 (04-20): 4,000 credit, refunded by an operator on 04-25.
    The transfer bounces and is reversed on 04-28: April is owed again (11,000) and the 4,000 refunded
    from money that never came is owed by the customer: credit balance -4,000, nothing to apply or
    refund; 11,000 + 4,000 = the 15,000 that never came. A new transfer of 15,000 on 05-10 pays April
    and its 4,000 excess nets the debt: balance 0."""
    cid = contract_with_invoices(app, "2026-04")
    out = app.receive_transfer(CUSTOMER, "ｻﾝﾌﾟﾙ", "BANK-0R1", 15_000, date(2026, 4, 20), jst(2026, 4, 20))
    app.refund_credit_balance(CUSTOMER, 4_000, "refunded the excess to the payer", jst(2026, 4, 25))
    account = app.find_account(CUSTOMER)
    assert account is not None and account.credit_balance == 0

    app.reverse_transfer(out.transfer.id, "returned by the bank (bounced)", date(2026, 4, 28), jst(2026, 4, 28))
    assert invoice(app, cid, "2026-04").outstanding == 11_000
    account = app.find_account(CUSTOMER)
    assert account is not None and account.credit_balance == -4_000
    reversed_event = [e for e in app.events.get(account.id) if type(e).__name__ == "TransferReversed"][-1]
    assert (reversed_event.unspent_credit, reversed_event.refund_taken_back) == (0, 4_000)
    with pytest.raises(RuleViolation):
        app.apply_credit_balance(CUSTOMER, jst(2026, 4, 29))
    with pytest.raises(RuleViolation):
        app.refund_credit_balance(CUSTOMER, 1, "nothing is owed to the customer", jst(2026, 4, 29))

    again = app.receive_transfer(CUSTOMER, "ｻﾝﾌﾟﾙ", "BANK-0R2", 15_000, date(2026, 5, 10), jst(2026, 5, 10))
    assert app.get_transfer(again.transfer.id).credit == 4_000  # 15,000 - April's 11,000
    assert invoice(app, cid, "2026-04").outstanding == 0
    account = app.find_account(CUSTOMER)
    assert account is not None and account.credit_balance == 0
