"""The contracts application (load -> call -> save) on POPO, SQLite and PostgreSQL (``app`` fixture).

A full lifecycle with hand-computed figures, every kind of refusal storing nothing, and replays of
the stored events in a fresh application reproducing the same state.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from app_kit import (
    ANNUAL,
    CONTRACTOR,
    MONTHLY,
    assert_refused,
    customer,
    invoice,
    jst,
    lines,
    names,
    replay,
    stored,
    summary,
    utc,
)

from application.service import ContractsApplication
from domain.calendar import Month
from domain.contract import State, TerminationReason
from domain.errors import ConcurrencyConflict, InvalidInput, NotFound, RuleViolation
from domain.sla import OutageCause, Remedy

APRIL_2026, JUNE_2026 = Month(2026, 4), Month(2026, 6)


def _monthly(app: ContractsApplication, service: str = "kintone", grade: str = "standard", users: int = 10,
             approved: tuple[int, int, int] = (2026, 3, 24), until: Month | None = None) -> uuid.UUID:
    cid = app.open_contract(customer(), service, grade, users, CONTRACTOR, jst(*approved), cycle=MONTHLY).aggregate_id
    app.approve(cid, jst(*approved))
    if until is not None:
        app.advance(cid, until)
    return cid


def _annual(app: ContractsApplication, service: str = "kintone", grade: str = "standard", users: int = 10,
            until: Month | None = JUNE_2026) -> uuid.UUID:
    """Approved 2026-04-10: term 2026-05..2027-04."""
    cid = app.open_contract(customer(), service, grade, users, CONTRACTOR, jst(2026, 4, 10), cycle=ANNUAL).aggregate_id
    app.approve(cid, jst(2026, 4, 10))
    if until is not None:
        app.advance(cid, until)
    return cid


# --------------------------------------------------------------------------- the whole lifecycle
def test_spec_3_full_lifecycle_with_hand_computed_figures(app: ContractsApplication, reopen) -> None:
    # Art. 5: trial from 2026-03-02 (30 days, ends 04-01)
    cid = app.open_contract(customer(), "kintone", "standard", 10, CONTRACTOR, jst(2026, 3, 2), trial=True).aggregate_id
    assert app.get_contract(cid).trial_ends_on == date(2026, 4, 1)
    app.apply_from_trial(cid, "standard", 10, MONTHLY, None, jst(2026, 3, 20))
    # approval at 2026-03-31T15:30Z = 2026-04-01 00:30 JST: concluded in April -> first month May (Art. 8.1)
    app.approve(cid, utc(2026, 3, 31, 15, 30))
    c = app.get_contract(cid)
    assert (c.state, c.concluded_on, c.first_month) == (State.CONCLUDED, date(2026, 4, 1), Month(2026, 5))
    app.advance(cid, Month(2026, 4))
    assert app.get_contract(cid).ledger.invoices == {}  # the trial continues, free
    app.advance(cid, Month(2026, 5))
    may = invoice(app, cid, "2026-05")
    # campaign 1200 x 10 = 12000 + initial 10000 = 22000, tax 2200 -> 24200, due 06-30
    assert (lines(may), may.total, may.due_on) == (
        {"campaign_fee": 12000, "initial_fee": 10000, "tax": 2200}, 24200, date(2026, 6, 30))

    # Art. 10.1.1: premium x 12 noticed on the May deadline (05-25) -> June
    app.request_change(cid, "premium", 12, None, jst(2026, 5, 25))
    assert app.get_contract(cid).pending_changes[0].effective_month == Month(2026, 6)
    app.advance(cid, Month(2026, 6))
    assert lines(invoice(app, cid, "2026-06")) == {"base_fee": 30000, "tax": 3000}  # 2500 x 12

    # Art. 20: 50h outage 06-10 09:00 .. 06-12 11:00 JST; 2 days; min floor(30000 x 2 / 30) = 2000
    outage_id = app.record_outage("kintone", jst(2026, 6, 10, 9), jst(2026, 6, 12, 11),
                                  OutageCause.PROVIDER_NETWORK, jst(2026, 6, 12, 12)).aggregate_id
    _, assessment = app.claim_sla(cid, outage_id, jst(2026, 6, 20), True, True, "ticket #1")
    assert (assessment.eligible, assessment.credit_days, assessment.minimum, assessment.maximum) == (
        True, 2, 2000, 30000)
    app.decide_claim(cid, app.claim_id(cid, outage_id), None, None, jst(2026, 6, 22))

    # Art. 9.5: the May invoice (due 06-30) is overdue on 07-01
    app.mark_overdue(cid, may.invoice_id, date(2026, 7, 1))
    app.advance(cid, Month(2026, 7))
    # July: 30000 - 2000 SLA credit = 28000, tax 2800 -> 30800 (Art. 20.1 fee reduction on the next invoice)
    assert lines(invoice(app, cid, "2026-07")) == {"base_fee": 30000, "sla_credit": -2000, "tax": 2800}

    # Art. 10: termination noticed 07-10 (July deadline 07-24) -> August is the last month
    app.notice_termination(cid, None, jst(2026, 7, 10))
    assert app.get_contract(cid).termination_month == Month(2026, 8)

    # spec 7: 14 days overdue on 07-14 -> stop date 07-28; paid in full 07-20 -> lifted
    app.notice_suspension(cid, date(2026, 7, 14))
    assert app.get_contract(cid).suspension_stop_on == date(2026, 7, 28)
    app.record_payment(cid, may.invoice_id, 24200, date(2026, 7, 20), jst(2026, 7, 20))
    c = app.get_contract(cid)
    assert c.state is State.ACTIVE
    # Jul 1..Jul 19 = 19 days: floor(24200 x 0.145 x 19 / 365) = floor(66671 / 365) = floor(182.66) = 182
    assert c.ledger.invoices[may.invoice_id].late_interest(date(2026, 7, 20), app.policy.late_interest_rate) == 182

    app.advance(cid, Month(2026, 9))
    c = app.get_contract(cid)
    assert (c.state, c.termination_reason, c.ended_on, c.retention_until) == (
        State.TERMINATED, TerminationReason.NOTICE, date(2026, 8, 31), date(2026, 10, 30))
    # last month in full, and May's settled late interest of 182 as a tax-free line (rule book 6, Art. 9.4)
    assert lines(invoice(app, cid, "2026-08")) == {"base_fee": 30000, "late_interest": 182, "tax": 3000}
    # unpaid: June 33000 + July 30800 + August 33182 = 96982
    assert c.ledger.outstanding() == 96982

    # Art. 15.3: stored data deleted on the retention deadline, not before
    assert_refused(app, cid, lambda: app.delete_stored_data(cid, date(2026, 10, 29)), RuleViolation,
                   "Art. 15.3")
    app.delete_stored_data(cid, date(2026, 10, 30))
    # Art. 13 / spec 10: the contractor data stays while 96800 yen are owed
    assert_refused(app, cid, lambda: app.erase_contractor_data(cid, date(2034, 6, 1)), RuleViolation,
                   "Art. 13")
    assert names(app, cid) == [
        "Opened", "TrialStarted", "Applied", "Approved", "ServicePeriodStarted", "InvoiceIssued",
        "ChangeRequested", "GradeChanged", "Renewed", "InvoiceIssued", "SlaBreachClaimed", "CreditGranted",
        "PaymentOverdue", "Renewed", "InvoiceIssued", "TerminationNoticed", "SuspensionNoticed",
        "PaymentReceived", "SuspensionLifted", "Renewed", "InvoiceIssued", "Terminated", "StoredDataDeleted"]
    final = app.get_contract(cid)
    assert final.contractor["name"] == CONTRACTOR["name"] and final.ledger.outstanding() == 96982

    # replays: from the stored events, and in a fresh application over the same store
    assert summary(replay(list(app.events.get(cid)))) == summary(final)
    other = reopen()
    if other is not None:
        assert summary(other.get_contract(cid)) == summary(final)


def test_spec_4_historical_state_by_version(app: ContractsApplication) -> None:
    cid = _monthly(app, until=Month(2026, 6))
    assert app.get_contract(cid, version=3).state is State.CONCLUDED  # Opened, Applied, Approved
    assert app.get_contract(cid, version=4).period_end == Month(2026, 4)
    assert app.get_contract(cid).period_end == Month(2026, 6)


def test_spec_3_advance_is_idempotent_and_stores_nothing_when_nothing_is_due(app: ContractsApplication) -> None:
    cid = _monthly(app, until=Month(2026, 6))
    before = stored(app, cid)
    result = app.advance(cid, Month(2026, 6))
    assert (result.events, result.position) == (0, None)
    assert stored(app, cid) == before


def test_art_18_discontinuation_ends_every_contract_of_that_service_only(app: ContractsApplication) -> None:
    """Announced 2026-04-15 for 2026-07-15 (3 months). A garoon contract is not affected by kintone's."""
    k = _monthly(app, until=Month(2026, 7))
    g = _monthly(app, service="garoon", until=Month(2026, 7))
    assert_refused(app, None, lambda: app.announce_discontinuation("kintone", date(2026, 7, 14), jst(2026, 4, 15)),
                   RuleViolation, "Art. 18")
    app.announce_discontinuation("kintone", date(2026, 7, 15), jst(2026, 4, 15))
    assert_refused(app, None, lambda: app.announce_discontinuation("kintone", date(2026, 8, 1), jst(2026, 4, 16)),
                   RuleViolation, "Art. 18")
    app.terminate_for_discontinuation(k, "kintone")
    c = app.get_contract(k)
    assert (c.state, c.termination_reason, c.ended_on) == (State.TERMINATED, TerminationReason.DISCONTINUATION,
                                                           date(2026, 7, 15))
    assert_refused(app, g, lambda: app.terminate_for_discontinuation(g, "kintone"), RuleViolation, "Art. 18")
    assert app.get_contract(g).state is State.ACTIVE


