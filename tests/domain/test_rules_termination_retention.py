"""Spec 9 (termination for cause, Art. 18 discontinuation, Art. 28 terms change) and spec 10
(retention and deletion, Art. 15.3 / 15.5)."""

from __future__ import annotations

from datetime import date

import pytest
from contract_kit import (
    ANNUAL,
    CAL,
    POLICY,
    active,
    applied,
    assert_refused,
    concluded,
    invoice,
    jst,
    names,
    numbers,
    trial,
)

from domain.calendar import Month
from domain.contract import State, TerminationReason
from domain.errors import InvalidInput, RuleViolation
from domain.service_events import ServiceDiscontinuation, TermsChange

FOR_CAUSE = ["Art. 23.1.1", "Art. 23.1.2", "Art. 23.1.3", "Art. 23.1.4", "Art. 23.1.5", "Art. 23.1.6",
             "Art. 24.2", "Art. 2.4.1", "Art. 2.4.2", "Art. 2.4.3", "Art. 2.4.4"]


# --------------------------------------------------------------------------- Art. 23 / 24 / 2.4
@pytest.mark.parametrize("article", FOR_CAUSE)
def test_art_23_24_2_4_termination_for_cause_is_immediate(article) -> None:
    """Annual term 2026-05..2027-04 ended mid-term on 2026-07-15 (no notice, Art. 8.3 does not apply);
    retention 07-15 + 60 = 09-13 (07-31 is +16, 08-31 is +47)."""
    c = active(cycle=ANNUAL, approved_at=jst(2026, 4, 10), until=Month(2026, 7))
    c.collect_events()
    c.terminate_for_cause(article, jst(2026, 7, 15), POLICY)
    (e,) = c.collect_events()
    assert names([e]) == ["Terminated"]
    assert (c.state, c.termination_reason, c.termination_article) == (
        State.TERMINATED, TerminationReason.FOR_CAUSE, article)
    assert (c.ended_on, c.retention_until) == (date(2026, 7, 15), date(2026, 9, 13))
    c.advance_to(Month(2027, 5), POLICY, numbers())
    assert c.collect_events() == []  # no renewal after termination


def test_art_23_for_cause_while_suspension_noticed_and_while_concluded() -> None:
    c = concluded()
    c.terminate_for_cause("Art. 23.1.4", jst(2026, 3, 30), POLICY)
    assert c.state is State.TERMINATED
    assert c.ledger.invoices == {}  # service never started: nothing billed
    s = active(service="garoon", grade="standard", users=100, until=Month(2026, 6))
    s.mark_overdue(invoice(s, "2026-04").invoice_id, date(2026, 6, 1))
    s.notice_suspension(date(2026, 6, 14), POLICY)
    s.terminate_for_cause("Art. 23.1.5", jst(2026, 6, 20), POLICY)
    assert (s.state, s.termination_reason, s.ended_on, s.suspension_stop_on) == (
        State.TERMINATED, TerminationReason.FOR_CAUSE, date(2026, 6, 20), None)


def test_art_23_unknown_reason_refused() -> None:
    c = active()
    assert_refused(c, lambda: c.terminate_for_cause("Art. 19.1", jst(2026, 4, 10), POLICY), InvalidInput, "Art. 23.1")


def test_art_23_not_in_service_refused() -> None:
    c = trial()
    assert_refused(c, lambda: c.terminate_for_cause("Art. 23.1.1", jst(2026, 3, 10), POLICY),
                   RuleViolation, "Art. 23.1.1")
    done = active()
    done.terminate_for_cause("Art. 23.1.1", jst(2026, 4, 10), POLICY)
    assert_refused(done, lambda: done.terminate_for_cause("Art. 24.2", jst(2026, 4, 11), POLICY),
                   RuleViolation, "Art. 24.2")


# --------------------------------------------------------------------------- Art. 18 discontinuation
def test_art_18_discontinuation_needs_three_months_notice() -> None:
    """Announced 2026-04-15 JST: the earliest date is 2026-07-15; 07-14 is refused."""
    with pytest.raises(RuleViolation) as info:
        ServiceDiscontinuation.announce("kintone", date(2026, 7, 14), jst(2026, 4, 15))
    assert info.value.article == "Art. 18"
    item = ServiceDiscontinuation.announce("kintone", date(2026, 7, 15), jst(2026, 4, 15))
    assert (item.discontinue_on, item.announced_on) == (date(2026, 7, 15), date(2026, 4, 15))


def test_art_18_three_months_from_a_month_end() -> None:
    """Announced 2026-01-31: three calendar months later there is no April 31, so 04-30 is the earliest."""
    with pytest.raises(RuleViolation):
        ServiceDiscontinuation.announce("kintone", date(2026, 4, 29), jst(2026, 1, 31))
    assert ServiceDiscontinuation.announce("kintone", date(2026, 4, 30), jst(2026, 1, 31)).discontinue_on == \
        date(2026, 4, 30)


def test_art_18_discontinuation_completes_on_its_date() -> None:
    item = ServiceDiscontinuation.announce("kintone", date(2026, 7, 15), jst(2026, 4, 15))
    with pytest.raises(RuleViolation) as info:
        item.complete(date(2026, 7, 14))
    assert info.value.article == "Art. 18"
    item.complete(date(2026, 7, 15))
    assert item.completed


