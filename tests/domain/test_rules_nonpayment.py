"""Spec 7 / Art. 9.3-9.5: payments, overdue, suspension notice, lifting and stop for non-payment.

Contract: garoon standard x 100 monthly, approved 2026-03-24. April invoice 1000 x 100 = 100000
+ tax 10000 = 110000, due 2026-05-31.
"""

from __future__ import annotations

import uuid
from datetime import date

from contract_kit import POLICY, active, assert_refused, invoice, jst, names, numbers

from domain.billing import Ledger
from domain.calendar import Month
from domain.contract import Contract, State, TerminationReason
from domain.deadlines import Timeline, contract_deadlines, fold_event
from domain.errors import InvalidInput, RuleViolation

JUNE_2026 = Month(2026, 6)


def _contract(until: Month = JUNE_2026) -> Contract:
    c = active(service="garoon", grade="standard", users=100, until=until)
    c.collect_events()
    return c


def _april(c: Contract):  # type: ignore[no-untyped-def]
    return invoice(c, "2026-04")


def test_art_9_5_overdue_the_day_after_the_due_date() -> None:
    c = _contract()
    april = _april(c)
    assert_refused(c, lambda: c.mark_overdue(april.invoice_id, date(2026, 5, 31)), RuleViolation, "Art. 9.5")
    c.mark_overdue(april.invoice_id, date(2026, 6, 1))
    (e,) = c.collect_events()
    assert names([e]) == ["PaymentOverdue"]
    assert (e.due_on, e.unpaid, e.overdue_on) == (date(2026, 5, 31), 110000, date(2026, 6, 1))
    assert_refused(c, lambda: c.mark_overdue(april.invoice_id, date(2026, 6, 2)), RuleViolation, "Art. 9.5")


def test_art_9_5_paid_invoice_is_never_overdue() -> None:
    c = _contract()
    april = _april(c)
    c.receive_payment(april.invoice_id, 110000, date(2026, 5, 20), jst(2026, 5, 20))
    assert_refused(c, lambda: c.mark_overdue(april.invoice_id, date(2026, 6, 1)), RuleViolation, "Art. 9.5")


def test_art_9_5_partially_paid_invoice_is_overdue_for_the_rest() -> None:
    c = _contract()
    april = _april(c)
    c.receive_payment(april.invoice_id, 100000, date(2026, 5, 20), jst(2026, 5, 20))
    c.collect_events()
    c.mark_overdue(april.invoice_id, date(2026, 6, 1))
    (e,) = c.collect_events()
    assert e.unpaid == 10000  # 110000 - 100000


def test_spec_7_suspension_notice_at_14_days_overdue_stop_14_days_later() -> None:
    """Due 05-31: 14 days overdue on 06-14 (06-13 is only 13); stop date 06-14 + 14 = 06-28."""
    c = _contract()
    april = _april(c)
    c.mark_overdue(april.invoice_id, date(2026, 6, 1))
    assert_refused(c, lambda: c.notice_suspension(date(2026, 6, 13), POLICY), RuleViolation, "Art. 9.5")
    assert c.notice_suspension(date(2026, 6, 14), POLICY) == date(2026, 6, 28)
    (e,) = c.collect_events()  # (assert_refused flushed the PaymentOverdue)
    assert names([e]) == ["SuspensionNoticed"]
    assert (e.noticed_on, e.stop_on, e.invoice_ids) == (date(2026, 6, 14), date(2026, 6, 28), [april.invoice_id])
    assert "non-payment" in e.reason  # Art. 9.5: the reason is notified
    assert (c.state, c.suspension_stop_on) == (State.SUSPENSION_NOTICED, date(2026, 6, 28))


def test_spec_7_suspension_notice_needs_an_overdue_mark() -> None:
    c = _contract()
    assert_refused(c, lambda: c.notice_suspension(date(2026, 6, 14), POLICY), RuleViolation, "Art. 9.5")


def _noticed() -> Contract:
    c = _contract()
    april = _april(c)
    c.mark_overdue(april.invoice_id, date(2026, 6, 1))
    c.notice_suspension(date(2026, 6, 14), POLICY)
    c.collect_events()
    return c