def test_art_28_terms_change_objection_through_the_application(app: ContractsApplication) -> None:
    """Announced 2026-07-01, effective 2026-09-01; an annual customer objects on 08-20: ends that day."""
    cid = _annual(app, until=Month(2026, 8))
    late = _annual(app, until=Month(2026, 8))
    app.announce_terms_change("2026-09", date(2026, 9, 1), "new SLA wording", jst(2026, 7, 1))
    assert_refused(app, None, lambda: app.announce_terms_change("2026-09", date(2026, 9, 1), "again", jst(2026, 7, 2)),
                   RuleViolation, "Art. 28")
    app.terminate_for_terms_change(cid, "2026-09", jst(2026, 8, 20))
    c = app.get_contract(cid)
    assert (c.state, c.termination_reason, c.ended_on, c.retention_until) == (
        State.TERMINATED, TerminationReason.TERMS_CHANGE, date(2026, 8, 20), date(2026, 10, 19))
    app.terms_change_takes_effect("2026-09", date(2026, 9, 1))
    assert_refused(app, late, lambda: app.terminate_for_terms_change(late, "2026-09", jst(2026, 9, 1)),
                   RuleViolation, "Art. 28")


# --------------------------------------------------------------------------- refusals store nothing
Case = Callable[[ContractsApplication], tuple[uuid.UUID | None, Callable[[], object]]]


