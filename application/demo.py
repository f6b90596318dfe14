"""A scripted lifecycle: trial -> paid -> change -> late payment -> outage claim ->
termination -> stored-data deletion -> erasure request -> contractor-data erasure.
Yields human-readable lines; every figure comes from the contract's own events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

from application.service import ContractsApplication
from domain.calendar import JST, Month
from domain.contract import BillingCycle
from domain.sla import OutageCause


def _jst(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, tzinfo=JST).astimezone(UTC)


def run_demo(app: ContractsApplication) -> Iterator[str]:
    contractor = {"name": "Example Trading K.K.", "address": "1-1 Sample-cho, Tokyo",
                  "contact_name": "Hanako Sample", "contact_email": "hanako@example.invalid"}
    r = app.open_contract("CUST-0001", "kintone", "standard", 10, contractor, _jst(2026, 3, 2), trial=True)
    cid = r.aggregate_id
    c = app.get_contract(cid)
    yield f"2026-03-02 trial started for {c.service}/{c.plan.grade if c.plan else '?'}, ends {c.trial_ends_on}"
    app.apply_from_trial(cid, "standard", 10, BillingCycle.MONTHLY, None, _jst(2026, 3, 20))
    app.approve(cid, _jst(2026, 3, 24))
    c = app.get_contract(cid)
    yield f"2026-03-24 approved: concluded {c.concluded_on}, service starts {c.first_month} (Art. 8.1)"
    app.advance(cid, Month(2026, 4))
    app.request_change(cid, "premium", 12, None, _jst(2026, 4, 22))
    c = app.get_contract(cid)
    change = c.pending_changes[0]
    yield f"2026-04-22 change to premium x12 requested: effective {change.effective_month} (Art. 10.1, deadline 04-22)"
    for month in (Month(2026, 5), Month(2026, 6)):
        app.advance(cid, month)
    c = app.get_contract(cid)
    for inv in c.ledger.invoices.values():
        yield f"invoice {inv.period}: total {inv.total} yen due {inv.due_on} " + \
              ", ".join(f"{line.kind}={line.amount}" for line in inv.lines)
    april = next(i for i in c.ledger.invoices.values() if i.period == "2026-04")
    app.mark_overdue(cid, april.invoice_id, date(2026, 6, 1))
    app.record_payment(cid, april.invoice_id, april.total, date(2026, 7, 1), _jst(2026, 7, 1))
    c = app.get_contract(cid)
    interest = c.ledger.invoices[april.invoice_id].late_interest(date(2026, 7, 1), app.policy.late_interest_rate)
    yield f"2026-07-01 April invoice due 05-31 paid 07-01 (30 days): late interest {interest} yen (Art. 9.4)"
    outage = app.record_outage("kintone", _jst(2026, 6, 10, 9), _jst(2026, 6, 12, 11),
                               OutageCause.PROVIDER_NETWORK, _jst(2026, 6, 12, 12))
    _, assessment = app.claim_sla(cid, outage.aggregate_id, _jst(2026, 6, 20), True, True, "outage ticket #1")
    yield (f"2026-06-20 SLA claim: eligible={assessment.eligible}, credit days {assessment.credit_days}, "
           f"min {assessment.minimum}, max {assessment.maximum} yen (Art. 20)")
    claim_id = app.claim_id(cid, outage.aggregate_id)
    app.decide_claim(cid, claim_id, None, None, _jst(2026, 6, 22))
    app.advance(cid, Month(2026, 7))
    c = app.get_contract(cid)
    july = next(i for i in c.ledger.invoices.values() if i.period == "2026-07")
    yield "invoice 2026-07 with SLA credit: " + ", ".join(f"{line.kind}={line.amount}" for line in july.lines)
    app.notice_termination(cid, None, _jst(2026, 7, 10))
    c = app.get_contract(cid)
    yield f"2026-07-10 termination noticed: last month of service {c.termination_month}"
    app.advance(cid, Month(2026, 9))
    c = app.get_contract(cid)
    yield (f"contract {c.state.value} ({c.termination_reason.value if c.termination_reason else '-'}) "
           f"on {c.ended_on}; stored data kept until {c.retention_until} (Art. 15.3)")
    assert c.retention_until is not None and c.ended_on is not None
    deletion_on, ended_on, policy = c.retention_until, c.ended_on, app.policy
    yield (f"contractor data kept while anything is owed ({c.owed().describe()}): no erasure date yet "
           "(Art. 13, spec 10)")
    for inv in sorted(c.ledger.invoices.values(), key=lambda i: i.issued_on):
        if inv.outstanding > 0:
            app.record_payment(cid, inv.invoice_id, inv.outstanding, ended_on, _jst(2026, 9, 1))
    c = app.get_contract(cid)
    yield (f"{ended_on} the rest paid: last invoice issued {c.last_invoice_on()}, records kept until "
           f"{c.records_kept_until(policy)} ({policy.records_retention_years} years after the fiscal year), "
           f"contractor data erased on {c.contractor_data_erasure_on(policy)}")
    app.delete_stored_data(cid, deletion_on)
    c = app.get_contract(cid)
    yield (f"{c.stored_data_deleted_on} StoredDataDeleted: the platform purges the customer's stored data "
           f"(Art. 15.3); the contractor is still {c.contractor.get('name')}")
    _, answer = app.answer_privacy_request(cid, "erase", _jst(2026, 11, 2))
    yield (f"2026-11-02 erasure request (privacy policy 7): erased {', '.join(answer['erased_fields'])} at once; "
           f"kept {', '.join(answer['kept_fields'])} until {answer['kept_until']} (Corporate Tax Act, "
           "Consumption Tax Act Art. 57-4)")
    erase_on = c.contractor_data_erasure_on(policy)
    assert erase_on is not None
    app.erase_contractor_data(cid, erase_on)
    c = app.get_contract(cid)
    yield (f"{c.contractor_erased_on} ContractorDataErased: keys destroyed, contractor info now "
           f"{c.contractor or 'erased'}; {len(c.ledger.invoices)} invoices and their amounts remain")
    yield f"{c.version} events stored for contract {cid}"
