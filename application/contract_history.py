"""One contract's history as facts: how did the contract stand on business date D?

The read side of the web pages (``api.ui.history`` formats these facts; it computes nothing).
An auditor walks through a year: a sandbox year has its business dates spread over months
while every event is *recorded* within minutes. Each event gets a **business date** (JST):

- the business instant of the command that stored it (``at``), when the event carries one;
- otherwise the date the event took effect: a period start, renewal or change on the 1st of its
  month, an overdue mark, suspension notice or lift, trial expiry or data deletion on its date;
  the end of a noticed (or not renewed) term on the 1st of the month after its last month,
  a stop for non-payment or a discontinuation on its end date;
- ``Opened`` (stored with the trial or application that follows it) shares that event's date;
- never earlier than the event before it (business time only moves forward), so the events of
  a date D are a prefix of the stream: the state "as of D" is the fold of that prefix.

That fold is the ``Contract`` aggregate itself (``event.mutate``, as the repository does), with
the deadline ``Timeline`` folded after it (``Timeline.follow``, as the deadlines projection
does), so invoices, payments, SLA assessments and deadlines come from the rules the service
applies: late interest ``Invoice.late_interest(D)`` (Art. 9.4), ``Contract.assess`` (Art. 20),
``domain.deadlines.contract_deadlines``.

This differs on purpose from the API's ``as_of`` (an instant of *recorded* time: what the
service knew then). Both dates are part of every entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from application.actors import actor_of
from domain.billing import Invoice
from domain.calendar import Month, jst_date
from domain.contract import EVENT_ARTICLES, Contract, ContractEvents, TerminationReason
from domain.deadlines import Timeline, contract_deadlines, deadline_label
from domain.policy import Policy
from domain.sla import ClaimAssessment, OutageFacts


@dataclass(frozen=True)
class Terms:
    service: str
    grade: str
    users: int
    cycle: str | None


@dataclass(frozen=True)
class HistoryEntry:
    """One event and the contract's state right after it."""

    version: int
    event: Any  # the domain event (personal fields as read: decrypted or erased)
    name: str
    business_date: date
    recorded_at: datetime
    actor: str
    article: str
    state: str
    terms: Terms | None  # None before any plan
    outstanding: int
    invoice: Invoice | None  # the invoice a payment or an overdue mark names


@dataclass(frozen=True)
class InvoiceFacts:
    invoice: Invoice
    late_interest: int  # Art. 9.4, as of the history's date
    overdue_days: int  # days past due while unpaid (0: not overdue)

    @property
    def outstanding(self) -> int:
        return self.invoice.outstanding

    @property
    def overdue_since(self) -> date:
        return self.invoice.due_on + timedelta(days=1)


@dataclass(frozen=True)
class Decision:
    status: str  # granted | rejected
    remedy: str | None = None
    amount: int | None = None
    at: datetime | None = None  # the business instant of the decision
    reason: str | None = None  # a rejection's reason


@dataclass(frozen=True)
class ClaimFacts:
    claim_id: uuid.UUID
    outage: OutageFacts
    received_on: date
    proof_of_payment: bool
    proof_of_breach: bool
    assessment: ClaimAssessment
    status: str  # pending | granted | rejected
    decision: Decision | None
    claimed_at: datetime | None = None  # the business instant of the claim


@dataclass(frozen=True)
class DeadlineFacts:
    due_on: date
    kind: str
    label: str  # ``domain.deadlines.DEADLINE_KINDS``
    ref: str
    invoice: Invoice | None  # the invoice ``ref`` names, if it names one
    past_due: bool


@dataclass
class ContractHistory:
    contract_id: uuid.UUID
    as_of: date
    entries: list[HistoryEntry]
    later_events: int  # events after the as-of date (not folded)
    total_events: int
    contract: Contract | None  # None: the contract did not exist yet on ``as_of``
    invoices: list[InvoiceFacts] = field(default_factory=list)
    claims: list[ClaimFacts] = field(default_factory=list)
    deadlines: list[DeadlineFacts] = field(default_factory=list)
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

_DATE_ATTRS = ("overdue_on", "noticed_on", "lifted_on", "expired_on", "deleted_on", "rejected_on", "received_on",
               "paid_on")


def business_date(event: Any, before: Contract | None) -> date | None:
    """The event's own business date (see the module); None for ``Opened``."""
    if isinstance(event, ContractEvents.Terminated):  # from the state before (also for upcast v1 events)
        reason = event.reason
        if before is not None and reason is TerminationReason.NOTICE and before.termination_month is not None:
            return before.termination_month.plus(1).first_day
        if before is not None and reason is TerminationReason.TERM_EXPIRED and before.period_end is not None:
            return before.period_end.plus(1).first_day
        ended: date = event.ended_on
        return ended  # for cause, terms change: the JST date of their ``at``
    at = getattr(event, "at", None)
    if isinstance(at, datetime):
        return jst_date(at)
    if isinstance(event, ContractEvents.InvoiceIssued):  # rule book 6.1: the document's issue date
        return date.fromisoformat(event.document["issued_on"])
    for attr in _DATE_ATTRS:
        value = getattr(event, attr, None)
        if isinstance(value, date):
            return value
    for attr in ("month", "effective_month"):
        value = getattr(event, attr, None)
        if isinstance(value, Month):
            return value.first_day
    return None