def _dup_open(app: ContractsApplication) -> tuple[uuid.UUID | None, Callable[[], object]]:
    number = customer()
    app.open_contract(number, "kintone", "standard", 10, CONTRACTOR, jst(2026, 3, 2), cycle=MONTHLY)
    return None, lambda: app.open_contract(number, "kintone", "light", 5, CONTRACTOR, jst(2026, 3, 3), cycle=MONTHLY)


def _overdue_early(app: ContractsApplication) -> tuple[uuid.UUID | None, Callable[[], object]]:
    cid = _monthly(app, until=Month(2026, 4))
    inv = invoice(app, cid, "2026-04")
    return cid, lambda: app.mark_overdue(cid, inv.invoice_id, date(2026, 5, 31))


def _suspend_early(app: ContractsApplication) -> tuple[uuid.UUID | None, Callable[[], object]]:
    cid = _monthly(app, until=Month(2026, 6))
    app.mark_overdue(cid, invoice(app, cid, "2026-04").invoice_id, date(2026, 6, 1))
    return cid, lambda: app.notice_suspension(cid, date(2026, 6, 13))


def _stop_early(app: ContractsApplication) -> tuple[uuid.UUID | None, Callable[[], object]]:
    cid = _monthly(app, until=Month(2026, 6))
    app.mark_overdue(cid, invoice(app, cid, "2026-04").invoice_id, date(2026, 6, 1))
    app.notice_suspension(cid, date(2026, 6, 14))
    return cid, lambda: app.stop_for_non_payment(cid, date(2026, 6, 27))


def _overpay(app: ContractsApplication) -> tuple[uuid.UUID | None, Callable[[], object]]:
    cid = _monthly(app, until=Month(2026, 4))
    inv = invoice(app, cid, "2026-04")  # 24200
    return cid, lambda: app.record_payment(cid, inv.invoice_id, 24201, date(2026, 4, 10), jst(2026, 4, 10))


def _second_notice(app: ContractsApplication) -> tuple[uuid.UUID | None, Callable[[], object]]:
    cid = _monthly(app, until=Month(2026, 4))
    app.notice_termination(cid, None, jst(2026, 4, 10))
    return cid, lambda: app.notice_termination(cid, Month(2026, 9), jst(2026, 4, 11))