def test_spec_7_paid_in_full_before_the_stop_date_lifts_the_suspension() -> None:
    """Paid 06-27 (the day before the stop date 06-28): lifted; the interest stays open:
    Jun 1..Jun 26 = 26 days: floor(110000 x 0.145 x 26 / 365) = floor(414700 / 365) = floor(1136.16) = 1136."""
    c = _noticed()
    april = _april(c)
    c.receive_payment(april.invoice_id, 110000, date(2026, 6, 27), jst(2026, 6, 27))
    assert names(c.collect_events()) == ["PaymentReceived", "SuspensionLifted"]
    assert (c.state, c.suspension_stop_on) == (State.ACTIVE, None)
    assert c.ledger.outstanding() == 2 * 110000  # May and June invoices (not yet due), April settled
    assert c.ledger.invoices[april.invoice_id].late_interest(date(2026, 6, 27), POLICY.late_interest_rate) == 1136
    assert_refused(c, lambda: c.stop_for_non_payment(date(2026, 6, 28), POLICY), RuleViolation, "Art. 9.5")


def test_spec_7_partial_payment_does_not_lift() -> None:
    c = _noticed()
    april = _april(c)
    c.receive_payment(april.invoice_id, 109999, date(2026, 6, 20), jst(2026, 6, 20))
    assert names(c.collect_events()) == ["PaymentReceived"]
    assert c.state is State.SUSPENSION_NOTICED


def test_spec_7_payment_on_the_stop_date_is_too_late_and_the_contract_stops() -> None:
    """Paid on 06-28 = the stop date: not before it, so no lifting; stopped on 06-28,
    retention 06-28 + 60 = 08-27 (06-30 is +2, 07-31 is +33)."""
    c = _noticed()
    april = _april(c)
    c.receive_payment(april.invoice_id, 110000, date(2026, 6, 28), jst(2026, 6, 28))
    assert names(c.collect_events()) == ["PaymentReceived"]
    assert_refused(c, lambda: c.stop_for_non_payment(date(2026, 6, 27), POLICY), RuleViolation, "Art. 9.5")
    c.stop_for_non_payment(date(2026, 6, 28), POLICY)
    (e,) = c.collect_events()
    assert names([e]) == ["Terminated"]
    assert (c.state, c.termination_reason, c.termination_article) == (
        State.TERMINATED, TerminationReason.NON_PAYMENT, "Art. 9.5")
    assert (c.ended_on, c.retention_until) == (date(2026, 6, 28), date(2026, 8, 27))


def test_art_9_5_month_of_the_stop_is_billed_in_full_and_nothing_refunded() -> None:
    c = _noticed()
    c.stop_for_non_payment(date(2026, 6, 28), POLICY)
    june = invoice(c, "2026-06")
    assert (june.total, june.outstanding, june.refunded) == (110000, 110000, 0)
    c.collect_events()
    c.advance_to(Month(2026, 8), POLICY, numbers())
    assert c.collect_events() == []  # no service month after the stop
    assert "2026-07" not in [i.period for i in c.ledger.invoices.values()]


def test_art_9_5_payments_still_accepted_after_termination() -> None:
    c = _noticed()
    c.stop_for_non_payment(date(2026, 6, 28), POLICY)
    april = _april(c)
    c.collect_events()
    c.receive_payment(april.invoice_id, 110000, date(2026, 7, 1), jst(2026, 7, 1))
    assert names(c.collect_events()) == ["PaymentReceived"]
    assert c.state is State.TERMINATED


def test_art_9_3_payment_validation() -> None:
    c = _contract()
    april = _april(c)
    assert_refused(c, lambda: c.receive_payment(april.invoice_id, 0, date(2026, 5, 1), jst(2026, 5, 1)),
                   InvalidInput, "Art. 9.3")
    # paid before the invoice was issued, or in the future
    assert_refused(c, lambda: c.receive_payment(april.invoice_id, 100, date(2026, 3, 31), jst(2026, 5, 1)),
                   InvalidInput, "Art. 9.3")
    assert_refused(c, lambda: c.receive_payment(april.invoice_id, 100, date(2026, 5, 2), jst(2026, 5, 1)),
                   InvalidInput, "Art. 9.3")
    assert_refused(c, lambda: c.receive_payment(uuid.uuid4(), 100, date(2026, 5, 1), jst(2026, 5, 1)),
                   InvalidInput, "Art. 9.3")


