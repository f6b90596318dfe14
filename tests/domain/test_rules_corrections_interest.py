"""Corrections never edit (rule book 6.1), credit notes (Consumption Tax Act Art. 57-4(3)), SLA
refunds with a credit note (rule book 8) and collectable late interest (rule book 6, Art. 9.4).
Every expected figure is worked out by hand in the comments."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest
from contract_kit import CAL, ISSUER, POLICY, active, assert_refused, invoice, jst, names, outage

from domain.billing import Invoice, InvoiceLine
from domain.calendar import Month
from domain.contract import Contract, State
from domain.errors import InvalidInput, RuleViolation
from domain.invoice_numbers import InvoiceSequence, NumberBook
from domain.sla import OutageCause, Remedy

TEN = Decimal("0.10")
EIGHT = Decimal("0.08")


class Register:
    """One issuer's number register kept across commands (each command closes its book)."""

    def __init__(self) -> None:
        self.sequences: dict[str, InvoiceSequence] = {}

    def book(self) -> NumberBook:
        return NumberBook(POLICY.invoice_number_format, ISSUER.registration_number,
                          lambda s: self.sequences.setdefault(s, InvoiceSequence.start(ISSUER.registration_number, s)))

    def advance(self, c: Contract, month: Month) -> None:
        book = self.book()
        c.advance_to(month, POLICY, book)
        book.close(None)


def _april(reg: Register, **kwargs: object) -> Contract:
    """kintone standard x 10, first month 2026-04: 12,000 campaign + 10,000 initial = 22,000 + 2,200 = 24,200."""
    c = active(until=Month(2026, 3), **kwargs)  # type: ignore[arg-type]
    reg.advance(c, Month(2026, 4))
    c.collect_events()
    return c


def _correct_april(reg: Register, c: Contract, lines: list[InvoiceLine], reason: str) -> uuid.UUID:
    """April's invoice replaced on 2026-04-05 by a corrected invoice of ``lines``."""
    book = reg.book()
    fixed = c.correct_invoice(invoice(c, "2026-04").invoice_id, lines, reason, jst(2026, 4, 5), POLICY, book)
    book.close(None)
    return fixed


# --------------------------------------------------------------------------- void (rule book 6.1)
def test_rule_book_6_1_void_only_before_any_payment_and_with_a_reason() -> None:
    reg = Register()
    c = _april(reg)
    april = invoice(c, "2026-04")
    assert_refused(c, lambda: c.void_invoice(april.invoice_id, " ", jst(2026, 4, 2), POLICY, reg.book()),
                   InvalidInput, "rule book 6.1")
    c.void_invoice(april.invoice_id, "issued to the wrong customer", jst(2026, 4, 2), POLICY, reg.book())
    (voided,) = c.collect_events()
    assert names([voided]) == ["InvoiceVoided"] and voided.reason == "issued to the wrong customer"
    assert (april.status, april.outstanding, april.total, april.number) == ("void", 0, 24200, "INV-2026-000001")
    assert_refused(c, lambda: c.receive_payment(april.invoice_id, 100, date(2026, 4, 3), jst(2026, 4, 3)),
                   RuleViolation, "Art. 9.5")  # nothing is owed on a void invoice
    paid = _april(reg)
    p_april = invoice(paid, "2026-04")
    paid.receive_payment(p_april.invoice_id, 1000, date(2026, 4, 10), jst(2026, 4, 10))
    assert_refused(paid, lambda: paid.void_invoice(p_april.invoice_id, "too late", jst(2026, 4, 11), POLICY,
                                                                   reg.book()),
                   RuleViolation, "rule book 6.1")