def _change_after_end(app: ContractsApplication) -> tuple[uuid.UUID | None, Callable[[], object]]:
    cid = _monthly(app, until=Month(2026, 4))
    app.notice_termination(cid, None, jst(2026, 4, 10))  # last month May
    return cid, lambda: app.request_change(cid, None, 12, None, jst(2026, 4, 23))  # June


def _early_delete(app: ContractsApplication) -> tuple[uuid.UUID | None, Callable[[], object]]:
    cid = _monthly(app, until=Month(2026, 4))
    app.terminate_for_cause(cid, "Art. 23.1.1", jst(2026, 4, 10))  # retention until 06-09
    return cid, lambda: app.delete_stored_data(cid, date(2026, 6, 8))


def _claim_twice(app: ContractsApplication) -> tuple[uuid.UUID | None, Callable[[], object]]:
    cid = _monthly(app, grade="premium", users=12, until=Month(2026, 6))
    oid = app.record_outage("kintone", jst(2026, 6, 10, 9), jst(2026, 6, 12, 11), OutageCause.PROVIDER_NETWORK,
                            jst(2026, 6, 13)).aggregate_id
    app.claim_sla(cid, oid, jst(2026, 6, 20), True, True)
    return cid, lambda: app.claim_sla(cid, oid, jst(2026, 6, 21), True, True)


def _claim_other_service(app: ContractsApplication) -> tuple[uuid.UUID | None, Callable[[], object]]:
    cid = _monthly(app, grade="premium", users=12, until=Month(2026, 6))
    oid = app.record_outage("garoon", jst(2026, 6, 10, 9), jst(2026, 6, 12, 11), OutageCause.PROVIDER_NETWORK,
                            jst(2026, 6, 13)).aggregate_id
    return cid, lambda: app.claim_sla(cid, oid, jst(2026, 6, 20), True, True)


def _grant_too_much(app: ContractsApplication) -> tuple[uuid.UUID | None, Callable[[], object]]:
    cid = _monthly(app, grade="premium", users=12, until=Month(2026, 6))
    oid = app.record_outage("kintone", jst(2026, 6, 10, 9), jst(2026, 6, 12, 11), OutageCause.PROVIDER_NETWORK,
                            jst(2026, 6, 13)).aggregate_id
    app.claim_sla(cid, oid, jst(2026, 6, 20), True, True)
    # maximum is one month's fee: 2500 x 12 = 30000
    return cid, lambda: app.decide_claim(cid, app.claim_id(cid, oid), Remedy.REFUND, 30001, jst(2026, 6, 22))


def _outage_twice(app: ContractsApplication) -> tuple[uuid.UUID | None, Callable[[], object]]:
    app.record_outage("kintone", jst(2026, 6, 10, 9), jst(2026, 6, 12, 11), OutageCause.PROVIDER_NETWORK,
                      jst(2026, 6, 13))
    return None, lambda: app.record_outage("kintone", jst(2026, 6, 10, 9), jst(2026, 6, 12, 12),
                                           OutageCause.PROVIDER_NETWORK, jst(2026, 6, 13))


def _early_trial_expiry(app: ContractsApplication) -> tuple[uuid.UUID | None, Callable[[], object]]:
    cid = app.open_contract(customer(), "kintone", "standard", 10, CONTRACTOR, jst(2026, 3, 2), trial=True).aggregate_id
    return cid, lambda: app.expire_trial(cid, date(2026, 3, 31))


def _stale_version(app: ContractsApplication) -> tuple[uuid.UUID | None, Callable[[], object]]:
    cid = _monthly(app, until=Month(2026, 4))  # version 4
    return cid, lambda: app.notice_termination(cid, None, jst(2026, 4, 10), expected_version=3)


def _annual_cmd(command: Callable[[ContractsApplication, uuid.UUID], object]) -> Case:
    def case(app: ContractsApplication) -> tuple[uuid.UUID | None, Callable[[], object]]:
        cid = _annual(app)
        return cid, lambda: command(app, cid)
    return case


def _monthly_cmd(command: Callable[[ContractsApplication, uuid.UUID], object],
                 until: Month | None = APRIL_2026) -> Case:
    def case(app: ContractsApplication) -> tuple[uuid.UUID | None, Callable[[], object]]:
        cid = _monthly(app, until=until)
        return cid, lambda: command(app, cid)
    return case


