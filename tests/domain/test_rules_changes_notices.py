"""Spec 5 / Art. 10 (grade and user changes, termination notices) and Art. 8.3 (no mid-term end)."""

from __future__ import annotations

from datetime import date

from contract_kit import (
    ANNUAL,
    CAL,
    POLICY,
    active,
    assert_refused,
    concluded,
    invoice,
    jst,
    lines,
    names,
    numbers,
    plan,
    upgrade_invoices,
)

from domain.calendar import Month
from domain.contract import Contract, State, TerminationReason
from domain.errors import InvalidInput, RuleViolation


# --------------------------------------------------------------------------- monthly changes (Art. 10.1.1)
def test_art_10_1_1_monthly_upgrade_applies_from_effective_month() -> None:
    """kintone standard x 10 monthly; premium x 12 noticed 2026-04-22 (deadline) -> effective May.
    May invoice: 2500 x 12 = 30000 + tax 3000; April stays 1200 x 10 campaign."""
    c = active(until=Month(2026, 4))
    change = c.request_change(plan("kintone", "premium"), 12, None, jst(2026, 4, 22), CAL)
    assert change.effective_month == Month(2026, 5)
    assert change.upgrade_charge == 0  # monthly: no difference invoice
    c.collect_events()
    c.advance_to(Month(2026, 5), POLICY, numbers())
    assert names(c.collect_events()) == ["GradeChanged", "Renewed", "InvoiceIssued"]
    assert (c.plan.grade, c.users) == ("premium", 12)
    assert lines(invoice(c, "2026-05")) == {"base_fee": 30000, "tax": 3000}
    assert lines(invoice(c, "2026-04"))["campaign_fee"] == 12000


def test_art_10_1_1_monthly_downgrade_and_user_decrease_allowed() -> None:
    """Standard x 10 -> light x 6 noticed 2026-07-01 -> August: 800 x 6 = 4800, tax 480."""
    c = active(until=Month(2026, 7))
    change = c.request_change(plan("kintone", "light"), 6, None, jst(2026, 7, 1), CAL)
    assert change.effective_month == Month(2026, 8)
    c.collect_events()
    c.advance_to(Month(2026, 8), POLICY, numbers())
    assert names(c.collect_events()) == ["GradeChanged", "Renewed", "InvoiceIssued"]
    assert lines(invoice(c, "2026-08")) == {"base_fee": 4800, "tax": 480}


def test_art_10_1_1_user_count_only_change() -> None:
    """Users 10 -> 15 noticed 2026-07-01 -> August: normal 1500 x 15 = 22500, tax 2250."""
    c = active(until=Month(2026, 7))
    c.request_change(None, 15, None, jst(2026, 7, 1), CAL)
    c.collect_events()
    c.advance_to(Month(2026, 8), POLICY, numbers())
    assert names(c.collect_events()) == ["UsersChanged", "Renewed", "InvoiceIssued"]
    assert lines(invoice(c, "2026-08")) == {"base_fee": 22500, "tax": 2250}


def test_art_10_2_late_change_takes_effect_two_months_later() -> None:
    """Noticed 2026-04-23 (after the 04-22 deadline) -> June; May is still the old price."""
    c = active(until=Month(2026, 4))
    change = c.request_change(plan("kintone", "premium"), 12, None, jst(2026, 4, 23), CAL)
    assert change.effective_month == Month(2026, 6)
    c.advance_to(Month(2026, 6), POLICY, numbers())
    assert lines(invoice(c, "2026-05")) == {"campaign_fee": 12000, "tax": 1200}
    assert lines(invoice(c, "2026-06")) == {"base_fee": 30000, "tax": 3000}


def test_art_10_change_event_records_requested_and_effective_month() -> None:
    c = active(until=Month(2026, 4))
    c.collect_events()
    c.request_change(None, 12, Month(2026, 5), jst(2026, 4, 23), CAL)
    (e,) = c.collect_events()
    assert names([e]) == ["ChangeRequested"]
    assert (e.requested_month, e.effective_month, e.received_on) == (Month(2026, 5), Month(2026, 6), date(2026, 4, 23))


def test_spec_5_user_count_never_below_grade_minimum() -> None:
    """premium requires 10 users."""
    c = active(until=Month(2026, 4))
    assert_refused(c, lambda: c.request_change(plan("kintone", "premium"), 9, None, jst(2026, 4, 10), CAL),
                   InvalidInput, "Art. 10.1")
    assert_refused(c, lambda: c.request_change(None, 4, None, jst(2026, 4, 10), CAL),  # standard min 5
                   InvalidInput, "Art. 10.1")