# --------------------------------------------------------------------------- corrected invoice (修正インボイス)
def test_rule_book_6_1_corrected_invoice_refers_to_the_original_which_stays_as_issued() -> None:
    """Corrected to 8 users at the campaign price: 1,200 x 8 = 9,600 at 10% -> 960; total 10,560."""
    reg = Register()
    c = _april(reg)
    april = invoice(c, "2026-04")
    issued_hash = april.document_hash
    book = reg.book()
    new_id = c.correct_invoice(april.invoice_id, [InvoiceLine(
        "campaign_fee", "Art. 9.2 campaign price", "kintone standard 2026-04 x 8 users", 9600, 8, 1200, TEN)],
        "user count was 8", jst(2026, 4, 5), POLICY, book)
    book.close(None)
    corrected = c.ledger.invoices[new_id]
    assert (corrected.kind, corrected.number, corrected.total, corrected.tax) == (
        "correction", "INV-2026-000002", 10560, 960)
    assert corrected.original == {"invoice_id": str(april.invoice_id), "number": "INV-2026-000001",
                                  "issued_on": "2026-04-01"}
    assert (corrected.issued_on, corrected.due_on, corrected.period) == (date(2026, 4, 5), date(2026, 5, 31), "2026-04")
    assert (april.status, april.outstanding, april.total, april.document_hash) == ("corrected", 0, 24200, issued_hash)
    assert c.ledger.outstanding() == 10560
    assert_refused(c, lambda: c.correct_invoice(april.invoice_id, list(corrected.lines[:1]), "again",
                                                jst(2026, 4, 6), POLICY, reg.book()), RuleViolation, "rule book 6.1")


def test_rule_book_6_1_the_issuing_contract_holds_each_invoice_as_its_document_reads() -> None:
    """The contract that issues a document folds the invoice it built the document from
    (``Ledger.prepare``), not the document parsed back: it must be the invoice the stored event
    reads as. April 24,200 (12,000 campaign + 10,000 initial + 2,200 tax), paid 05-20; a credit
    note of 5,000 + 500 tax = 5,500 on 06-01; May 13,200 (12,000 + 1,200 tax) corrected on 06-02
    to 8 users: 9,600 + 960 = 10,560; June 13,200."""
    reg = Register()
    c = _april(reg)
    april = invoice(c, "2026-04")
    c.receive_payment(april.invoice_id, 24200, date(2026, 5, 20), jst(2026, 5, 20))
    reg.advance(c, Month(2026, 5))
    book = reg.book()
    c.issue_credit_note(april.invoice_id, 5000, "volume discount agreed after issue", jst(2026, 6, 1), POLICY, book)
    book.close(None)
    book = reg.book()
    c.correct_invoice(invoice(c, "2026-05").invoice_id, [InvoiceLine(
        "campaign_fee", "Art. 9.2 campaign price", "kintone standard 2026-05 x 8 users", 9600, 8, 1200, TEN)],
        "user count was 8", jst(2026, 6, 2), POLICY, book)
    book.close(None)
    reg.advance(c, Month(2026, 6))
    issued = [e for e in c.collect_events() if type(e).__name__ == "InvoiceIssued"]
    assert [(e.document["kind"], e.document["total"]) for e in issued] == [
        ("monthly", 13200), ("credit_note", 5500), ("correction", 10560), ("monthly", 13200)]
    for e in issued:
        held = c.ledger.invoices[e.invoice_id]
        as_stored = Invoice.from_document(e.document, e.recipient, e.document_hash)
        if held.status == "corrected":  # May: replaced by its correction since it was issued
            as_stored.status = "corrected"
        assert held == as_stored
        assert held.lines is not as_stored.lines and held.lines == as_stored.lines
    assert "_prepared_invoice" not in vars(c.ledger)  # nothing left over after the folds


# --------------------------------------------------------------------------- credit note (Art. 57-4(3))
def test_art_57_4_3_credit_note_after_payment_has_the_return_fields() -> None:
    """Paid 24,200 on 05-20; a 5,000 discount after issue: returned 5,000 at 10% + 500 tax = 5,500,
    owed nothing, 5,500 to pay back. At most 22,000 - 5,000 = 17,000 can still be credited."""
    reg = Register()
    c = _april(reg)
    april = invoice(c, "2026-04")
    c.receive_payment(april.invoice_id, 24200, date(2026, 5, 20), jst(2026, 5, 20))
    book = reg.book()
    note_id = c.issue_credit_note(april.invoice_id, 5000, "volume discount agreed after issue", jst(2026, 6, 1),
                                  POLICY, book)
    book.close(None)
    note = c.ledger.invoices[note_id]
    assert (note.document_type, note.number, note.issued_on) == ("credit_note", "INV-2026-000002", date(2026, 6, 1))
    assert note.issuer == ISSUER.to_dict()  # issuer's name and registration number
    assert note.original == {"invoice_id": str(april.invoice_id), "number": "INV-2026-000001",
                             "issued_on": "2026-04-01"}  # the original supply's date
    assert [(r.rate, r.taxable, r.tax) for r in note.rate_totals] == [(TEN, 5000, 500)]  # per rate, with tax
    assert (note.total, note.outstanding) == (5500, 0)
    assert (april.credited, april.outstanding, april.refund_due) == (5500, 0, 5500)
    assert_refused(c, lambda: c.issue_credit_note(april.invoice_id, 17001, "too much", jst(2026, 6, 2), POLICY,
                                                  reg.book()), RuleViolation, "Consumption Tax Act Art. 57-4(3)")