REFUSALS: list[tuple[str, Case, type[Exception], str]] = [
    ("art_2_1_duplicate_contract", _dup_open, RuleViolation, "Art. 2.1"),
    ("spec_2_unknown_grade", lambda app: (None, lambda: app.open_contract(
        customer(), "kintone", "platinum", 10, CONTRACTOR, jst(2026, 3, 2), cycle=MONTHLY)), InvalidInput, "Art. 7"),
    ("spec_5_below_minimum_users", lambda app: (None, lambda: app.open_contract(
        customer(), "kintone", "premium", 9, CONTRACTOR, jst(2026, 3, 2), cycle=MONTHLY)), InvalidInput, "Art. 10.1"),
    ("art_8_billing_cycle_required", lambda app: (None, lambda: app.open_contract(
        customer(), "kintone", "standard", 10, CONTRACTOR, jst(2026, 3, 2))), InvalidInput, "Art. 8"),
    ("art_2_2_contractor_name_required", lambda app: (None, lambda: app.open_contract(
        customer(), "kintone", "standard", 10, {}, jst(2026, 3, 2), cycle=MONTHLY)), InvalidInput, "Art. 2.2"),
    ("art_2_3_approve_twice", _monthly_cmd(lambda app, cid: app.approve(cid, jst(2026, 3, 25)), None),
     RuleViolation, "Art. 2.3"),
    ("art_2_4_reject_after_approval", _monthly_cmd(lambda app, cid: app.reject(cid, "Art. 2.4.1", jst(2026, 3, 25))),
     RuleViolation, "Art. 2.4"),
    ("art_5_2_trial_expiry_before_end", _early_trial_expiry, RuleViolation, "Art. 5.2"),
    ("art_10_1_2_annual_downgrade_refused",
     _annual_cmd(lambda app, cid: app.request_change(cid, "light", None, None, jst(2026, 6, 10))),
     RuleViolation, "Art. 10.1.2"),
    ("art_10_1_2_annual_user_decrease_refused",
     _annual_cmd(lambda app, cid: app.request_change(cid, None, 9, None, jst(2026, 6, 10))),
     RuleViolation, "Art. 10.1.2"),
    ("art_10_1_change_needs_grade_or_users",
     _monthly_cmd(lambda app, cid: app.request_change(cid, None, None, None, jst(2026, 4, 10))),
     InvalidInput, "Art. 10.1"),
    ("art_10_1_second_termination_notice", _second_notice, RuleViolation, "Art. 10.1"),
    ("art_10_1_change_after_last_month", _change_after_end, RuleViolation, "Art. 10.1"),
    ("art_9_5_overdue_on_due_date", _overdue_early, RuleViolation, "Art. 9.5"),
    ("art_9_5_suspension_at_13_days", _suspend_early, RuleViolation, "Art. 9.5"),
    ("art_9_5_stop_before_stop_date", _stop_early, RuleViolation, "Art. 9.5"),
    ("art_9_5_overpayment", _overpay, RuleViolation, "Art. 9.5"),
    ("art_23_unknown_reason",
     _monthly_cmd(lambda app, cid: app.terminate_for_cause(cid, "Art. 99", jst(2026, 4, 10))),
     InvalidInput, "Art. 23.1"),
    ("art_15_3_delete_before_deadline", _early_delete, RuleViolation, "Art. 15.3"),
    ("art_15_3_delete_while_active", _monthly_cmd(lambda app, cid: app.delete_stored_data(cid, date(2027, 1, 1))),
     RuleViolation, "Art. 15.3"),
    ("art_20_3_claim_twice", _claim_twice, RuleViolation, "Art. 20.3"),
    ("art_20_1_claim_outage_of_another_service", _claim_other_service, RuleViolation, "Art. 20.1"),
    ("art_20_1_credit_above_one_month", _grant_too_much, InvalidInput, "Art. 20.1"),
    ("spec_8_outage_recorded_once", _outage_twice, RuleViolation, "Art. 20"),
    ("art_20_1_outage_ending_in_the_future", lambda app: (None, lambda: app.record_outage(
        "kintone", jst(2026, 6, 10), jst(2026, 6, 12), OutageCause.PROVIDER_NETWORK, jst(2026, 6, 11))),
     InvalidInput, "Art. 20.1"),
    ("art_28_announced_on_effective_date", lambda app: (None, lambda: app.announce_terms_change(
        "v-late", date(2026, 7, 1), "x", jst(2026, 7, 1))), RuleViolation, "Art. 28"),
    ("spec_3_stale_expected_version", _stale_version, ConcurrencyConflict, "rule book 3"),
    ("spec_3_unknown_contract", lambda app: (None, lambda: app.approve(uuid.uuid4(), jst(2026, 3, 24))),
     NotFound, "rule book 3"),
]


