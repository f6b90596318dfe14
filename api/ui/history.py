"""One contract's history as the web pages show it: the facts of
``application.contract_history`` (business dates, the fold, invoices, claims, deadlines), put
into words. This module formats; it computes no rule.

Personal fields read as ``domain.personal_data`` says: erased once the key is destroyed,
redacted for a reader who may not see personal data (auditors).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from application.contract_history import (
    ClaimFacts,
    ContractHistory,
    DeadlineFacts,
    HistoryEntry,
    InvoiceFacts,
    contract_history,
)
from domain.billing import Invoice
from domain.calendar import JST
from domain.contract import Contract, ContractEvents
from domain.personal_data import ERASED_WORD, REDACTED_WORD, is_erased
from domain.policy import Policy

# --------------------------------------------------------------------------- page model


@dataclass(frozen=True)
class Row:
    """One timeline row: the event and the contract's state right after it."""

    version: int
    event: str
    business_date: date
    recorded_at: datetime
    actor: str
    article: str
    details: str
    state: str
    terms: str
    outstanding: int


@dataclass(frozen=True)
class InvoiceView:
    facts: InvoiceFacts
    label: str

    @property
    def invoice(self) -> Invoice:
        return self.facts.invoice

    @property
    def late_interest(self) -> int:
        return self.facts.late_interest

    @property
    def overdue_days(self) -> int:
        return self.facts.overdue_days

    @property
    def outstanding(self) -> int:
        return self.facts.outstanding

    @property
    def overdue_since(self) -> date:
        return self.facts.overdue_since


@dataclass(frozen=True)
class ClaimView:
    claim_id: str
    outage: str
    outage_hours: int
    cause: str
    received_on: date
    proofs: str
    eligible: bool
    reason: str | None
    breach_date: date | None
    credit_days: int
    minimum: int
    maximum: int
    liability_cap: int
    status: str
    decision: str
    outage_from: date | None = None  # the outage's first and last day (JST), for the timeline picture
    outage_to: date | None = None


@dataclass(frozen=True)
class DeadlineView:
    due_on: date
    kind: str
    label: str
    ref: str
    past_due: bool


@dataclass
class History:
    contract_id: uuid.UUID
    as_of: date
    rows: list[Row]
    later_events: int  # events after the as-of date (not folded)
    total_events: int
    contract: Contract | None  # None: the contract did not exist yet on ``as_of``
    totals: dict[str, int]
    invoices: list[InvoiceView] = field(default_factory=list)
    claims: list[ClaimView] = field(default_factory=list)
    deadlines: list[DeadlineView] = field(default_factory=list)
    first_date: date | None = None


# --------------------------------------------------------------------------- personal data


def _personal(value: Any, sees_personal_data: bool, show: Callable[[Any], Any]) -> str:
    if is_erased(value):
        return ERASED_WORD
    if not value:
        return "-"
    return str(show(value)) if sees_personal_data else REDACTED_WORD


def _name(contractor: Any) -> Any:
    return contractor.get("name", "-")


def contractor_text(contract: Contract, sees_personal_data: bool) -> str:
    """The contractor as the page shows it: erased, redacted (auditors) or the name (operators)."""
    if contract.data_deleted:
        return ERASED_WORD
    return _personal(contract.contractor, sees_personal_data, _name)


def contractor_fields(contract: Contract, sees_personal_data: bool) -> list[tuple[str, str]]:
    """Every contractor field for operators (empty for auditors and once erased)."""
    if contract.data_deleted or not sees_personal_data or is_erased(contract.contractor):
        return []
    return [(k.replace("_", " "), str(v)) for k, v in contract.contractor.items()]


# --------------------------------------------------------------------------- event details


def _yen(amount: int) -> str:
    return f"{amount:,} yen"


def _instant(value: datetime) -> str:
    return value.astimezone(JST).strftime("%Y-%m-%d %H:%M")


def invoice_label(invoice: Invoice) -> str:
    if invoice.kind == "upgrade":
        return f"upgrade {invoice.month}"
    return invoice.period


def _invoice_ref(entry: HistoryEntry) -> str:
    return invoice_label(entry.invoice) if entry.invoice else str(entry.event.invoice_id)