# --------------------------------------------------------------------------- SLA refund (rule book 8)
def test_rule_book_8_fee_reduction_without_a_next_invoice_becomes_a_refund_with_a_credit_note() -> None:
    """premium x 12 (30,000 a month), termination noticed in May: June is the last month. 50-hour outage
    in June: minimum floor(30,000 x 2 / 30) = 2,000 as a fee reduction; no July invoice will come, so at
    the July month start it is refunded: 2,000 at 10% + 200 = 2,200, credit note on the June invoice."""
    reg = Register()
    c = active(grade="premium", users=12, until=Month(2026, 3))
    reg.advance(c, Month(2026, 5))
    c.notice_termination(None, jst(2026, 5, 20), CAL)  # in time for June (deadline 05-25): last month June
    reg.advance(c, Month(2026, 6))
    claim_id = uuid.uuid4()
    facts = outage(c.service, jst(2026, 6, 10, 9), jst(2026, 6, 12, 11), OutageCause.PROVIDER_NETWORK)
    c.claim_sla(claim_id, facts, jst(2026, 6, 20), True, True, "ticket", POLICY)
    c.decide_claim(claim_id, Remedy.FEE_REDUCTION, None, jst(2026, 6, 22), POLICY, reg.book())
    assert c.ledger.pending_credits == [(str(claim_id), 2000)]
    reg.advance(c, Month(2026, 7))
    assert c.state is State.TERMINATED
    (note,) = [i for i in c.ledger.invoices.values() if i.document_type == "credit_note"]
    june = invoice(c, "2026-06")
    assert (note.kind, note.issued_on, note.total, note.original["number"]) == (  # type: ignore[index]
        "sla_refund", date(2026, 7, 1), 2200, june.number)
    assert [(r.rate, r.taxable, r.tax) for r in note.rate_totals] == [(TEN, 2000, 200)]
    assert (c.ledger.pending_credits, june.refunded) == ([], 2200)
    numbers = sorted(i.number for i in c.ledger.invoices.values())
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 5)]  # April, May, June, the credit note


# --------------------------------------------------------------------------- late interest (Art. 9.4)
def _garoon_to_june(reg: Register) -> Contract:
    """garoon standard x 100: 100,000 + 10,000 tax = 110,000 a month; April due 05-31."""
    c = active(service="garoon", grade="standard", users=100, until=Month(2026, 3))
    reg.advance(c, Month(2026, 6))
    return c


def test_art_9_4_settled_interest_is_a_tax_free_line_on_the_next_invoice() -> None:
    """April 110,000 paid 07-01: 30 days -> floor(110,000 x 0.145 x 30 / 365) = 1,310 (the spec's example).
    July: 100,000 at 10% -> 10,000, plus 1,310 outside consumption tax = 111,310."""
    reg = Register()
    c = _garoon_to_june(reg)
    april = invoice(c, "2026-04")
    assert april.open_interest(POLICY.late_interest_rate) == 0  # principal unpaid: nothing to bill yet
    c.receive_payment(april.invoice_id, 110000, date(2026, 7, 1), jst(2026, 7, 1))
    assert april.open_interest(POLICY.late_interest_rate) == 1310
    reg.advance(c, Month(2026, 7))
    july = invoice(c, "2026-07")
    (line,) = [x for x in july.lines if x.kind == "late_interest"]
    assert (line.amount, line.tax_rate, line.unit_price, line.ref) == (1310, None, None, str(april.invoice_id))
    assert [(r.rate, r.taxable, r.tax) for r in july.rate_totals] == [(TEN, 100000, 10000)]
    assert july.total == 111310
    assert (april.interest_billed, april.open_interest(POLICY.late_interest_rate)) == (1310, 0)
    # no interest on interest: July unpaid 30 days after its due date 08-31 bears floor(110,000 x 0.145 x 30
    # / 365) = 1,310 on the principal, not floor(111,310 x ...) = 1,326
    assert july.late_interest(date(2026, 10, 1), POLICY.late_interest_rate) == 1310
    reg.advance(c, Month(2026, 8))
    assert not [x for x in invoice(c, "2026-08").lines if x.kind == "late_interest"]  # billed once


