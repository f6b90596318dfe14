"""Rule book 7 (spec 7) payment reminders: POLICY ``payment_reminder_days_before`` (7) days before
and ``payment_reminder_days_after`` (7) days after an unpaid invoice's due date, once each.

Contract: garoon standard x 100 monthly, approved 2026-03-24. April invoice 1000 x 100 = 100,000
+ tax 10,000 = 110,000 yen, issued 2026-04-01, due 2026-05-31: reminders 2026-05-24 and 2026-06-07
(between the overdue mark 2026-06-01 and the suspension notice 2026-06-14).
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date

from contract_kit import POLICY, active, assert_refused, invoice, jst, names

from domain.billing import Ledger
from domain.calendar import Month
from domain.contract import Contract
from domain.deadlines import Timeline, contract_deadlines, fold_event
from domain.errors import InvalidInput, RuleViolation
from domain.settlement import AFTER_DUE, BEFORE_DUE, payment_reminder_on

APRIL_DUE = date(2026, 5, 31)


def _contract() -> Contract:
    c = active(service="garoon", grade="standard", users=100, until=Month(2026, 4))
    c.collect_events()
    return c


def test_spec_7_reminder_dates_7_days_before_and_after_the_due_date() -> None:
    assert payment_reminder_on(APRIL_DUE, BEFORE_DUE, POLICY) == date(2026, 5, 24)  # 31 - 7
    assert payment_reminder_on(APRIL_DUE, AFTER_DUE, POLICY) == date(2026, 6, 7)  # 05-31 + 7 = 06-07
    off = dataclasses.replace(POLICY, payment_reminder_days_before=0, payment_reminder_days_after=3)
    assert payment_reminder_on(APRIL_DUE, BEFORE_DUE, off) is None
    assert payment_reminder_on(APRIL_DUE, AFTER_DUE, off) == date(2026, 6, 3)


def test_spec_7_reminder_before_the_due_date_once_with_the_unpaid_amount() -> None:
    c = _contract()
    april = invoice(c, "2026-04")
    assert_refused(c, lambda: c.remind_payment(april.invoice_id, BEFORE_DUE, date(2026, 5, 23), POLICY),
                   RuleViolation, "rule book 7")  # due on 05-24
    c.remind_payment(april.invoice_id, BEFORE_DUE, date(2026, 5, 24), POLICY)
    (e,) = c.collect_events()
    assert names([e]) == ["PaymentReminded"]
    assert (e.invoice_id, e.stage, e.due_on, e.unpaid, e.reminded_on) == (
        april.invoice_id, BEFORE_DUE, APRIL_DUE, 110_000, date(2026, 5, 24))
    assert_refused(c, lambda: c.remind_payment(april.invoice_id, BEFORE_DUE, date(2026, 5, 25), POLICY),
                   RuleViolation, "rule book 7")  # once


def test_spec_7_reminder_after_the_due_date_names_what_is_left_after_a_partial_payment() -> None:
    c = _contract()
    april = invoice(c, "2026-04")
    c.receive_payment(april.invoice_id, 100_000, date(2026, 5, 20), jst(2026, 5, 20))
    c.mark_overdue(april.invoice_id, date(2026, 6, 1))
    c.collect_events()
    assert_refused(c, lambda: c.remind_payment(april.invoice_id, BEFORE_DUE, date(2026, 6, 2), POLICY),
                   RuleViolation, "rule book 7")  # the due date has passed: only the one after
    c.remind_payment(april.invoice_id, AFTER_DUE, date(2026, 6, 7), POLICY)
    (e,) = c.collect_events()
    assert (e.stage, e.unpaid, e.reminded_on) == (AFTER_DUE, 10_000, date(2026, 6, 7))  # 110,000 - 100,000


def test_spec_7_no_reminder_for_a_paid_invoice_or_when_the_policy_turns_it_off() -> None:
    c = _contract()
    april = invoice(c, "2026-04")
    c.receive_payment(april.invoice_id, 110_000, date(2026, 5, 20), jst(2026, 5, 20))
    assert_refused(c, lambda: c.remind_payment(april.invoice_id, BEFORE_DUE, date(2026, 5, 24), POLICY),
                   RuleViolation, "rule book 7")
    other = _contract()
    off = dataclasses.replace(POLICY, payment_reminder_days_before=0)
    april_other = invoice(other, "2026-04")
    assert_refused(other, lambda: other.remind_payment(april_other.invoice_id, BEFORE_DUE, date(2026, 5, 24), off),
                   RuleViolation, "rule book 7")
    assert_refused(other, lambda: other.remind_payment(uuid.uuid4(), AFTER_DUE, date(2026, 6, 7), POLICY),
                   InvalidInput, "rule book 7")
    assert_refused(other, lambda: other.remind_payment(april_other.invoice_id, "someday", date(2026, 6, 7), POLICY),
                   InvalidInput, "rule book 7")


def test_spec_7_the_timeline_lists_both_reminders_until_each_is_recorded() -> None:
    """The deadlines fold (spec 11) agrees with the aggregate: 05-24 and 06-07 for April; once the
    one before is recorded it goes; once the invoice is overdue the one before would go too."""
    c = active(service="garoon", grade="standard", users=100, until=Month(2026, 4))
    ledger, timeline = Ledger(c.id), Timeline()
    for e in c.collect_events():
        fold_event(ledger, timeline, e)
    april = str(invoice(c, "2026-04").invoice_id)

    def reminders() -> list[tuple[date, str, str]]:
        return [(d.due_on, d.kind, d.ref) for d in contract_deadlines(timeline, POLICY) if "reminder" in d.kind]

    assert reminders() == [(date(2026, 5, 24), "payment_reminder", april), (date(2026, 6, 7), "overdue_reminder",
                                                                            april)]
    c.remind_payment(invoice(c, "2026-04").invoice_id, BEFORE_DUE, date(2026, 5, 24), POLICY)
    for e in c.collect_events():
        fold_event(ledger, timeline, e)
    assert reminders() == [(date(2026, 6, 7), "overdue_reminder", april)]
    assert Timeline.from_dict(timeline.to_dict()) == timeline