def test_art_9_5_a_late_stop_run_keeps_the_notified_stop_date() -> None:
    """The stop date notified was 06-28; a job that only runs on 07-03 still ends the contract
    on 06-28, and retention is 06-28 + 60 = 08-27 (a late run must not move the deadline)."""
    c = _noticed()
    c.stop_for_non_payment(date(2026, 7, 3), POLICY)
    c.collect_events()
    assert (c.ended_on, c.retention_until) == (date(2026, 6, 28), date(2026, 8, 27))


def test_art_9_3_a_payment_reference_is_recorded_once() -> None:
    """A retried payment with the same reference is refused, so money is never counted twice."""
    c = _contract()
    april = _april(c)
    c.receive_payment(april.invoice_id, 1000, date(2026, 5, 10), jst(2026, 5, 10), reference="bank-tx-1")
    c.collect_events()
    assert_refused(c, lambda: c.receive_payment(april.invoice_id, 1000, date(2026, 5, 10), jst(2026, 5, 10),
                                                reference="bank-tx-1"), RuleViolation, "Art. 9.3")
    assert c.ledger.invoices[april.invoice_id].paid == 1000
    c.receive_payment(april.invoice_id, 1000, date(2026, 5, 10), jst(2026, 5, 10), reference="bank-tx-2")
    assert c.ledger.invoices[april.invoice_id].paid == 2000


def test_art_9_5_no_overdue_mark_after_termination_for_non_payment_art_9_4_interest_runs_on() -> None:
    """Stopped 06-28 for April's non-payment. May's 110,000 falls due 06-30 and June's 07-31, after the
    stop: the Art. 9.5 path has run, so neither is marked overdue (refused; the deadline timeline lists
    no payment_overdue for them). Art. 9.4 interest still runs from the day after the due date: May paid
    07-31 -> 07-01..07-30 = 30 days: floor(110000 x 0.145 x 30 / 365) = floor(1310.9) = 1,310 yen."""
    c = active(service="garoon", grade="standard", users=100, until=JUNE_2026)
    ledger, timeline = Ledger(c.id), Timeline()

    def fold() -> list[str]:
        got = c.collect_events()
        for e in got:
            fold_event(ledger, timeline, e)
        return names(got)

    fold()
    april, may, june = _april(c), invoice(c, "2026-05"), invoice(c, "2026-06")
    c.mark_overdue(april.invoice_id, date(2026, 6, 1))
    c.notice_suspension(date(2026, 6, 14), POLICY)
    fold()
    overdue_marks = [(d.due_on, d.ref) for d in contract_deadlines(timeline, POLICY) if d.kind == "payment_overdue"]
    assert overdue_marks == [(date(2026, 7, 1), str(may.invoice_id)), (date(2026, 8, 1), str(june.invoice_id))]
    c.stop_for_non_payment(date(2026, 6, 28), POLICY)
    assert fold() == ["Terminated"]

    assert [d for d in contract_deadlines(timeline, POLICY) if d.kind == "payment_overdue"] == []
    assert_refused(c, lambda: c.mark_overdue(may.invoice_id, date(2026, 7, 1)), RuleViolation, "Art. 9.5")
    assert_refused(c, lambda: c.mark_overdue(june.invoice_id, date(2026, 8, 1)), RuleViolation, "Art. 9.5")
    assert Timeline.from_dict(timeline.to_dict()) == timeline

    c.receive_payment(may.invoice_id, 110000, date(2026, 7, 31), jst(2026, 7, 31))
    fold()
    assert c.ledger.invoices[may.invoice_id].late_interest(date(2026, 7, 31), POLICY.late_interest_rate) == 1310