@pytest.mark.parametrize(("case", "error", "article"), [pytest.param(c, e, a, id=n) for n, c, e, a in REFUSALS])
def test_spec_3_refused_command_names_its_rule_and_stores_nothing(app: ContractsApplication, case: Case,
                                                                   error: type, article: str) -> None:
    cid, command = case(app)
    assert_refused(app, cid, command, error, article)


def test_art_20_3_late_claim_on_day_61_is_recorded_but_ineligible(app: ContractsApplication) -> None:
    """A late claim is not refused: it is recorded (what was supplied) and assessed ineligible (Art. 20.3).
    Breach 06-11; day 61 = 08-11."""
    cid = _monthly(app, grade="premium", users=12, until=Month(2026, 8))
    oid = app.record_outage("kintone", jst(2026, 6, 10, 9), jst(2026, 6, 12, 11), OutageCause.PROVIDER_NETWORK,
                            jst(2026, 6, 13)).aggregate_id
    result, assessment = app.claim_sla(cid, oid, jst(2026, 8, 11), True, True)
    assert result.events == 1 and not assessment.eligible
    assert assessment.reason is not None and assessment.reason.startswith("Art. 20.3")
    app.decide_claim(cid, app.claim_id(cid, oid), None, None, jst(2026, 8, 12))
    assert names(app, cid)[-1] == "CreditRejected"


def test_spec_3_expected_version_matches(app: ContractsApplication) -> None:
    cid = _monthly(app, until=Month(2026, 4))
    version = app.get_contract(cid).version
    result = app.notice_termination(cid, None, jst(2026, 4, 10), expected_version=version)
    assert result.version == version + 1 and result.events == 1


def test_art_10_1_2_upgrade_invoice_replays_identically(app: ContractsApplication, reopen) -> None:
    """Upgrade charge 100000 (see the billing rules) with its own invoice; the invoice ids are derived
    from (contract, period) so a fresh application computes the same ids."""
    cid = _annual(app)
    app.request_change(cid, "premium", None, None, jst(2026, 6, 10))
    app.advance(cid, Month(2026, 7))
    c = app.get_contract(cid)
    ups = [i for i in c.ledger.invoices.values() if i.kind == "upgrade"]
    assert [(i.total, i.issued_on, i.due_on) for i in ups] == [(110000, date(2026, 7, 1), date(2026, 8, 31))]
    assert summary(replay(list(app.events.get(cid)))) == summary(c)
    other = reopen()
    if other is not None:
        assert sorted(other.get_contract(cid).ledger.invoices) == sorted(c.ledger.invoices)


def test_spec_1_instants_round_trip_as_utc(app: ContractsApplication) -> None:
    """Timestamps are stored timezone-aware; JST dates derived from them survive storage."""
    cid = app.open_contract(customer(), "kintone", "standard", 10, CONTRACTOR, utc(2026, 3, 31, 15, 30),
                            cycle=MONTHLY).aggregate_id
    app.approve(cid, utc(2026, 3, 31, 15, 30))
    approved = list(app.events.get(cid))[-1]
    assert approved.at == utc(2026, 3, 31, 15, 30) and approved.at.utcoffset() == timedelta(0)
    assert approved.concluded_on == date(2026, 4, 1)
    assert approved.first_month == Month(2026, 5)


def test_spec_3_contract_events_and_aggregate_index(app: ContractsApplication) -> None:
    first = _monthly(app, until=Month(2026, 4))
    second = _monthly(app, service="garoon")
    oid = app.record_outage("kintone", jst(2026, 6, 10, 9), jst(2026, 6, 12, 11), OutageCause.PROVIDER_NETWORK,
                            jst(2026, 6, 13)).aggregate_id
    assert [type(e).__name__ for e in app.contract_events(first)] == [
        "Opened", "Applied", "Approved", "ServicePeriodStarted", "InvoiceIssued"]
    contracts = set(app.iter_aggregate_ids("Contract.Opened"))
    assert {first, second} <= contracts and oid not in contracts
    assert oid in set(app.iter_aggregate_ids("Outage.OutageRecorded"))
    with pytest.raises(NotFound) as info:
        app.contract_events(oid)  # an outage is not a contract
    assert info.value.article == "rule book 3"