def test_art_9_4_interest_can_be_waived_by_an_operator_with_a_reason() -> None:
    reg = Register()
    c = _garoon_to_june(reg)
    april = invoice(c, "2026-04")
    assert_refused(c, lambda: c.waive_interest(april.invoice_id, "goodwill", jst(2026, 6, 30), POLICY),
                   RuleViolation, "Art. 9.4")  # unpaid principal: no claim of its own yet
    c.receive_payment(april.invoice_id, 110000, date(2026, 7, 1), jst(2026, 7, 1))
    c.collect_events()
    assert c.waive_interest(april.invoice_id, "goodwill: first delay", jst(2026, 7, 2), POLICY) == 1310
    (waived,) = c.collect_events()
    assert (names([waived]), waived.amount, waived.reason) == (["LateInterestWaived"], 1310, "goodwill: first delay")
    reg.advance(c, Month(2026, 7))
    assert not [x for x in invoice(c, "2026-07").lines if x.kind == "late_interest"]
    assert_refused(c, lambda: c.waive_interest(april.invoice_id, "again", jst(2026, 7, 3), POLICY),
                   RuleViolation, "Art. 9.4")


def test_art_9_4_interest_invoice_when_there_is_no_next_invoice() -> None:
    """Noticed in April (deadline 04-22): May is the last month; the contract ends 05-31. April paid 07-01
    after the end: 1,310 interest on an interest invoice of its own, issued 07-01, due 08-31, no tax."""
    reg = Register()
    c = active(service="garoon", grade="standard", users=100, until=Month(2026, 3))
    reg.advance(c, Month(2026, 4))
    c.notice_termination(None, jst(2026, 4, 10), CAL)
    reg.advance(c, Month(2026, 6))
    assert c.state is State.TERMINATED
    april = invoice(c, "2026-04")
    c.receive_payment(april.invoice_id, 110000, date(2026, 7, 1), jst(2026, 7, 1))
    book = reg.book()
    c.settle(date(2026, 7, 1), POLICY, book)  # what the application does after each command on an ended contract
    book.close(None)
    (interest,) = [i for i in c.ledger.invoices.values() if i.kind == "interest"]
    assert (interest.total, interest.tax, interest.rate_totals, interest.issued_on, interest.due_on) == (
        1310, 0, [], date(2026, 7, 1), date(2026, 8, 31))
    assert interest.number == "INV-2026-000003"  # after April and May
    assert interest.late_interest(date(2026, 12, 1), POLICY.late_interest_rate) == 0  # no interest on interest
    assert april.open_interest(POLICY.late_interest_rate) == 0
    c.receive_payment(interest.invoice_id, 1310, date(2026, 7, 20), jst(2026, 7, 20))  # and it can be paid
    assert interest.outstanding == 0


def test_art_9_4_a_voided_interest_invoice_of_an_ended_contract_leaves_its_interest_to_the_operator() -> None:
    """As above: the ended contract's 1,310 interest invoice (INV-2026-000003), voided 07-05. A void of an
    ended contract settles what it gives back at once, but an interest invoice's own interest is not billed
    again by its void (that would undo it): the 1,310 is open, waived with a reason, and nothing is issued."""
    reg = Register()
    c = active(service="garoon", grade="standard", users=100, until=Month(2026, 3))
    reg.advance(c, Month(2026, 4))
    c.notice_termination(None, jst(2026, 4, 10), CAL)
    reg.advance(c, Month(2026, 6))
    april = invoice(c, "2026-04")
    c.receive_payment(april.invoice_id, 110000, date(2026, 7, 1), jst(2026, 7, 1))
    book = reg.book()
    c.settle(date(2026, 7, 1), POLICY, book)
    book.close(None)
    (interest,) = [i for i in c.ledger.invoices.values() if i.kind == "interest"]
    book = reg.book()
    c.void_invoice(interest.invoice_id, "the interest is to be waived", jst(2026, 7, 5), POLICY, book)
    book.close(None)
    assert [i.kind for i in c.ledger.invoices.values()] == ["monthly", "monthly", "interest"]
    assert (interest.status, april.open_interest(POLICY.late_interest_rate)) == ("void", 1310)
    assert c.waive_interest(april.invoice_id, "goodwill", jst(2026, 7, 6), POLICY) == 1310


