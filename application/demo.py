"""A scripted lifecycle told in date order, with the real deadline scheduler doing what it does in
the service: trial -> application -> month starts and invoices -> a change -> a late payment ->
outage claim -> termination -> stored-data deletion -> erasure request -> contractor-data erasure.

The caller passes the business clock (moved forward only, as a sandbox client moves it),
``sweep``, one tick of the deadline scheduler at that clock (``contracts demo`` passes the real
leader-elected ``DeadlineScheduler`` over in-process read models), and ``due_dates(until)``, the
dates of the open deadlines up to ``until`` (the read models' deadlines table): the clock stops
at each, so every line is printed on the day it happened. Everything that falls due is
fired by the sweeps, never called by the script: month starts (invoices, the change, the end),
payment overdue (Art. 9.5), the SLA window, the deletions. The billing system's part, paying
each invoice, is the script's: on its due date, except April's, paid five days late, before
the spec 7 suspension notice (14 days after the due date) would fall due. Every figure printed
comes from the contract's own events."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Protocol

from application.service import ContractsApplication
from application.sweep import KIND_ORDER, SweepReport
from domain.calendar import JST
from domain.contract import BillingCycle
from domain.deadlines import deadline_label
from domain.sla import OutageCause


class SettableClock(Protocol):
    def now(self) -> datetime: ...

    def set(self, at: datetime) -> None: ...


def _jst(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, tzinfo=JST).astimezone(UTC)


def _at(day: date, h: int = 10) -> datetime:
    return _jst(day.year, day.month, day.day, h)


def run_demo(app: ContractsApplication, clock: SettableClock, sweep: Callable[[], SweepReport | None],
             due_dates: Callable[[date], list[date]]) -> Iterator[str]:
    contractor = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo",
                  "contact_name": "Hanako Sample", "contact_email": "hanako@example.invalid"}
    printed: set[object] = set()
    late = {"2026-04"}  # paid by hand, late

    def tick(day: date) -> Iterator[str]:
        clock.set(_at(day))
        report = sweep()
        if report is not None and report.fired:
            kinds = sorted(report.by_kind.items(), key=lambda kv: KIND_ORDER[kv[0]])
            yield f"{day} scheduler fired: " + "; ".join(
                f"{deadline_label(k)}{f' x{n}' if n > 1 else ''}" for k, n in kinds)
        c = app.get_contract(cid)
        for inv in sorted(c.ledger.invoices.values(), key=lambda i: i.issued_on):
            if inv.invoice_id not in printed:
                printed.add(inv.invoice_id)
                yield (f"{inv.issued_on} invoice {inv.period}: {inv.total} yen due {inv.due_on} ("
                       + ", ".join(f"{line.kind} {line.amount}" for line in inv.lines) + ")")

    def move_to(day: date) -> Iterator[str]:
        """The billing system pays what falls due before ``day`` on its due date; then the clock
        reaches ``day``. A sweep at every stop."""
        while True:
            today = clock.now().astimezone(JST).date()
            c = app.get_contract(cid)
            payable = sorted((i for i in c.ledger.invoices.values() if i.outstanding > 0 and i.due_on < day
                              and i.period not in late), key=lambda i: i.due_on)
            deadlines = [d for d in due_dates(day) if today < d < day]
            stop = min([*(i.due_on for i in payable[:1]), *deadlines[:1]], default=None)
            if stop is None:
                break
            yield from tick(stop)
            for inv in (i for i in payable if i.due_on == stop):
                app.record_payment(cid, inv.invoice_id, inv.outstanding, inv.due_on, clock.now())
                yield f"{inv.due_on} invoice {inv.period} paid on its due date: {inv.outstanding} yen"
        yield from tick(day)

    clock.set(_jst(2026, 3, 2))
    r = app.open_contract("CUST-0001", "kintone", "standard", 10, contractor, clock.now(), trial=True)
    cid = r.aggregate_id
    c = app.get_contract(cid)
    yield f"2026-03-02 trial started for {c.service}/{c.plan.grade if c.plan else '?'}, ends {c.trial_ends_on}"
    yield from move_to(date(2026, 3, 20))
    app.apply_from_trial(cid, "standard", 10, BillingCycle.MONTHLY, None, clock.now())
    yield from move_to(date(2026, 3, 24))
    app.approve(cid, clock.now())
    c = app.get_contract(cid)
    yield f"2026-03-24 approved: concluded {c.concluded_on}, service starts {c.first_month} (Art. 8.1)"
    yield from move_to(date(2026, 4, 22))
    app.request_change(cid, "premium", 12, None, clock.now())
    change = app.get_contract(cid).pending_changes[0]
    yield f"2026-04-22 change to premium x12 requested: effective {change.effective_month} (Art. 10.1)"
    yield from move_to(date(2026, 6, 5))
    c = app.get_contract(cid)
    april = next(i for i in c.ledger.invoices.values() if i.period == "2026-04")
    app.record_payment(cid, april.invoice_id, april.outstanding, date(2026, 6, 5), clock.now())
    late.clear()
    c = app.get_contract(cid)
    interest = c.ledger.invoices[april.invoice_id].late_interest(date(2026, 6, 5), app.policy.late_interest_rate)
    yield (f"2026-06-05 April invoice (due {april.due_on}) paid late: late interest {interest} yen for the 4 days "
           "06-01 to 06-04 (Art. 9.4); paid before the suspension notice (spec 7) would fall due")
    yield from move_to(date(2026, 6, 12))
    outage = app.record_outage("kintone", _jst(2026, 6, 10, 9), _jst(2026, 6, 12, 11),
                               OutageCause.PROVIDER_NETWORK, _jst(2026, 6, 12, 12))
    yield "2026-06-12 outage recorded: kintone down 2026-06-10 09:00 to 06-12 11:00 JST (provider network)"
    yield from move_to(date(2026, 6, 20))
    _, assessment = app.claim_sla(cid, outage.aggregate_id, clock.now(), True, True, "outage ticket #1")
    yield (f"2026-06-20 SLA claim: eligible={assessment.eligible}, credit days {assessment.credit_days}, "
           f"min {assessment.minimum}, max {assessment.maximum} yen (Art. 20)")
    yield from move_to(date(2026, 6, 22))
    app.decide_claim(cid, app.claim_id(cid, outage.aggregate_id), None, None, clock.now())
    yield "2026-06-22 SLA claim granted by the operator: credited on the next invoice"
    yield from move_to(date(2026, 7, 10))
    app.notice_termination(cid, None, clock.now())
    c = app.get_contract(cid)
    yield f"2026-07-10 termination noticed: last month of service {c.termination_month}"
    assert c.termination_month is not None
    end_month = c.termination_month.plus(1)
    yield from move_to(date(end_month.year, end_month.month, 1))
    c = app.get_contract(cid)
    yield (f"contract {c.state.value} ({c.termination_reason.value if c.termination_reason else '-'}) "
           f"on {c.ended_on}; stored data kept until {c.retention_until} (Art. 15.3)")
    yield from move_to(date(2026, 11, 2))
    _, answer = app.answer_privacy_request(cid, "erase", clock.now())
    yield (f"2026-11-02 erasure request (privacy policy 7): erased {', '.join(answer['erased_fields'])} at once; "
           f"kept {', '.join(answer['kept_fields'])} until {answer['kept_until']} (Corporate Tax Act, "
           "Consumption Tax Act Art. 57-4)")
    c = app.get_contract(cid)
    policy = app.policy
    erase_on = c.contractor_data_erasure_on(policy)
    counted_from = (f"the tax return's filing deadline, {policy.records_filing_months} months after the fiscal year "
                    "end" if policy.records_filing_months else "the end of the fiscal year")
    yield (f"records kept until {c.records_kept_until(policy)} ({policy.records_retention_years} years from "
           f"{counted_from} of the last invoice, {c.last_invoice_on()}); contractor data erased on {erase_on}")
    assert erase_on is not None
    yield from move_to(erase_on)
    c = app.get_contract(cid)
    yield (f"{c.contractor_erased_on} contractor data erased: keys destroyed, contractor info now "
           f"{c.contractor or 'erased'}; {len(c.ledger.invoices)} invoices and their amounts remain")
    yield f"{c.version} events stored for contract {cid}"