def _evidence(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


Details = Callable[[Any, HistoryEntry, bool], str]


def _who(e: Any, sees: bool) -> str:
    return _personal(getattr(e, "contractor", None), sees, _name)


def _opened(e: Any, _: HistoryEntry, __: bool) -> str:
    return f"customer {e.customer_number}, service {e.service}" + (f", reference {e.reference}"
                                                                   if e.reference else "")


def _period(e: Any, _: HistoryEntry, __: bool) -> str:
    period = str(e.month) if e.month == e.period_end else f"{e.month}..{e.period_end}"
    return f"period {period}, invoice due {e.due_on}"


def _change_requested(e: Any, _: HistoryEntry, __: bool) -> str:
    charge = f", upgrade charge {_yen(e.upgrade_charge)}" if e.upgrade_charge else ""
    return f"to {e.plan.grade} x {e.users} users from {e.effective_month} (received {e.received_on}){charge}"


def _grade_changed(e: Any, _: HistoryEntry, __: bool) -> str:
    return f"now {e.plan.grade} x {e.users} users from {e.effective_month}"


def _users_changed(e: Any, entry: HistoryEntry, __: bool) -> str:
    grade = entry.terms.grade if entry.terms else "-"
    return f"now {grade} x {e.users} users from {e.effective_month}"


def _claimed(e: Any, _: HistoryEntry, sees: bool) -> str:
    evidence = _personal(getattr(e, "evidence", None), sees, _evidence)
    return (f"claim {str(e.claim_id)[:8]}: outage {_instant(e.started_at)} - {_instant(e.ended_at)} "
            f"({e.cause.value.replace('_', ' ')}); evidence {evidence}")


def _privacy_answer(e: Any) -> str:
    kept = (f"kept {', '.join(e.kept_fields)} until {e.kept_until or 'the records period ends'}"
            if e.kept_fields else "nothing kept")
    return f"{e.request.replace('_', ' ')} request of {e.received_on}: erased {len(e.erased_fields)} fields; {kept}"


_E = ContractEvents
DETAILS: dict[type[Any], Details] = {
    _E.Opened: _opened,
    _E.TrialStarted: lambda e, _, sees: (f"{e.plan.grade} x {e.users} users, trial until {e.trial_ends_on}; "
                                         f"contractor {_who(e, sees)}"),
    _E.Applied: lambda e, _, sees: f"{e.plan.grade} x {e.users} users, {e.cycle.value}; contractor {_who(e, sees)}",
    _E.Approved: lambda e, _, __: f"concluded {e.concluded_on}, service starts {e.first_month}",
    _E.Rejected: lambda e, _, __: f"rejected on {e.rejected_on}" + ("; the trial continues" if e.resumes_trial
                                                                     else ""),
    _E.ServicePeriodStarted: _period,
    _E.Renewed: _period,
    _E.ChangeRequested: _change_requested,
    _E.GradeChanged: _grade_changed,
    _E.UsersChanged: _users_changed,
    _E.TerminationNoticed: lambda e, _, __: f"last month {e.effective_month} (received {e.received_on})",
    _E.PaymentReceived: lambda e, entry, __: (f"{_yen(e.amount)} paid on {e.paid_on} for invoice "
                                              f"{_invoice_ref(entry)}"),
    _E.PaymentOverdue: lambda e, entry, __: f"invoice {_invoice_ref(entry)} due {e.due_on}: {_yen(e.unpaid)} unpaid",
    _E.SuspensionNoticed: lambda e, _, __: f"service stops on {e.stop_on} unless paid",
    _E.SuspensionLifted: lambda e, _, __: f"paid on {e.lifted_on}: suspension lifted",
    _E.Terminated: lambda e, _, __: (f"{e.reason.value.replace('_', ' ')}; ended {e.ended_on}, "
                                     f"stored data kept until {e.retention_until}"),
    _E.TrialExpired: lambda e, _, __: f"expired {e.expired_on}, stored data kept until {e.retention_until}",
    _E.SlaBreachClaimed: _claimed,
    _E.CreditGranted: lambda e, _, __: (f"claim {str(e.claim_id)[:8]}: {e.remedy.replace('_', ' ')} "
                                        f"{_yen(e.amount)} ({e.credit_days} credit days, {e.breach_month})"),
    _E.CreditRejected: lambda e, _, __: f"claim {str(e.claim_id)[:8]}: {e.reason}",
    _E.ContractorInfoChanged: lambda e, _, sees: f"contractor {_who(e, sees)}",
    _E.DataDeleted: lambda e, _, __: f"stored data deleted and personal data erased on {e.deleted_on}",
    _E.StoredDataDeleted: lambda e, _, __: f"stored data of {e.service} purged on {e.deleted_on}",
    _E.ContractorDataErased: lambda e, _, __: f"personal data erased on {e.erased_on}: {e.reason}",
    _E.PrivacyRequestAnswered: lambda e, _, __: _privacy_answer(e),
    _E.PaymentReversed: lambda e, entry, __: (f"{_yen(e.amount)} paid on {e.paid_on} for invoice {_invoice_ref(entry)} "
                                              f"reversed on {e.reversed_on}: {e.reason}"),
    _E.WriteOffReversed: lambda e, entry, __: (f"{_yen(e.amount)} written off on {e.written_off_on} for invoice "
                                               f"{_invoice_ref(entry)} owed again"),
    _E.DebtWrittenOff: lambda e, entry, __: (f"{_yen(e.amount)} of invoice {_invoice_ref(entry)} written off: "
                                             f"{e.reason}"),
    _E.SuspensionStopMoved: lambda e, _, __: f"stop date moved from {e.previous_stop_on} to {e.stop_on}: {e.reason}",
    _E.PaymentReminded: lambda e, entry, __: (f"reminder {'before' if e.stage == 'before_due' else 'after'} the due "
                                              f"date: invoice {_invoice_ref(entry)} due {e.due_on}, {_yen(e.unpaid)} "
                                              "unpaid"),
    _E.InvoiceIssued: lambda e, _, __: (f"{e.document['document_type'].replace('_', ' ')} {e.document['number']} "
                                        f"({e.document['kind']}, {e.document['period']}): "
                                        f"{_yen(e.document['total'])}"),
    _E.InvoiceVoided: lambda e, entry, __: f"invoice {_invoice_ref(entry)} voided: {e.reason}",
    _E.LateInterestWaived: lambda e, entry, __: (f"late interest {_yen(e.amount)} of invoice {_invoice_ref(entry)} "
                                                 f"waived: {e.reason}"),
}
"""How each event class reads on the timeline."""


def _details(entry: HistoryEntry, sees_personal_data: bool) -> str:
    describe = DETAILS.get(type(entry.event))
    return describe(entry.event, entry, sees_personal_data) if describe is not None else ""


def _terms(entry: HistoryEntry) -> str:
    t = entry.terms
    if t is None:
        return "-"
    cycle = f", {t.cycle}" if t.cycle else ""
    return f"{t.service} {t.grade} x {t.users}{cycle}"


# --------------------------------------------------------------------------- views


def _row(entry: HistoryEntry, sees_personal_data: bool) -> Row:
    return Row(version=entry.version, event=entry.name, business_date=entry.business_date,
               recorded_at=entry.recorded_at, actor=entry.actor, article=entry.article,
               details=_details(entry, sees_personal_data), state=entry.state, terms=_terms(entry),
               outstanding=entry.outstanding)


def _claim(c: ClaimFacts) -> ClaimView:
    a, outage, d = c.assessment, c.outage, c.decision
    if d is not None and d.status == "granted":  # the status is shown beside it: "granted: fee reduction"
        decision = f"{(d.remedy or '').replace('_', ' ')} {_yen(d.amount or 0)}"
    else:
        decision = "-"
    return ClaimView(
        claim_id=str(c.claim_id), outage=f"{_instant(outage.started_at)} - {_instant(outage.ended_at)}",
        outage_hours=int(outage.duration.total_seconds() // 3600), cause=outage.cause.value.replace("_", " "),
        received_on=c.received_on,
        proofs=", ".join(p for p, ok in (("payment", c.proof_of_payment), ("breach", c.proof_of_breach)) if ok)
        or "none",
        eligible=a.eligible, reason=a.reason, breach_date=a.breach_date, credit_days=a.credit_days,
        minimum=a.minimum, maximum=a.maximum, liability_cap=a.liability_cap, status=c.status, decision=decision,
        outage_from=outage.started_at.astimezone(JST).date(), outage_to=outage.ended_at.astimezone(JST).date())


def _deadline(d: DeadlineFacts) -> DeadlineView:
    ref = invoice_label(d.invoice) if d.invoice is not None else (d.ref[:8] if len(d.ref) == 36 else d.ref)
    return DeadlineView(d.due_on, d.kind, d.label, ref, d.past_due)


def view(facts: ContractHistory, sees_personal_data: bool) -> History:
    """The page model of a contract's history."""
    return History(
        contract_id=facts.contract_id, as_of=facts.as_of,
        rows=[_row(entry, sees_personal_data) for entry in facts.entries],
        later_events=facts.later_events, total_events=facts.total_events, contract=facts.contract,
        totals=facts.totals,
        invoices=[InvoiceView(i, invoice_label(i.invoice)) for i in facts.invoices],
        claims=[_claim(c) for c in facts.claims],
        deadlines=[_deadline(d) for d in facts.deadlines],
        first_date=facts.first_date)


def fold(contract_id: uuid.UUID, events: Sequence[Any], as_of: date | None, policy: Policy,
         sees_personal_data: bool, today: date) -> History:
    """``application.contract_history.contract_history`` as the page shows it."""
    return view(contract_history(contract_id, events, as_of, policy, today), sees_personal_data)


def recorded_jst(value: datetime) -> str:
    return value.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S")


__all__ = ["History", "fold", "view", "contractor_text", "contractor_fields", "recorded_jst"]