@pytest.mark.parametrize("reason", ["", "x" * 501])
def test_rule_book_6_1_corrections_need_a_reason(reason: str) -> None:
    reg = Register()
    c = _april(reg)
    april = invoice(c, "2026-04")
    assert_refused(c, lambda: c.issue_credit_note(april.invoice_id, 100, reason, jst(2026, 4, 5), POLICY,
                                                  reg.book()), InvalidInput, "rule book 6.1")


def _april_outage_decided(reg: Register, c: Contract, remedy: Remedy) -> uuid.UUID:
    """A 50-hour outage 2026-04-10 09:00 to 04-12 11:00 JST (2 credit days; the minimum of a 12,000 month
    floor(12,000 x 2 / 30) = 800), claimed 04-20, decided 04-22 with ``remedy`` at the minimum."""
    claim_id = uuid.uuid4()
    facts = outage(c.service, jst(2026, 4, 10, 9), jst(2026, 4, 12, 11), OutageCause.PROVIDER_NETWORK)
    c.claim_sla(claim_id, facts, jst(2026, 4, 20), True, True, "ticket", POLICY)
    book = reg.book()
    c.decide_claim(claim_id, remedy, None, jst(2026, 4, 22), POLICY, book)
    book.close(None)
    return claim_id


def test_art_57_4_3_an_sla_refund_counts_against_what_a_credit_note_can_still_return() -> None:
    """April 24,200 (22,000 at 10%). 50-hour outage in April: 2 credit days, minimum floor(12,000 x 2 / 30)
    = 800, refunded: a credit note of 800 + 80 = 880. What can still be returned on April is
    22,000 - 800 = 21,200 (tax-exclusive), not 22,000: nothing returns more than was supplied."""
    reg = Register()
    c = _april(reg)
    april = invoice(c, "2026-04")
    _april_outage_decided(reg, c, Remedy.REFUND)
    (refund,) = [i for i in c.ledger.invoices.values() if i.kind == "sla_refund"]
    assert (refund.total, [(r.taxable, r.tax) for r in refund.rate_totals]) == (880, [(800, 80)])
    assert_refused(c, lambda: c.issue_credit_note(april.invoice_id, 21201, "too much", jst(2026, 4, 23), POLICY,
                                                  reg.book()), RuleViolation, "Consumption Tax Act Art. 57-4(3)")
    book = reg.book()
    note_id = c.issue_credit_note(april.invoice_id, 21200, "the rest", jst(2026, 4, 23), POLICY, book)
    book.close(None)
    assert c.ledger.invoices[note_id].total == 21200 + 2120


def test_art_9_4_interest_billed_on_a_voided_or_corrected_invoice_is_billed_again() -> None:
    """April 110,000 paid 07-01: 1,310 interest, billed on July (111,310). July is voided (or corrected
    to its fee alone: a corrected invoice's lines are an operator's, none tax-free): the 1,310 is no
    longer billed anywhere, so it is open again and the August invoice bills it: 110,000 + 1,310."""
    for replace in ("void", "correct"):
        reg = Register()
        c = _garoon_to_june(reg)
        april = invoice(c, "2026-04")
        c.receive_payment(april.invoice_id, 110000, date(2026, 7, 1), jst(2026, 7, 1))
        reg.advance(c, Month(2026, 7))
        july = invoice(c, "2026-07")
        assert (july.total, april.interest_billed) == (111310, 1310)
        if replace == "void":
            c.void_invoice(july.invoice_id, "issued in error", jst(2026, 7, 2), POLICY, reg.book())
        else:
            book = reg.book()
            c.correct_invoice(july.invoice_id, [InvoiceLine("base_fee", "Art. 9.1 base fee", "garoon standard 2026-07",
                                                            100000, 100, 1000, TEN)],
                              "wrong description", jst(2026, 7, 2), POLICY, book)
            book.close(None)
        assert (april.interest_billed, april.open_interest(POLICY.late_interest_rate)) == (0, 1310), replace
        reg.advance(c, Month(2026, 8))
        august = invoice(c, "2026-08")
        assert [(x.kind, x.amount) for x in august.lines if x.kind == "late_interest"] == [("late_interest", 1310)]
        assert august.total == 111310 and april.interest_billed == 1310