@pytest.mark.parametrize("state", ["trial", "applied", "concluded", "active"])
def test_art_18_every_contract_of_the_service_ends_on_the_date(state) -> None:
    """Ends 2026-07-15 whatever the period (bypasses Art. 8.3); retention 07-15 + 60 = 09-13."""
    c = {"trial": trial, "applied": applied, "concluded": concluded,
         "active": lambda: active(cycle=ANNUAL, until=Month(2026, 7))}[state]()
    c.terminate_for_discontinuation(date(2026, 7, 15), POLICY)
    assert (c.state, c.termination_reason, c.termination_article) == (
        State.TERMINATED, TerminationReason.DISCONTINUATION, "Art. 18")
    assert (c.ended_on, c.retention_until) == (date(2026, 7, 15), date(2026, 9, 13))


def test_art_18_month_of_discontinuation_billed_in_full() -> None:
    c = active(until=Month(2026, 7))
    c.terminate_for_discontinuation(date(2026, 7, 15), POLICY)
    assert invoice(c, "2026-07").total == 16500  # 1500 x 10 + tax 1500, no proration (Art. 9.5)


# --------------------------------------------------------------------------- Art. 28 terms change
def test_art_28_terms_change_must_be_announced_before_it_takes_effect() -> None:
    with pytest.raises(RuleViolation) as info:
        TermsChange.announce("2026-09", date(2026, 7, 1), "new terms", jst(2026, 7, 1))
    assert info.value.article == "Art. 28"
    change = TermsChange.announce("2026-09", date(2026, 9, 1), "new terms", jst(2026, 7, 1))
    with pytest.raises(RuleViolation):
        change.take_effect(date(2026, 8, 31))
    change.take_effect(date(2026, 9, 1))
    assert change.in_effect


def test_art_28_objection_before_the_effective_date_ends_the_contract_mid_term() -> None:
    """Annual term 2026-05..2027-04; terms change effective 2026-09-01; objection on 08-31 ends the
    contract that day (Art. 8.3 and 10 bypassed); retention 08-31 + 60 = 10-30."""
    c = active(cycle=ANNUAL, approved_at=jst(2026, 4, 10), until=Month(2026, 8))
    c.terminate_for_terms_change(date(2026, 9, 1), jst(2026, 8, 31, 23, 59), POLICY)
    assert (c.state, c.termination_reason, c.termination_article) == (
        State.TERMINATED, TerminationReason.TERMS_CHANGE, "Art. 28")
    assert (c.ended_on, c.retention_until) == (date(2026, 8, 31), date(2026, 10, 30))


def test_art_28_objection_on_or_after_the_effective_date_refused() -> None:
    c = active(until=Month(2026, 8))
    assert_refused(c, lambda: c.terminate_for_terms_change(date(2026, 9, 1), jst(2026, 9, 1, 0, 0), POLICY),
                   RuleViolation, "Art. 28")
    assert_refused(c, lambda: c.terminate_for_terms_change(date(2026, 9, 1), jst(2026, 9, 15), POLICY),
                   RuleViolation, "Art. 28")


# --------------------------------------------------------------------------- spec 10 / Art. 15.3 retention
def test_art_15_3_stored_data_deleted_after_60_days_not_before() -> None:
    """Monthly, noticed 2026-07-10 -> ends 2026-08-31 -> stored-data deadline 10-30 (more rules in
    test_rules_retention.py)."""
    c = active(until=Month(2026, 7))
    c.notice_termination(None, jst(2026, 7, 10), CAL)
    c.advance_to(Month(2026, 9), POLICY, numbers())
    assert c.retention_until == date(2026, 10, 30)
    assert_refused(c, lambda: c.delete_stored_data(date(2026, 10, 29)), RuleViolation, "Art. 15.3")
    totals = sorted(i.total for i in c.ledger.invoices.values())
    c.delete_stored_data(date(2026, 10, 30))
    assert names(c.collect_events()) == ["StoredDataDeleted"]
    assert not c.data_deleted and c.contractor  # contractor data is kept (records, Art. 13)
    assert sorted(i.total for i in c.ledger.invoices.values()) == totals  # amounts intact
    assert_refused(c, lambda: c.delete_stored_data(date(2026, 11, 1)), RuleViolation, "Art. 15.3")


def test_art_15_5_trial_expiry_retention() -> None:
    """Trial from 2026-03-02 expires 04-01; stored data deleted no earlier than 05-31."""
    c = trial(at=jst(2026, 3, 2))
    c.expire_trial(date(2026, 4, 1), POLICY)
    assert_refused(c, lambda: c.delete_stored_data(date(2026, 5, 30)), RuleViolation, "Art. 15.3")
    c.delete_stored_data(date(2026, 5, 31))
    assert c.stored_data_deleted_on == date(2026, 5, 31)


def test_spec_10_retention_across_leap_february() -> None:
    """Ended 2028-01-31 for cause: + 60 days = 2028-03-31 (Feb 2028 has 29 days: 02-29 is +29)."""
    c = active(service="garoon", grade="standard", approved_at=jst(2027, 12, 10), until=Month(2028, 1))
    c.terminate_for_cause("Art. 23.1.6", jst(2028, 1, 31), POLICY)
    assert c.retention_until == date(2028, 3, 31)


def test_spec_10_retention_is_a_policy_setting() -> None:
    from dataclasses import replace

    c = active()
    c.terminate_for_cause("Art. 23.1.1", jst(2026, 4, 10), replace(POLICY, retention_days=30))
    assert c.retention_until == date(2026, 5, 10)  # 04-10 + 30
