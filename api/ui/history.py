"""One contract's history as the web pages show it: a fold of its events, one by one.

The page asks "how did the contract stand on business date D?" (an auditor walking through a
year: a sandbox year has its business dates spread over months while every event is *recorded*
within minutes). Each event gets a **business date** (JST):

- the business instant of the command that stored it (``at``), when the event carries one;
- otherwise the date the event took effect: a period start, renewal or change on the 1st of its
  month, an overdue mark, suspension notice or lift, trial expiry or data deletion on its date;
  the end of a noticed (or not renewed) term on the 1st of the month after its last month,
  a stop for non-payment or a discontinuation on its end date;
- ``Opened`` (stored with the trial or application that follows it) shares that event's date;
- never earlier than the event before it (business time only moves forward), so the events of
  a date D are a prefix of the stream: the state "as of D" is the fold of that prefix.

That fold is the ``Contract`` aggregate itself (``event.mutate``, as the repository does), so
invoices, payments, SLA assessments and deadlines come from the same rules the service applies:
late interest ``Invoice.late_interest(D)`` (Art. 9.4), ``Contract.assess`` (Art. 20), and
``domain.deadlines`` (the deadlines projection's own rule function).

This differs on purpose from the API's ``as_of`` (an instant of *recorded* time: what the
service knew then). Both dates are shown on every timeline row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from application.actors import actor_of
from application.audit import ERASED
from domain.billing import Invoice
from domain.calendar import JST, Month, jst_date
from domain.contract import Contract, TerminationReason
from domain.deadlines import Timeline, contract_deadlines
from domain.policy import Policy

ERASED_TEXT = "erased"
REDACTED_TEXT = "redacted"

# The rule each kind of event applies (events that decide an article record it themselves).
EVENT_ARTICLES = {
    "Opened": "Art. 2.1",
    "TrialStarted": "Art. 5.1",
    "TrialExpired": "Art. 5.2",
    "Applied": "Art. 2.2",
    "Approved": "Art. 2.3, 8.1",
    "ServicePeriodStarted": "Art. 8.1",
    "Renewed": "Art. 8.2",
    "ChangeRequested": "Art. 10.1",
    "GradeChanged": "Art. 10.1",
    "UsersChanged": "Art. 10.1",
    "TerminationNoticed": "Art. 8.3, 10.1",
    "PaymentReceived": "Art. 9.3",
    "PaymentOverdue": "Art. 9.5",
    "SuspensionNoticed": "Art. 9.5",
    "SuspensionLifted": "Art. 9.5",
    "SlaBreachClaimed": "Art. 20.3",
    "CreditGranted": "Art. 20.1",
    "CreditRejected": "Art. 20",
    "ContractorInfoChanged": "Art. 12.1",
    "DataDeleted": "Art. 15.3",
}

DEADLINE_LABELS = {
    "trial_end": "trial ends (Art. 5.2)",
    "month_start": "month start: period, renewal, change or end (Art. 8, 10)",
    "payment_overdue": "payment overdue (Art. 9.5)",
    "suspension_notice": "suspension notice (spec 7)",
    "suspension_stop": "service stop for non-payment (spec 7)",
    "sla_window_end": "SLA claim window closes (Art. 20.3)",
    "retention_deletion": "data deletion (Art. 15.3)",
}


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
    invoice: Invoice
    label: str
    late_interest: int
    overdue_days: int

    @property
    def outstanding(self) -> int:
        return self.invoice.outstanding

    @property
    def overdue_since(self) -> date:
        return self.invoice.due_on + timedelta(days=1)


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
    invoices: list[InvoiceView] = field(default_factory=list)
    claims: list[ClaimView] = field(default_factory=list)
    deadlines: list[DeadlineView] = field(default_factory=list)
    first_date: date | None = None

    @property
    def totals(self) -> dict[str, int]:
        return {
            "total": sum(i.invoice.total for i in self.invoices),
            "paid": sum(i.invoice.paid for i in self.invoices),
            "outstanding": sum(i.invoice.outstanding for i in self.invoices),
            "late_interest": sum(i.late_interest for i in self.invoices),
        }


# --------------------------------------------------------------------------- business dates


def _own_business_date(event: Any, before: Contract | None) -> date | None:
    at = getattr(event, "at", None)
    if isinstance(at, datetime):
        return jst_date(at)
    name = type(event).__name__
    if name == "Terminated":
        reason = event.reason
        if before is not None and reason is TerminationReason.NOTICE and before.termination_month is not None:
            return before.termination_month.plus(1).first_day
        if before is not None and reason is TerminationReason.TERM_EXPIRED and before.period_end is not None:
            return before.period_end.plus(1).first_day
        return event.ended_on  # type: ignore[no-any-return]
    for attr in ("overdue_on", "noticed_on", "lifted_on", "expired_on", "deleted_on", "rejected_on",
                 "received_on", "paid_on"):
        value = getattr(event, attr, None)
        if isinstance(value, date):
            return value
    for attr in ("month", "effective_month"):
        value = getattr(event, attr, None)
        if isinstance(value, Month):
            return value.first_day
    return None


def _recorded(event: Any) -> datetime:
    stamp = getattr(event, "timestamp", None)
    return stamp if isinstance(stamp, datetime) else datetime.now(UTC)


# --------------------------------------------------------------------------- personal data


def _personal(value: Any, sees_personal_data: bool, show: Any) -> str:
    if value == ERASED["contractor"] or value == ERASED["evidence"]:
        return ERASED_TEXT
    if not value:
        return "-"
    return str(show(value)) if sees_personal_data else REDACTED_TEXT


def contractor_text(contract: Contract, sees_personal_data: bool) -> str:
    """The contractor as the page shows it: erased, redacted (auditors) or the name (operators)."""
    if contract.data_deleted:
        return ERASED_TEXT
    return _personal(contract.contractor, sees_personal_data, lambda c: c.get("name", "-"))


def contractor_fields(contract: Contract, sees_personal_data: bool) -> list[tuple[str, str]]:
    """Every contractor field for operators (empty for auditors and once erased)."""
    if contract.data_deleted or not sees_personal_data or contract.contractor == ERASED["contractor"]:
        return []
    return [(k.replace("_", " "), str(v)) for k, v in contract.contractor.items()]


# --------------------------------------------------------------------------- event details


def _yen(amount: int) -> str:
    return f"{amount:,} yen"


def _details(event: Any, before: Contract | None, after: Contract, sees_personal_data: bool) -> str:
    name = type(event).__name__
    e = event

    def who() -> str:
        return _personal(getattr(e, "contractor", None), sees_personal_data, lambda c: c.get("name", "-"))

    if name == "Opened":
        return f"customer {e.customer_number}, service {e.service}" + (f", reference {e.reference}"
                                                                       if e.reference else "")
    if name == "TrialStarted":
        return f"{e.plan.grade} x {e.users} users, trial until {e.trial_ends_on}; contractor {who()}"
    if name == "Applied":
        return f"{e.plan.grade} x {e.users} users, {e.cycle.value}; contractor {who()}"
    if name == "Approved":
        return f"concluded {e.concluded_on}, service starts {e.first_month}"
    if name == "Rejected":
        return f"rejected on {e.rejected_on}" + ("; the trial continues" if e.resumes_trial else "")
    if name in ("ServicePeriodStarted", "Renewed"):
        period = str(e.month) if e.month == e.period_end else f"{e.month}..{e.period_end}"
        return f"period {period}, invoice due {e.due_on}"
    if name == "ChangeRequested":
        charge = f", upgrade charge {_yen(e.upgrade_charge)}" if e.upgrade_charge else ""
        return f"to {e.plan.grade} x {e.users} users from {e.effective_month} (received {e.received_on}){charge}"
    if name in ("GradeChanged", "UsersChanged"):
        grade = e.plan.grade if name == "GradeChanged" else (after.plan.grade if after.plan else "-")
        return f"now {grade} x {e.users} users from {e.effective_month}"
    if name == "TerminationNoticed":
        return f"last month {e.effective_month} (received {e.received_on})"
    if name == "PaymentReceived":
        invoice = after.ledger.invoices.get(e.invoice_id)
        label = invoice_label(invoice) if invoice else str(e.invoice_id)
        return f"{_yen(e.amount)} paid on {e.paid_on} for invoice {label}"
    if name == "PaymentOverdue":
        invoice = after.ledger.invoices.get(e.invoice_id)
        label = invoice_label(invoice) if invoice else str(e.invoice_id)
        return f"invoice {label} due {e.due_on}: {_yen(e.unpaid)} unpaid"
    if name == "SuspensionNoticed":
        return f"service stops on {e.stop_on} unless paid"
    if name == "SuspensionLifted":
        return f"paid on {e.lifted_on}: suspension lifted"
    if name == "Terminated":
        return f"{e.reason.value.replace('_', ' ')}; ended {e.ended_on}, data kept until {e.retention_until}"
    if name == "TrialExpired":
        return f"expired {e.expired_on}, data kept until {e.retention_until}"
    if name == "SlaBreachClaimed":
        evidence = _personal(getattr(e, "evidence", None), sees_personal_data,
                             lambda text: text if len(text) <= 60 else text[:57] + "...")
        return (f"claim {str(e.claim_id)[:8]}: outage {_instant(e.started_at)} - {_instant(e.ended_at)} "
                f"({e.cause.value.replace('_', ' ')}); evidence {evidence}")
    if name == "CreditGranted":
        return (f"claim {str(e.claim_id)[:8]}: {e.remedy.replace('_', ' ')} {_yen(e.amount)} "
                f"({e.credit_days} credit days, {e.breach_month})")
    if name == "CreditRejected":
        return f"claim {str(e.claim_id)[:8]}: {e.reason}"
    if name == "ContractorInfoChanged":
        return f"contractor {who()}"
    if name == "DataDeleted":
        return f"personal data erased on {e.deleted_on}"
    return ""


def _instant(value: datetime) -> str:
    return value.astimezone(JST).strftime("%Y-%m-%d %H:%M")


def invoice_label(invoice: Invoice) -> str:
    if invoice.kind == "upgrade":
        return f"upgrade {invoice.month}"
    return invoice.period


def _terms(contract: Contract) -> str:
    if contract.plan is None:
        return "-"
    cycle = f", {contract.cycle.value}" if contract.cycle else ""
    return f"{contract.service} {contract.plan.grade} x {contract.users}{cycle}"


# --------------------------------------------------------------------------- the fold


def fold(contract_id: uuid.UUID, events: Sequence[Any], as_of: date | None, policy: Policy,
         sees_personal_data: bool, today: date) -> History:
    """The timeline of every event up to ``as_of`` (business date; None: all of them), with the
    state after each, and the contract, invoices, claims and deadlines as they stood then.
    Late interest is computed as of ``as_of`` (or ``today`` when not given)."""
    day = as_of or today
    rows: list[Row] = []
    aggregate: Contract | None = None
    previous: date | None = None
    pending_opened: list[Any] = []  # events waiting for the business date of the next one
    decisions: dict[uuid.UUID, str] = {}
    timeline = Timeline()
    folded = 0
    first_date: date | None = None

    def emit(event: Any, business_date: date) -> bool:
        """Fold one event if it lies on or before the as-of date; False once past it."""
        nonlocal aggregate, folded, first_date
        if first_date is None:
            first_date = business_date
        if as_of is not None and business_date > as_of:
            return False
        before = aggregate
        aggregate = event.mutate(aggregate)
        assert isinstance(aggregate, Contract)
        timeline.apply(event)
        name = type(event).__name__
        if name == "CreditGranted":
            decisions[event.claim_id] = (f"granted: {event.remedy.replace('_', ' ')} {_yen(event.amount)}")
        elif name == "CreditRejected":
            decisions[event.claim_id] = "rejected"
        article = getattr(event, "article", None) or EVENT_ARTICLES.get(name, "-")
        recorded_actor = actor_of(event)
        actor = recorded_actor.describe() if recorded_actor is not None else "-"
        rows.append(Row(
            version=event.originator_version, event=name, business_date=business_date,
            recorded_at=_recorded(event), actor=str(actor), article=str(article),
            details=_details(event, before, aggregate, sees_personal_data),
            state=aggregate.state.value, terms=_terms(aggregate), outstanding=aggregate.ledger.outstanding()))
        folded += 1
        return True

    stopped = False
    for event in events:
        own = _own_business_date(event, aggregate)
        if own is None:
            pending_opened.append(event)
            continue
        business_date = max(own, previous) if previous is not None else own
        previous = business_date
        for waiting in pending_opened:
            if not emit(waiting, business_date):
                stopped = True
                break
        pending_opened.clear()
        if stopped or not emit(event, business_date):
            break
    else:
        for waiting in pending_opened:  # nothing dated followed: use the recorded date
            if not emit(waiting, previous or jst_date(_recorded(waiting))):
                break

    history = History(contract_id, day, rows, later_events=len(events) - folded, total_events=len(events),
                      contract=aggregate, first_date=first_date)
    if aggregate is None:
        return history
    rate: Decimal = policy.late_interest_rate
    invoices = sorted(aggregate.ledger.invoices.values(), key=lambda i: (i.month, i.kind != "upgrade", i.period))
    for invoice in invoices:
        late = (day - invoice.due_on).days if invoice.outstanding > 0 and day > invoice.due_on else 0
        history.invoices.append(InvoiceView(invoice, invoice_label(invoice), invoice.late_interest(day, rate), late))
        timeline.invoice_changed(str(invoice.invoice_id), invoice.due_on, invoice.outstanding)
    labels = {str(i.invoice_id): invoice_label(i) for i in invoices}
    for claim_id, claim in sorted(aggregate.claims.items(), key=lambda kv: (kv[1].received_on, str(kv[0]))):
        a = aggregate.assess(claim_id, policy)
        outage = claim.outage
        history.claims.append(ClaimView(
            claim_id=str(claim_id), outage=f"{_instant(outage.started_at)} - {_instant(outage.ended_at)}",
            outage_hours=int(outage.duration.total_seconds() // 3600), cause=outage.cause.value.replace("_", " "),
            received_on=claim.received_on,
            proofs=", ".join(p for p, ok in (("payment", claim.proof_of_payment), ("breach", claim.proof_of_breach))
                             if ok) or "none",
            eligible=a.eligible, reason=a.reason, breach_date=a.breach_date, credit_days=a.credit_days,
            minimum=a.minimum, maximum=a.maximum, liability_cap=a.liability_cap,
            status=claim.decided or "pending", decision=decisions.get(claim_id, "-")))
    for d in contract_deadlines(timeline, policy):
        ref = labels.get(d.ref, d.ref[:8] if len(d.ref) == 36 else d.ref)
        history.deadlines.append(DeadlineView(d.due_on, d.kind, DEADLINE_LABELS.get(d.kind, d.kind), ref,
                                              past_due=d.due_on <= day))
    return history


def recorded_jst(value: datetime) -> str:
    return value.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S")


__all__ = ["History", "fold", "contractor_text", "contractor_fields", "recorded_jst"]