def test_rule_book_8_a_fee_reduction_on_a_voided_invoice_lands_on_the_next_one() -> None:
    """kintone standard x 10, campaign 1,200 for April-June (12,000 a month). 50-hour outage in April:
    minimum floor(12,000 x 2 / 30) = 800 as a fee reduction on May: 11,200 + 1,120 = 12,320. May is voided:
    the reduction reaches the customer on June instead (rule book 8: a granted remedy always reaches the
    customer): 12,000 - 800 = 11,200 + 1,120 = 12,320."""
    reg = Register()
    c = _april(reg)
    claim_id = _april_outage_decided(reg, c, Remedy.FEE_REDUCTION)
    reg.advance(c, Month(2026, 5))
    may = invoice(c, "2026-05")
    assert (may.total, c.ledger.pending_credits) == (12320, [])
    c.void_invoice(may.invoice_id, "issued in error", jst(2026, 5, 2), POLICY, reg.book())
    assert c.ledger.pending_credits == [(str(claim_id), 800)]
    reg.advance(c, Month(2026, 6))
    june = invoice(c, "2026-06")
    assert [(x.kind, x.amount) for x in june.lines if x.kind == "sla_credit"] == [("sla_credit", -800)]
    assert (june.total, c.ledger.pending_credits) == (12320, [])


def test_art_57_4_3_credit_note_on_an_invoice_of_two_rates_names_the_rate_it_returns() -> None:
    """April corrected to 10,000 at 10% (tax 1,000) and 2,000 at 8% (reduced; tax 160): 13,160. A 500
    credit of the reduced item returns 500 + floor(500 x 0.08) = 540 at 8%, not 550 at 10%; with two
    rates the rate must be named; at most 2,000 can be returned at 8%."""
    reg = Register()
    c = _april(reg)
    fixed = _correct_april(reg, c, [
        InvoiceLine("base_fee", "rule book 6.1", "kintone standard 2026-04", 10000, 10, 1000, TEN),
        InvoiceLine("other", "rule book 6.1", "飲料 (軽減税率)", 2000, 10, 200, EIGHT)], "wrong items")
    assert c.ledger.invoices[fixed].total == 13160
    assert_refused(c, lambda: c.issue_credit_note(fixed, 500, "goodwill", jst(2026, 4, 6), POLICY, reg.book()),
                   InvalidInput, "Consumption Tax Act Art. 57-4(3)")
    assert_refused(c, lambda: c.issue_credit_note(fixed, 2001, "goodwill", jst(2026, 4, 6), POLICY, reg.book(),
                                                  rate=EIGHT), RuleViolation, "Consumption Tax Act Art. 57-4(3)")
    book = reg.book()
    note_id = c.issue_credit_note(fixed, 500, "goodwill", jst(2026, 4, 6), POLICY, book, rate=EIGHT)
    book.close(None)
    note = c.ledger.invoices[note_id]
    assert [(r.rate, r.taxable, r.tax) for r in note.rate_totals] == [(EIGHT, 500, 40)]
    assert note.total == 540 and note.lines[0].to_dict()["reduced_rate"] is True
    assert c.ledger.invoices[fixed].outstanding == 13160 - 540


def test_rule_book_8_an_sla_refund_of_a_corrected_month_returns_on_the_corrected_invoice() -> None:
    """April (INV-2026-000001) corrected to 8 users (INV-2026-000002: 9,600 + 960). A 50-hour April outage
    refunded: minimum floor(12,000 x 2 / 30) = 800 (the fee of the month as the period started), returned
    on the invoice in force for April, the corrected one, not on the replaced original: 800 + 80 = 880."""
    reg = Register()
    c = _april(reg)
    april = invoice(c, "2026-04")
    book = reg.book()
    fixed = c.correct_invoice(april.invoice_id, [InvoiceLine(
        "campaign_fee", "Art. 9.2 campaign price", "kintone standard 2026-04 x 8 users", 9600, 8, 1200, TEN)],
        "user count was 8", jst(2026, 4, 5), POLICY, book)
    book.close(None)
    _april_outage_decided(reg, c, Remedy.REFUND)
    (refund,) = [i for i in c.ledger.invoices.values() if i.kind == "sla_refund"]
    assert refund.original == {"invoice_id": str(fixed), "number": "INV-2026-000002", "issued_on": "2026-04-05"}
    assert (refund.total, c.ledger.invoices[fixed].refunded, april.refunded) == (880, 880, 0)


