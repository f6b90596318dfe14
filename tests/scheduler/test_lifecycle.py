"""The sweep walks contracts through their deadlines with an advancing clock (issue 5).

Every date below is computed by hand from the rule book (spec = shared/spec/contract-rules.md)
and the article it implements; the comment next to each assertion says how.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date

from scheduler_kit import CONTRACTOR, World, jst

from application.actors import Actor, actor_of
from domain.calendar import Month
from domain.contract import BillingCycle, State
from domain.service_events import ServiceDiscontinuation, TermsChange
from domain.sla import OutageCause


def monthly_contract(w: World, customer: str = "C-1", users: int = 10) -> uuid.UUID:
    """kintone standard, monthly, applied 2026-03-10, approved 2026-03-24: first month April 2026 (Art. 8)."""
    r = w.app.open_contract(customer, "kintone", "standard", users, CONTRACTOR, jst(2026, 3, 10),
                            cycle=BillingCycle.MONTHLY)
    w.app.approve(r.aggregate_id, jst(2026, 3, 24))
    return r.aggregate_id


def invoice_for(w: World, cid: uuid.UUID, period: str) -> tuple[uuid.UUID, int]:
    c = w.app.get_contract(cid)
    inv = next(i for i in c.ledger.invoices.values() if i.period == period)
    return inv.invoice_id, inv.outstanding


def pay(w: World, cid: uuid.UUID, period: str, on: date) -> None:
    invoice_id, amount = invoice_for(w, cid, period)
    w.app.record_payment(cid, invoice_id, amount, on, jst(on.year, on.month, on.day, 12))


def test_trial_expiry_then_stored_data_deletion_and_contractor_data_erasure(store: Callable[..., World]) -> None:
    w = store()
    cid = w.app.open_contract("T-1", "kintone", "light", 5, CONTRACTOR, jst(2026, 3, 2), trial=True).aggregate_id
    # Art. 5.2: trial of 30 days (catalog trial_days) from 2026-03-02 -> ends 2026-04-01
    w.daily(date(2026, 3, 2), date(2026, 3, 31))
    assert w.app.get_contract(cid).state is State.TRIAL
    w.sweep_on(date(2026, 4, 1))
    expired = w.event(cid, "TrialExpired")
    assert expired.expired_on == date(2026, 4, 1)
    # Art. 15.5 / spec 10: retention 60 days: 2026-04-01 + 60 = 2026-05-31 (29 days to 04-30, 31 in May)
    assert expired.retention_until == date(2026, 5, 31)
    w.daily(date(2026, 4, 2), date(2026, 5, 30))
    assert w.names(cid) == ["Opened", "TrialStarted", "TrialExpired"]
    w.sweep_on(date(2026, 5, 31))
    deleted = w.event(cid, "StoredDataDeleted")  # Art. 15.3: what the platform acts on
    assert (deleted.deleted_on, deleted.service) == (date(2026, 5, 31), "kintone")
    assert actor_of(deleted) == Actor.scheduler("stored_data_deletion", date(2026, 5, 31))  # section 13
    # spec 10: a trial never had an invoice, so no records to keep: its contractor data goes the same day
    erased = w.event(cid, "ContractorDataErased")
    assert erased.erased_on == date(2026, 5, 31)
    assert actor_of(erased) == Actor.scheduler("contractor_data_erasure", date(2026, 5, 31))
    assert w.app.get_contract(cid).contractor == {}
    assert w.names(cid)[:3] == ["Opened", "TrialStarted", "TrialExpired"]
    assert sorted(w.names(cid)[3:]) == ["ContractorDataErased", "StoredDataDeleted"]


def test_monthly_renewals_for_three_months(store: Callable[..., World]) -> None:
    w = store()
    cid = monthly_contract(w)
    w.daily(date(2026, 3, 25), date(2026, 3, 31))
    assert w.app.get_contract(cid).state is State.CONCLUDED
    # Art. 8.1: concluded 2026-03-24 -> the first period starts 2026-04-01
    w.sweep_on(date(2026, 4, 1))
    started = w.event(cid, "ServicePeriodStarted")
    assert started.month == Month(2026, 4) and started.due_on == date(2026, 5, 31)  # spec 6: due end of next month
    pay(w, cid, "2026-04", date(2026, 4, 10))
    w.daily(date(2026, 4, 2), date(2026, 4, 30))
    # Art. 8.2: monthly renews automatically on the 1st of each month
    w.sweep_on(date(2026, 5, 1))
    pay(w, cid, "2026-05", date(2026, 5, 10))
    w.daily(date(2026, 5, 2), date(2026, 6, 1))
    renewed = [e for e in w.app.events.get(cid) if type(e).__name__ == "Renewed"]
    assert [(e.month, e.due_on) for e in renewed] == [(Month(2026, 5), date(2026, 6, 30)),
                                                       (Month(2026, 6), date(2026, 7, 31))]
    # the April invoice was paid: no overdue on 2026-06-01 (day after its due date 05-31)
    assert "PaymentOverdue" not in w.names(cid)
    # invoices: April = campaign 1,200 x 10 + initial fee 10,000 + 10% tax = 24,200 (Art. 9.1, 9.2, spec 1)
    assert invoice_for(w, cid, "2026-04")[1] == 0
    assert invoice_for(w, cid, "2026-06")[1] == 13_200  # campaign month 3 of 3: 12,000 + 1,200 tax


def test_overdue_suspension_termination_deletion(store: Callable[..., World]) -> None:
    w = store()
    cid = monthly_contract(w)
    w.daily(date(2026, 3, 25), date(2026, 5, 31))
    assert "PaymentOverdue" not in w.names(cid)
    april, _ = invoice_for(w, cid, "2026-04")
    # spec 7 / Art. 9.5: April invoice due 2026-05-31 unpaid -> PaymentOverdue the day after, 2026-06-01
    w.sweep_on(date(2026, 6, 1))
    overdue = w.event(cid, "PaymentOverdue")
    assert (overdue.invoice_id, overdue.overdue_on, overdue.unpaid) == (april, date(2026, 6, 1), 24_200)
    w.daily(date(2026, 6, 2), date(2026, 6, 13))
    assert w.app.get_contract(cid).state is State.ACTIVE
    # spec 7: 14 days overdue (due 05-31 + 14) -> SuspensionNoticed 2026-06-14, stop date 14 days later 06-28
    w.sweep_on(date(2026, 6, 14))
    noticed = w.event(cid, "SuspensionNoticed")
    assert (noticed.noticed_on, noticed.stop_on) == (date(2026, 6, 14), date(2026, 6, 28))
    w.daily(date(2026, 6, 15), date(2026, 6, 27))
    assert w.app.get_contract(cid).state is State.SUSPENSION_NOTICED
    # Art. 9.5: not paid by the stop date -> Terminated(non_payment) on 2026-06-28
    w.sweep_on(date(2026, 6, 28))
    ended = w.event(cid, "Terminated")
    assert ended.reason.value == "non_payment" and ended.ended_on == date(2026, 6, 28)
    # Art. 15.3: retention 60 days: 06-28 + 60 = 2026-08-27 (2 days to 06-30, 31 in July, 27 in August)
    assert ended.retention_until == date(2026, 8, 27)
    w.daily(date(2026, 6, 29), date(2026, 8, 26))
    assert "StoredDataDeleted" not in w.names(cid)
    w.sweep_on(date(2026, 8, 27))
    assert w.event(cid, "StoredDataDeleted").deleted_on == date(2026, 8, 27)
    names = w.names(cid)
    # rule book 7 reminders, 7 days before and after each unpaid invoice's due date: April (due 05-31)
    # 05-24 and 06-07; May (due 06-30) 06-23, then 07-07 after the end (still owed); June (due 07-31)
    # 07-24 and 08-07; every period start issues its invoice (rule book 6.1)
    assert names[:15] == ["Opened", "Applied", "Approved", "ServicePeriodStarted", "InvoiceIssued", "Renewed",
                          "InvoiceIssued", "PaymentReminded", "Renewed", "InvoiceIssued", "PaymentOverdue",
                          "PaymentReminded", "SuspensionNoticed", "PaymentReminded", "Terminated"]
    assert [(e.stage, e.reminded_on) for e in w.app.events.get(cid) if type(e).__name__ == "PaymentReminded"] == [
        ("before_due", date(2026, 5, 24)), ("after_due", date(2026, 6, 7)), ("before_due", date(2026, 6, 23)),
        ("after_due", date(2026, 7, 7)), ("before_due", date(2026, 7, 24)), ("after_due", date(2026, 8, 7))]
    assert names.count("Terminated") == 1 and names[-1] == "StoredDataDeleted"
    assert "Renewed" not in names[names.index("Terminated"):]  # no July renewal after the stop
    # rule book 10 / Art. 13: April, May and June are still owed: the contractor data stays, even after the
    # records period of the last invoice (June, issued 2026-06-01: fiscal year to 2027-03-31, return filed by
    # 2027-05-31, + 7 years -> kept until 2034-05-31)
    w.sweep_on(date(2034, 6, 1))
    assert "ContractorDataErased" not in w.names(cid)
    assert w.app.get_contract(cid).contractor == CONTRACTOR
    for period in ("2026-04", "2026-05", "2026-06"):
        pay(w, cid, period, date(2034, 6, 10))
    # Art. 9.4, rule book 6: each payment settles a late invoice of an ended contract, so its late interest
    # is billed at once on an interest invoice issued 2034-06-10: April 24,200 due 2026-05-31, 2,931 days
    # -> floor(24200 x 0.145 x 2931 / 365) = 28,177; May 13,200 due 06-30, 2,901 days -> 15,212; June
    # 13,200 due 07-31, 2,870 days -> 15,049
    interest = [i for i in w.app.get_contract(cid).ledger.invoices.values() if i.kind == "interest"]
    assert [(i.total, i.issued_on) for i in interest] == [(28_177, date(2034, 6, 10)), (15_212, date(2034, 6, 10)),
                                                          (15_049, date(2034, 6, 10))]
    w.sweep_on(date(2034, 6, 11))
    assert "ContractorDataErased" not in w.names(cid)  # the interest is owed
    for invoice in interest:
        w.app.record_payment(cid, invoice.invoice_id, invoice.total, date(2034, 6, 12), jst(2034, 6, 12, 12))
    # the interest invoices are the last documents: fiscal year to 2035-03-31, filed by 2035-05-31, + 7 years
    # -> kept until 2042-05-31
    w.sweep_on(date(2042, 5, 31))
    assert "ContractorDataErased" not in w.names(cid)
    w.sweep_on(date(2042, 6, 1))
    assert w.event(cid, "ContractorDataErased").erased_on == date(2042, 6, 1)
    assert w.app.get_contract(cid).contractor == {}


def test_payment_before_stop_date_lifts_suspension(store: Callable[..., World]) -> None:
    w = store()
    cid = monthly_contract(w)
    w.daily(date(2026, 3, 25), date(2026, 6, 19))
    assert w.app.get_contract(cid).state is State.SUSPENSION_NOTICED  # noticed 06-14, stop 06-28 (spec 7)
    pay(w, cid, "2026-04", date(2026, 6, 20))
    assert w.event(cid, "SuspensionLifted").lifted_on == date(2026, 6, 20)  # paid before the stop date
    pay(w, cid, "2026-05", date(2026, 6, 25))  # due 06-30: paid in time
    w.daily(date(2026, 6, 20), date(2026, 7, 1))
    assert "Terminated" not in w.names(cid)  # the stop date 06-28 passed without effect
    assert w.app.get_contract(cid).state is State.ACTIVE
    assert w.names(cid)[-2:] == ["Renewed", "InvoiceIssued"]  # Art. 8.2: renewed for July on 2026-07-01
    assert w.app.get_contract(cid).period_start == Month(2026, 7)


def test_sla_window_close_applies_the_default_remedy(store: Callable[..., World]) -> None:
    w = store()
    cid = monthly_contract(w)
    w.daily(date(2026, 3, 25), date(2026, 4, 1))
    pay(w, cid, "2026-04", date(2026, 4, 10))
    w.daily(date(2026, 4, 2), date(2026, 5, 1))
    pay(w, cid, "2026-05", date(2026, 5, 10))
    w.daily(date(2026, 5, 2), date(2026, 6, 1))
    pay(w, cid, "2026-06", date(2026, 6, 10))
    # 50 hours of provider network outage from 2026-06-10 09:00 JST: breach at start + 24h -> 2026-06-11 (spec 8)
    outage = w.app.record_outage("kintone", jst(2026, 6, 10, 9), jst(2026, 6, 12, 11),
                                 OutageCause.PROVIDER_NETWORK, jst(2026, 6, 12, 12))
    w.app.claim_sla(cid, outage.aggregate_id, jst(2026, 6, 20), True, True, "ticket 1")
    claim_id = w.app.claim_id(cid, outage.aggregate_id)
    # Art. 20.3: claims within 60 days after the breach date: window ends 2026-06-11 + 60 = 2026-08-10
    w.daily(date(2026, 6, 2), date(2026, 8, 10))
    assert "CreditGranted" not in w.names(cid)
    # the day after the window closes (2026-08-11) the undecided claim gets the POLICY default:
    # fee reduction of the minimum = floor(12,000 (June fee, campaign month 3) x 2 credit days / 30) = 800
    for day, period in ((date(2026, 7, 10), "2026-07"), (date(2026, 8, 10), "2026-08")):
        pay(w, cid, period, day)
    w.sweep_on(date(2026, 8, 11))
    granted = w.event(cid, "CreditGranted")
    assert (granted.claim_id, granted.remedy, granted.amount, granted.credit_days) == \
        (claim_id, "fee_reduction", 800, 2)
    assert granted.at == jst(2026, 8, 11, 0)  # business time: 00:00 JST of the deadline's date
    # Art. 20.1: the reduction is a line on the next invoice, September's (issued 2026-09-01)
    w.daily(date(2026, 8, 12), date(2026, 9, 1))
    c = w.app.get_contract(cid)
    september = next(i for i in c.ledger.invoices.values() if i.period == "2026-09")
    assert [(line.kind, line.amount) for line in september.lines if line.kind == "sla_credit"] == \
        [("sla_credit", -800)]


def test_termination_notice_ends_at_month_start(store: Callable[..., World]) -> None:
    w = store()
    cid = monthly_contract(w)
    w.daily(date(2026, 3, 25), date(2026, 4, 1))
    pay(w, cid, "2026-04", date(2026, 4, 10))
    # Art. 10.2: notice on 2026-04-22 (April's notice deadline) -> the last month of service is May
    w.app.notice_termination(cid, None, jst(2026, 4, 22))
    w.daily(date(2026, 4, 2), date(2026, 6, 1))
    ended = w.event(cid, "Terminated")
    # the contract ends at the end of May (2026-05-31); the June month start terminates it, no June invoice
    assert ended.reason.value == "notice" and ended.ended_on == date(2026, 5, 31)
    assert ended.retention_until == date(2026, 7, 30)  # 05-31 + 60: 30 days to 06-30, 30 more in July
    assert w.names(cid).count("Renewed") == 1  # May only


def test_service_discontinuation_ends_every_contract(store: Callable[..., World]) -> None:
    w = store()
    r = w.app.open_contract("G-1", "garoon", "standard", 10, CONTRACTOR, jst(2026, 3, 10), cycle=BillingCycle.MONTHLY)
    gid = r.aggregate_id
    w.app.approve(gid, jst(2026, 3, 12))
    trial = w.app.open_contract("G-2", "garoon", "standard", 10, CONTRACTOR, jst(2026, 3, 11), trial=True)
    late_trial = w.app.open_contract("G-3", "garoon", "standard", 10, CONTRACTOR, jst(2026, 6, 10), trial=True)
    # Art. 18: announced 2026-03-25, at least 3 calendar months -> 2026-06-30 is allowed (earliest 06-25)
    w.app.announce_discontinuation("garoon", date(2026, 6, 30), jst(2026, 3, 25))
    w.sweep_on(date(2026, 5, 1))
    for period in ("2026-04", "2026-05"):
        pay(w, gid, period, date(2026, 5, 20))
    w.sweep_on(date(2026, 6, 29))
    assert w.app.get_contract(gid).state is State.ACTIVE
    w.sweep_on(date(2026, 6, 30))
    for cid in (gid, late_trial.aggregate_id):  # the running trial (ends 07-10) ends too
        ended = w.event(cid, "Terminated")
        assert ended.reason.value == "discontinuation" and ended.ended_on == date(2026, 6, 30)
        assert ended.retention_until == date(2026, 8, 29)  # 06-30 + 60: 31 days of July, 29 of August
    # the first trial (ends 2026-04-10: 30 days from 03-11, Art. 5.2) expired before: not terminated again
    assert "Terminated" not in w.names(trial.aggregate_id)
    assert w.event(trial.aggregate_id, "TrialExpired").expired_on == date(2026, 4, 10)
    item = ServiceDiscontinuation.create_id("garoon")
    assert [type(e).__name__ for e in w.app.events.get(item)] == ["DiscontinuationAnnounced",
                                                                    "DiscontinuationCompleted"]
    w.sweep_on(date(2026, 7, 1))
    assert "Renewed" not in w.names(gid)[w.names(gid).index("Terminated"):]


def test_terms_change_takes_effect(store: Callable[..., World]) -> None:
    w = store()
    # Art. 28: a terms change announced 2026-03-26 takes effect on its date, 2026-05-01
    w.app.announce_terms_change("2026.05", date(2026, 5, 1), "new SLA wording", jst(2026, 3, 26))
    terms = TermsChange.create_id("2026.05")
    w.sweep_on(date(2026, 4, 30))
    assert [type(e).__name__ for e in w.app.events.get(terms)] == ["TermsChangeAnnounced"]
    w.sweep_on(date(2026, 5, 1))
    assert [type(e).__name__ for e in w.app.events.get(terms)] == ["TermsChangeAnnounced", "TermsChangeTookEffect"]
    assert w.sweep_on(date(2026, 5, 2)).fired == 0