def test_art_10_1_change_to_what_is_already_in_force_refused() -> None:
    c = active(until=Month(2026, 4))
    assert_refused(c, lambda: c.request_change(plan("kintone", "standard"), 10, None, jst(2026, 4, 10), CAL),
                   RuleViolation, "Art. 10.1")


def test_art_10_1_change_after_the_last_month_refused() -> None:
    """Termination noticed for May; a change that could only take effect in June is refused."""
    c = active(until=Month(2026, 4))
    c.notice_termination(None, jst(2026, 4, 10), CAL)
    assert c.termination_month == Month(2026, 5)
    assert_refused(c, lambda: c.request_change(None, 12, None, jst(2026, 4, 23), CAL), RuleViolation, "Art. 10.1")


def test_art_10_later_request_for_the_same_month_supersedes() -> None:
    c = active(until=Month(2026, 4))
    c.request_change(None, 12, None, jst(2026, 4, 10), CAL)
    c.request_change(None, 20, None, jst(2026, 4, 11), CAL)
    assert [(p.effective_month, p.users) for p in c.pending_changes] == [(Month(2026, 5), 20)]


def test_art_10_change_while_concluded_takes_effect_from_the_first_month() -> None:
    """Approved 2026-03-24 (first month April); a change noticed the same day is in time for April
    (March deadline 03-24) and the first invoice already uses it: premium 2500 x 10 = 25000 + initial 10000."""
    c = concluded()
    change = c.request_change(plan("kintone", "premium"), None, None, jst(2026, 3, 24), CAL)
    assert change.effective_month == Month(2026, 4)
    c.advance_to(Month(2026, 4), POLICY, numbers())
    assert lines(invoice(c, "2026-04")) == {"base_fee": 25000, "initial_fee": 10000, "tax": 3500}


# --------------------------------------------------------------------------- annual (Art. 10.1.2)
def _annual() -> Contract:
    """kintone standard x 10 annual approved 2026-04-10: term 2026-05..2027-04."""
    return active(cycle=ANNUAL, approved_at=jst(2026, 4, 10), until=Month(2026, 6))


def test_art_10_1_2_annual_downgrade_refused() -> None:
    c = _annual()
    assert_refused(c, lambda: c.request_change(plan("kintone", "light"), None, None, jst(2026, 6, 10), CAL),
                   RuleViolation, "Art. 10.1.2")


def test_art_10_1_2_annual_user_decrease_refused() -> None:
    c = _annual()
    assert_refused(c, lambda: c.request_change(None, 8, None, jst(2026, 6, 10), CAL), RuleViolation, "Art. 10.1.2")


def test_art_10_1_2_annual_upgrade_with_fewer_users_refused() -> None:
    c = active(cycle=ANNUAL, users=20, approved_at=jst(2026, 4, 10), until=Month(2026, 6))
    assert_refused(c, lambda: c.request_change(plan("kintone", "premium"), 15, None, jst(2026, 6, 10), CAL),
                   RuleViolation, "Art. 10.1.2")


def test_art_10_1_2_annual_user_addition_charge() -> None:
    """10 -> 14 users noticed 2026-06-10 -> July; remaining July..April = 10 months;
    floor((18000 x 14 - 18000 x 10) x 10 / 12) = floor(720000 / 12) = 60000."""
    c = _annual()
    change = c.request_change(None, 14, None, jst(2026, 6, 10), CAL)
    assert (change.effective_month, change.remaining_months, change.upgrade_charge) == (Month(2026, 7), 10, 60000)
    c.collect_events()
    c.advance_to(Month(2026, 7), POLICY, numbers())
    assert names(c.collect_events()) == ["UsersChanged", "InvoiceIssued"]  # no renewal mid-term; the difference
    (up,) = upgrade_invoices(c)
    assert lines(up) == {"upgrade_difference": 60000, "tax": 6000}


def test_art_10_1_2_downgrade_allowed_to_take_effect_at_renewal() -> None:
    """Light x 6 named for May 2027 (the renewal month): no charge, no refund; the renewal invoice
    is 9000 x 6 = 54000 + tax 5400."""
    c = _annual()
    change = c.request_change(plan("kintone", "light"), 6, Month(2027, 5), jst(2026, 6, 10), CAL)
    assert (change.effective_month, change.upgrade_charge) == (Month(2027, 5), 0)
    c.advance_to(Month(2027, 5), POLICY, numbers())
    assert upgrade_invoices(c) == []
    assert lines(invoice(c, "2027-05..2028-04")) == {"base_fee": 54000, "tax": 5400}
    assert (c.plan.grade, c.users) == ("light", 6)