def _april_credited_550() -> tuple[Register, Contract, Invoice]:
    """April 24,200 with a 500 discount by credit note (500 + 50 = 550: 23,650 owed)."""
    reg = Register()
    c = _april(reg)
    april = invoice(c, "2026-04")
    book = reg.book()
    c.issue_credit_note(april.invoice_id, 500, "discount", jst(2026, 4, 3), POLICY, book)
    book.close(None)
    assert (april.credited, april.outstanding) == (550, 23650)
    return reg, c, april


def test_rule_book_6_1_a_credited_invoice_is_not_replaced_by_a_corrected_invoice() -> None:
    """April 24,200, a 500 discount by credit note (500 + 50 = 550: 23,650 owed). A corrected invoice
    replacing April would owe its whole total again and leave the credit note on a replaced invoice, so
    the 550 would be lost: refused (what is owed is adjusted with a further credit note), nothing stored."""
    reg, c, april = _april_credited_550()
    assert_refused(c, lambda: c.correct_invoice(april.invoice_id, [InvoiceLine(
        "campaign_fee", "Art. 9.2 campaign price", "kintone standard 2026-04 x 10 users", 12000, 10, 1200, TEN)],
        "wrong text", jst(2026, 4, 5), POLICY, reg.book()), RuleViolation, "rule book 6.1")
    assert (april.status, april.outstanding) == ("issued", 23650)


def test_rule_book_8_art_57_4_3_an_sla_refund_of_a_corrected_mixed_rate_month_is_at_the_fee_s_rate() -> None:
    """April (kintone standard, a 10% fee) corrected to 2,000 of a reduced-rate item at 8% listed first and
    the 9,600 fee at 10%: 2,000 + 160 + 9,600 + 960 = 12,720. A 50-hour April outage refunded: minimum
    floor(12,000 x 2 / 30) = 800 of the fee, returned at the fee's 10%: 800 + 80 = 880, not at the first
    line's 8% (800 + 64 = 864); it counts against the 10% items (9,600 - 800 = 8,800 left to credit)."""
    reg = Register()
    c = _april(reg)
    fixed = _correct_april(reg, c, [
        InvoiceLine("other", "rule book 6.1", "飲料 (軽減税率)", 2000, 10, 200, EIGHT),
        InvoiceLine("campaign_fee", "Art. 9.2 campaign price", "kintone standard 2026-04 x 8 users", 9600, 8, 1200,
                    TEN)], "user count was 8, and the drinks")
    assert c.ledger.invoices[fixed].total == 12720
    _april_outage_decided(reg, c, Remedy.REFUND)
    (refund,) = [i for i in c.ledger.invoices.values() if i.kind == "sla_refund"]
    assert [(r.rate, r.taxable, r.tax) for r in refund.rate_totals] == [(TEN, 800, 80)]
    assert refund.total == 880 and refund.original is not None and refund.original["invoice_id"] == str(fixed)
    assert_refused(c, lambda: c.issue_credit_note(fixed, 8801, "too much", jst(2026, 4, 23), POLICY, reg.book(),
                                                  rate=TEN), RuleViolation, "Consumption Tax Act Art. 57-4(3)")


def test_rule_book_6_1_a_credited_invoice_is_not_voided() -> None:
    """April 24,200 with a 500 discount by credit note (500 + 50 = 550: 23,650 owed). Voided, April would
    claim nothing while the credit note still returned 550 of it (a return of a supply no longer
    invoiced, deducted twice in the books): refused (adjusted with a further credit note), nothing
    stored. An SLA refund on the invoice counts the same way."""
    reg, c, april = _april_credited_550()
    assert_refused(c, lambda: c.void_invoice(april.invoice_id, "issued in error", jst(2026, 4, 5), POLICY,
                                             reg.book()), RuleViolation, "rule book 6.1")
    assert (april.status, april.outstanding) == ("issued", 23650)