def recorded_at(event: Any) -> datetime:
    stamp = getattr(event, "timestamp", None)
    return stamp if isinstance(stamp, datetime) else datetime.now(UTC)


def _terms(contract: Contract) -> Terms | None:
    if contract.plan is None:
        return None
    return Terms(contract.service, contract.plan.grade, contract.users,
                 contract.cycle.value if contract.cycle else None)


# --------------------------------------------------------------------------- the fold


def contract_history(contract_id: uuid.UUID, events: Sequence[Any], as_of: date | None, policy: Policy,
                     today: date) -> ContractHistory:
    """Every event up to ``as_of`` (business date; None: all of them) with the state after each,
    and the contract, invoices, claims and deadlines as they stood then. Late interest is
    computed as of ``as_of`` (or ``today`` when not given)."""
    day = as_of or today
    entries: list[HistoryEntry] = []
    aggregate: Contract | None = None
    previous: date | None = None
    pending_opened: list[Any] = []  # events waiting for the business date of the next one
    decisions: dict[uuid.UUID, Decision] = {}
    claimed: dict[uuid.UUID, datetime] = {}
    timeline = Timeline()
    folded = 0
    first_date: date | None = None

    def emit(event: Any, on: date) -> bool:
        """Fold one event if it lies on or before the as-of date; False once past it."""
        nonlocal aggregate, folded, first_date
        if first_date is None:
            first_date = on
        if as_of is not None and on > as_of:
            return False
        issued_before = len(aggregate.ledger.invoices) if aggregate is not None else 0
        aggregate = event.mutate(aggregate)
        assert isinstance(aggregate, Contract)
        timeline.follow(event, aggregate.ledger, issued_before)
        if isinstance(event, ContractEvents.SlaBreachClaimed):
            claimed[event.claim_id] = event.at
        elif isinstance(event, ContractEvents.CreditGranted):
            decisions[event.claim_id] = Decision("granted", event.remedy, event.amount, event.at)
        elif isinstance(event, ContractEvents.CreditRejected):
            decisions[event.claim_id] = Decision("rejected", at=event.at, reason=event.reason)
        article = getattr(event, "article", None) or EVENT_ARTICLES.get(type(event), "-")
        recorded_actor = actor_of(event)
        actor = recorded_actor.describe() if recorded_actor is not None else "-"
        invoice_id = getattr(event, "invoice_id", None)
        entries.append(HistoryEntry(
            version=event.originator_version, event=event, name=type(event).__name__, business_date=on,
            recorded_at=recorded_at(event), actor=str(actor), article=str(article),
            state=aggregate.state.value, terms=_terms(aggregate), outstanding=aggregate.ledger.outstanding(),
            invoice=aggregate.ledger.invoices.get(invoice_id) if invoice_id is not None else None))
        folded += 1
        return True

    stopped = False
    for event in events:
        own = business_date(event, aggregate)
        if own is None:
            pending_opened.append(event)
            continue
        on = max(own, previous) if previous is not None else own
        previous = on
        for waiting in pending_opened:
            if not emit(waiting, on):
                stopped = True
                break
        pending_opened.clear()
        if stopped or not emit(event, on):
            break
    else:
        for waiting in pending_opened:  # nothing dated followed: use the recorded date
            if not emit(waiting, previous or jst_date(recorded_at(waiting))):
                break

    history = ContractHistory(contract_id, day, entries, later_events=len(events) - folded,
                              total_events=len(events), contract=aggregate, first_date=first_date)
    if aggregate is None:
        return history
    rate = policy.late_interest_rate
    invoices = sorted(aggregate.ledger.invoices.values(), key=lambda i: (i.month, i.kind != "upgrade", i.period))
    for invoice in invoices:
        late = (day - invoice.due_on).days if invoice.outstanding > 0 and day > invoice.due_on else 0
        history.invoices.append(InvoiceFacts(invoice, invoice.late_interest(day, rate), late))
    by_id = {str(i.invoice_id): i for i in invoices}
    for claim_id, claim in sorted(aggregate.claims.items(), key=lambda kv: (kv[1].received_on, str(kv[0]))):
        history.claims.append(ClaimFacts(
            claim_id=claim_id, outage=claim.outage, received_on=claim.received_on,
            proof_of_payment=claim.proof_of_payment, proof_of_breach=claim.proof_of_breach,
            assessment=aggregate.assess(claim_id, policy), status=claim.decided or "pending",
            decision=decisions.get(claim_id), claimed_at=claimed.get(claim_id)))
    for d in contract_deadlines(timeline, policy):
        history.deadlines.append(DeadlineFacts(d.due_on, d.kind, deadline_label(d.kind), d.ref, by_id.get(d.ref),
                                               past_due=d.due_on <= day))
    return history
