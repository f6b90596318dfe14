"""Spec 3 (lifecycle states and events) and spec 4 / Art. 2, 5, 8 (trial, application, review,
service periods, renewal) on the Contract aggregate."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from contract_kit import (
    ANNUAL,
    CAL,
    CONTRACTOR,
    MONTHLY,
    POLICY,
    active,
    applied,
    assert_refused,
    concluded,
    invoice,
    jst,
    names,
    new_contract,
    numbers,
    plan,
    trial,
    utc,
)

from domain.calendar import Month
from domain.contract import State, TerminationReason
from domain.errors import InvalidInput, RuleViolation


# --------------------------------------------------------------------------- Art. 5: trial
def test_art_5_trial_starts_free_for_the_grade_trial_days() -> None:
    """Trial of 30 days (sample POLICY default) started 2026-03-02: days 03-02..03-31, ends 2026-04-01."""
    c = trial(at=jst(2026, 3, 2))
    assert names(c.collect_events()) == ["Opened", "TrialStarted"]
    assert c.state is State.TRIAL
    assert (c.trial_started_on, c.trial_ends_on) == (date(2026, 3, 2), date(2026, 4, 1))
    assert c.ledger.invoices == {}  # free (Art. 5.1)


def test_art_5_2_trial_expires_at_its_end_not_before() -> None:
    c = trial(at=jst(2026, 3, 2))
    assert_refused(c, lambda: c.expire_trial(date(2026, 3, 31), POLICY), RuleViolation, "Art. 5.2")
    c.expire_trial(date(2026, 4, 1), POLICY)
    assert names(c.collect_events()) == ["TrialExpired"]
    assert c.state is State.TRIAL_EXPIRED
    # Art. 15.5 / spec 10: retention 60 days: 04-01 + 29 = 04-30, + 31 = 05-31
    assert c.retention_until == date(2026, 5, 31)


def test_art_4_3_store_service_has_no_trial() -> None:
    c = new_contract("store")
    assert_refused(c, lambda: c.start_trial(plan("store", "free"), 1, CONTRACTOR, jst(2026, 3, 2)),
                   RuleViolation, "Art. 4.3")


def test_art_5_2_grade_without_trial_days_refuses_a_trial() -> None:
    c = new_contract("kintone")
    no_trial = replace(plan("kintone", "light"), trial_days=0)
    assert_refused(c, lambda: c.start_trial(no_trial, 5, CONTRACTOR, jst(2026, 3, 2)), RuleViolation, "Art. 5.2")


def test_art_5_trial_continues_after_approval_until_the_first_month() -> None:
    """Trial from 2026-03-02, applied 03-20, approved 03-24: concluded, first month April; no invoice yet."""
    c = trial(at=jst(2026, 3, 2))
    c.apply(plan("kintone", "standard"), MONTHLY, 10, None, jst(2026, 3, 20))
    c.approve(jst(2026, 3, 24))
    assert names(c.collect_events()) == ["Opened", "TrialStarted", "Applied", "Approved"]
    assert c.state is State.CONCLUDED
    assert c.first_month == Month(2026, 4)
    assert c.contractor == CONTRACTOR  # the trial's contractor information is kept
    assert c.ledger.invoices == {}
    c.advance_to(Month(2026, 3), POLICY, numbers())
    assert c.collect_events() == []  # nothing happens before the first month
    c.advance_to(Month(2026, 4), POLICY, numbers())
    assert names(c.collect_events()) == ["ServicePeriodStarted", "InvoiceIssued"]
    assert c.state is State.ACTIVE


def test_art_5_trial_expiry_refused_once_applied() -> None:
    c = trial(at=jst(2026, 3, 2))
    c.apply(plan("kintone", "standard"), MONTHLY, 10, None, jst(2026, 3, 20))
    assert_refused(c, lambda: c.expire_trial(date(2026, 4, 1), POLICY), RuleViolation, "Art. 5.2")


# --------------------------------------------------------------------------- Art. 2: application and review
def test_art_2_2_application_needs_the_contractor_name() -> None:
    c = new_contract("kintone")
    assert_refused(c, lambda: c.apply(plan("kintone", "standard"), MONTHLY, 10, {"address": "x"}, jst(2026, 3, 2)),
                   InvalidInput, "Art. 2.2")


def test_spec_5_application_below_the_grade_minimum_is_refused() -> None:
    """premium needs at least 10 users."""
    c = new_contract("kintone")
    assert_refused(c, lambda: c.apply(plan("kintone", "premium"), MONTHLY, 9, CONTRACTOR, jst(2026, 3, 2)),
                   InvalidInput, "Art. 10.1")


def test_spec_2_grade_of_another_service_is_refused() -> None:
    c = new_contract("kintone")
    assert_refused(c, lambda: c.apply(plan("garoon", "standard"), MONTHLY, 10, CONTRACTOR, jst(2026, 3, 2)),
                   InvalidInput, "Art. 7")


def test_art_8_1_approval_concludes_first_month_is_the_next_jst_month() -> None:
    c = concluded(approved_at=jst(2026, 3, 24))
    assert names(c.collect_events()) == ["Opened", "Applied", "Approved"]
    assert (c.state, c.concluded_on, c.first_month) == (State.CONCLUDED, date(2026, 3, 24), Month(2026, 4))


@pytest.mark.parametrize(
    ("approved_at", "concluded_on", "first_month"),
    [
        # 2026-03-31T15:30Z is 2026-04-01 00:30 JST: concluded in April, first month May (spec 1 / Art. 8)
        (utc(2026, 3, 31, 15, 30), date(2026, 4, 1), Month(2026, 5)),
        (utc(2026, 3, 31, 14, 59), date(2026, 3, 31), Month(2026, 4)),  # 23:59 JST, still March
        (jst(2026, 12, 31, 23, 59), date(2026, 12, 31), Month(2027, 1)),  # year end: January next year
    ],
)
def test_art_8_1_timezone_edge_of_approval(approved_at, concluded_on, first_month) -> None:
    c = concluded(approved_at=approved_at)
    assert (c.concluded_on, c.first_month) == (concluded_on, first_month)


def test_art_8_1_approval_at_year_end_first_invoice_in_january() -> None:
    """Approved 2026-12-31 JST: first month 2027-01, invoice issued 2027-01-01, due 2027-02-28."""
    c = active(approved_at=jst(2026, 12, 31), until=Month(2027, 1))
    inv = invoice(c, "2027-01")
    assert (inv.issued_on, inv.due_on) == (date(2027, 1, 1), date(2027, 2, 28))


@pytest.mark.parametrize("article", ["Art. 2.4.1", "Art. 2.4.2", "Art. 2.4.3", "Art. 2.4.4"])
def test_art_2_4_rejection_for_each_reason(article) -> None:
    """Rejected without a trial: the application ends; contractor data kept 60 days (03-25 + 60 = 05-24)."""
    c = applied(at=jst(2026, 3, 24))
    c.reject(article, jst(2026, 3, 25), POLICY)
    assert names(c.collect_events())[-1] == "Rejected"
    assert (c.state, c.termination_article) == (State.REJECTED, article)
    assert c.retention_until == date(2026, 5, 24)


def test_art_2_4_rejection_during_a_trial_resumes_the_trial() -> None:
    c = trial(at=jst(2026, 3, 2))
    c.apply(plan("kintone", "standard"), MONTHLY, 10, None, jst(2026, 3, 10))
    c.reject("Art. 2.4.2", jst(2026, 3, 11), POLICY)
    assert c.state is State.TRIAL
    assert c.trial_ends_on == date(2026, 4, 1)
    c.expire_trial(date(2026, 4, 1), POLICY)
    assert c.state is State.TRIAL_EXPIRED


def test_art_2_4_rejection_needs_an_art_2_4_reason() -> None:
    c = applied()
    assert_refused(c, lambda: c.reject("Art. 23.1.1", jst(2026, 3, 25), POLICY), InvalidInput, "Art. 2.4")


# --------------------------------------------------------------------------- Art. 8: periods and renewal
def test_art_8_1_monthly_renews_every_month() -> None:
    c = concluded()
    c.collect_events()
    c.advance_to(Month(2026, 7), POLICY, numbers())
    events = c.collect_events()
    assert names(events) == ["ServicePeriodStarted", "InvoiceIssued"] + ["Renewed", "InvoiceIssued"] * 3
    assert [e.month for e in events[::2]] == [Month(2026, 4), Month(2026, 5), Month(2026, 6), Month(2026, 7)]
    assert [e.document["number"] for e in events[1::2]] == [f"INV-2026-{n:06d}" for n in (1, 2, 3, 4)]
    assert (c.state, c.period_start, c.period_end) == (State.ACTIVE, Month(2026, 7), Month(2026, 7))
    c.advance_to(Month(2026, 7), POLICY, numbers())
    assert c.collect_events() == []  # months already run are no-ops


def test_art_8_2_annual_is_twelve_months_and_renews_by_policy() -> None:
    """Approved 2026-04-10: term 2026-05..2027-04; auto-renewed 2027-05..2028-04 (POLICY annual_auto_renew)."""
    c = concluded(cycle=ANNUAL, approved_at=jst(2026, 4, 10))
    c.collect_events()
    c.advance_to(Month(2027, 4), POLICY, numbers())
    started, issued = c.collect_events()
    assert (started.month, started.period_end) == (Month(2026, 5), Month(2027, 4))
    assert issued.document["period"] == "2026-05..2027-04"
    c.advance_to(Month(2027, 5), POLICY, numbers())
    renewed, issued = c.collect_events()
    assert names([renewed, issued]) == ["Renewed", "InvoiceIssued"]
    assert (renewed.month, renewed.period_end) == (Month(2027, 5), Month(2028, 4))


def test_art_8_2_annual_without_auto_renew_ends_at_term_end() -> None:
    no_renew = replace(POLICY, annual_auto_renew=False)
    c = active(cycle=ANNUAL, approved_at=jst(2026, 4, 10), until=Month(2027, 5), policy=no_renew)
    assert c.state is State.TERMINATED
    assert (c.termination_reason, c.ended_on) == (TerminationReason.TERM_EXPIRED, date(2027, 4, 30))
    assert c.retention_until == date(2027, 6, 29)  # 04-30 + 31 = 05-31, + 29 = 06-29


# --------------------------------------------------------------------------- spec 3: commands the state does not allow
def test_spec_3_approve_twice_refused() -> None:
    c = concluded()
    assert_refused(c, lambda: c.approve(jst(2026, 3, 25)), RuleViolation, "Art. 2.3")


def test_spec_3_apply_when_active_refused() -> None:
    c = active()
    assert_refused(c, lambda: c.apply(plan("kintone", "premium"), MONTHLY, 10, CONTRACTOR, jst(2026, 4, 2)),
                   RuleViolation, "Art. 2.2")


def test_spec_3_reject_after_approval_refused() -> None:
    c = concluded()
    assert_refused(c, lambda: c.reject("Art. 2.4.1", jst(2026, 3, 25), POLICY), RuleViolation, "Art. 2.4")


def test_spec_3_trial_twice_refused() -> None:
    c = trial()
    assert_refused(c, lambda: c.start_trial(plan("kintone", "standard"), 10, CONTRACTOR, jst(2026, 3, 3)),
                   RuleViolation, "Art. 5.1")


def test_spec_3_changes_and_notices_need_a_concluded_contract() -> None:
    c = applied()
    assert_refused(c, lambda: c.request_change(None, 12, None, jst(2026, 3, 24), CAL), RuleViolation, "Art. 10.1")
    assert_refused(c, lambda: c.notice_termination(None, jst(2026, 3, 24), CAL), RuleViolation, "Art. 10.1")


def test_art_12_contractor_change_and_refusal_without_contractor() -> None:
    c = active()
    c.collect_events()
    c.change_contractor({"name": "New Name K.K."}, jst(2026, 4, 3))
    assert names(c.collect_events()) == ["ContractorInfoChanged"]
    assert c.contractor == {"name": "New Name K.K."}
    assert_refused(c, lambda: c.change_contractor({"address": "x"}, jst(2026, 4, 3)), InvalidInput, "Art. 12.1")
    fresh = new_contract()
    assert_refused(fresh, lambda: fresh.change_contractor({"name": "x"}, jst(2026, 4, 3)), RuleViolation, "Art. 12.1")


def test_art_5_2_a_late_expiry_run_keeps_the_trial_end_date() -> None:
    """Trial from 03-02 ends 04-01; a job that runs on 04-09 still records 04-01, so
    retention stays 04-01 + 60 = 05-31 (Art. 15.5)."""
    c = trial(at=jst(2026, 3, 2))
    c.expire_trial(date(2026, 4, 9), POLICY)
    e = c.collect_events()[-1]
    assert type(e).__name__ == "TrialExpired"
    assert (e.expired_on, c.ended_on, c.retention_until) == (date(2026, 4, 1), date(2026, 4, 1), date(2026, 5, 31))