def test_art_10_1_2_no_refund_on_upgrade() -> None:
    """The term invoice keeps its amount after a mid-term upgrade (187000, see billing tests)."""
    c = _annual()
    c.request_change(plan("kintone", "premium"), None, None, jst(2026, 6, 10), CAL)
    c.advance_to(Month(2026, 7), POLICY, numbers())
    assert invoice(c, "2026-05..2027-04").total == 187000


# --------------------------------------------------------------------------- termination notices
def test_art_10_1_1_monthly_termination_last_month_billed_in_full() -> None:
    """Noticed 2026-07-10 -> last month August (deadline 07-24); August billed in full; ends 08-31;
    retention 08-31 + 60 = 10-30 (Art. 15.3)."""
    c = active(until=Month(2026, 7))
    assert c.notice_termination(None, jst(2026, 7, 10), CAL) == Month(2026, 8)
    c.collect_events()
    c.advance_to(Month(2026, 9), POLICY, numbers())
    assert names(c.collect_events()) == ["Renewed", "InvoiceIssued", "Terminated"]
    assert lines(invoice(c, "2026-08")) == {"base_fee": 15000, "tax": 1500}  # full month, no proration
    assert (c.state, c.termination_reason, c.termination_article) == (State.TERMINATED, TerminationReason.NOTICE,
                                                                       "Art. 10.1")
    assert (c.ended_on, c.retention_until) == (date(2026, 8, 31), date(2026, 10, 30))
    assert "2026-09" not in [i.period for i in c.ledger.invoices.values()]


def test_art_10_notice_twice_refused() -> None:
    c = active(until=Month(2026, 7))
    c.notice_termination(None, jst(2026, 7, 10), CAL)
    assert_refused(c, lambda: c.notice_termination(None, jst(2026, 7, 11), CAL), RuleViolation, "Art. 10.1")


def test_art_10_december_notice_after_deadline_ends_in_february() -> None:
    """Noticed 2026-12-24 -> February 2027 is the last month; ends 2027-02-28."""
    c = active(until=Month(2026, 12))
    assert c.notice_termination(None, jst(2026, 12, 24), CAL) == Month(2027, 2)
    c.advance_to(Month(2027, 3), POLICY, numbers())
    assert c.ended_on == date(2027, 2, 28)


def test_art_8_3_annual_notice_moves_to_the_term_end() -> None:
    """Term 2026-05..2027-04; a notice on 2026-06-10 naming September ends the contract 2027-04-30."""
    c = _annual()
    c.collect_events()
    assert c.notice_termination(Month(2026, 9), jst(2026, 6, 10), CAL) == Month(2027, 4)
    (e,) = c.collect_events()
    assert (e.requested_month, e.effective_month) == (Month(2026, 9), Month(2027, 4))
    c.advance_to(Month(2027, 5), POLICY, numbers())
    assert (c.state, c.ended_on) == (State.TERMINATED, date(2027, 4, 30))
    assert "2027-05..2028-04" not in [i.period for i in c.ledger.invoices.values()]


def test_spec_4_annual_notice_in_time_for_the_last_month_stops_renewal() -> None:
    """March 2027 deadline is 03-24: a notice on 03-24 is in time for April 2027 (the last month)."""
    c = _annual()
    assert c.notice_termination(None, jst(2027, 3, 24), CAL) == Month(2027, 4)


def test_spec_4_annual_notice_too_late_runs_the_next_term() -> None:
    """A notice on 2027-03-25 can only take effect in May 2027, inside the renewed term 2027-05..2028-04."""
    c = _annual()
    assert c.notice_termination(None, jst(2027, 3, 25), CAL) == Month(2028, 4)
    c.advance_to(Month(2027, 5), POLICY, numbers())
    assert invoice(c, "2027-05..2028-04").total == 198000  # 180000 + tax 18000


def test_art_8_3_annual_change_after_noticed_term_end_refused() -> None:
    c = _annual()
    c.notice_termination(None, jst(2026, 6, 10), CAL)
    assert_refused(c, lambda: c.request_change(None, 12, Month(2027, 5), jst(2026, 6, 10), CAL),
                   RuleViolation, "Art. 10.1")
