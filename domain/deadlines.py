"""Open deadlines (spec 11): the deadline kinds, a pure fold of one contract's events, and
the rule function that maps the fold to the contract's open deadlines.

``DEADLINE_KINDS`` is the one table of deadline kinds (name, article, label), in the order
the scheduler fires the kinds of one day; the read models, the deadlines projection, the
sweep and the pages use it.

``Timeline`` folds the lifecycle facts that decide *when* something must happen next, from
the same events the Contract aggregate folds, dispatching on their classes
(``domain.folds``). It is folded the way the aggregate folds its billing ``Ledger``: the
ledger first, then the timeline, which learns from the ledger each invoice the event issued
or paid (``fold_event``). The rules it shares with the aggregate (next month start,
supersede, lifecycle states) are the aggregate's module functions, called from both.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, NamedTuple

from domain.billing import Ledger, invoices_referenced
from domain.calendar import Month
from domain.contract import ENDED as ENDED_STATES
from domain.contract import IN_SERVICE as IN_SERVICE_STATES
from domain.contract import ContractEvents, State, next_month_start, overdue_marks_end, supersede
from domain.folds import Dispatch, Handler
from domain.policy import Policy
from domain.retention import Owed, contractor_data_erasure_on
from domain.settlement import AFTER_DUE, BEFORE_DUE, payment_reminder_on
from domain.sla import breach_date
from domain.values import DATE, MONTH

IN_SERVICE = tuple(s.value for s in IN_SERVICE_STATES)
ENDED = tuple(s.value for s in ENDED_STATES)


@dataclass(frozen=True)
class DeadlineKind:
    """One kind of deadline: its name (stored in the deadlines table), the article that sets
    it, and what it means (``label`` as the pages show it)."""

    name: str
    article: str
    what: str

    @property
    def label(self) -> str:
        return f"{self.what} ({self.article})"


TRIAL_END = DeadlineKind("trial_end", "Art. 5.2", "trial ends")  # TrialExpired on that date
MONTH_START = DeadlineKind("month_start", "Art. 8, 10", "month start: period, renewal, change or end")
PAYMENT_REMINDER = DeadlineKind("payment_reminder", "rule book 7", "payment reminder before the due date")
PAYMENT_OVERDUE = DeadlineKind("payment_overdue", "Art. 9.5", "payment overdue")  # day after the due date
OVERDUE_REMINDER = DeadlineKind("overdue_reminder", "rule book 7", "payment reminder after the due date")
SUSPENSION_NOTICE = DeadlineKind("suspension_notice", "Art. 9.5", "suspension notice")
SUSPENSION_STOP = DeadlineKind("suspension_stop", "Art. 9.5", "service stop for non-payment")
SLA_WINDOW_END = DeadlineKind("sla_window_end", "Art. 20.3", "SLA claim window closes")
STORED_DATA_DELETION = DeadlineKind("stored_data_deletion", "Art. 15.3", "stored data deleted")  # also 15.5
CONTRACTOR_DATA_ERASURE = DeadlineKind("contractor_data_erasure", "Art. 13, spec 10",
                                       "contractor data erased after the records period")
DISCONTINUATION = DeadlineKind("discontinuation", "Art. 18", "service discontinuation")
TERMS_CHANGE_EFFECTIVE = DeadlineKind("terms_change_effective", "Art. 28", "terms change takes effect")

DEADLINE_KINDS: tuple[DeadlineKind, ...] = (
    TRIAL_END, MONTH_START, PAYMENT_REMINDER, PAYMENT_OVERDUE, OVERDUE_REMINDER, SUSPENSION_NOTICE, SUSPENSION_STOP,
    SLA_WINDOW_END, STORED_DATA_DELETION, CONTRACTOR_DATA_ERASURE, DISCONTINUATION, TERMS_CHANGE_EFFECTIVE,
)
"""Every deadline kind, in the order the scheduler handles the kinds of one day."""

REMINDER_KINDS: dict[str, DeadlineKind] = {BEFORE_DUE: PAYMENT_REMINDER, AFTER_DUE: OVERDUE_REMINDER}
"""The deadline kind of each payment-reminder stage (``domain.settlement.REMINDER_STAGES``)."""

DEADLINE_KIND_NAMES: tuple[str, ...] = tuple(k.name for k in DEADLINE_KINDS)
KIND_BY_NAME: dict[str, DeadlineKind] = {k.name: k for k in DEADLINE_KINDS}


def deadline_label(kind: str) -> str:
    """The label of a deadline kind's name (the name itself for an unknown one)."""
    known = KIND_BY_NAME.get(kind)
    return known.label if known is not None else kind


class DueAction(NamedTuple):
    """One open deadline of an aggregate: act on ``due_on`` (kind: a ``DEADLINE_KINDS`` name)."""

    due_on: date
    kind: str
    ref: str = ""


@dataclass
class Timeline:
    """Lifecycle facts of one contract, folded from its events (no personal data)."""

    service: str = ""
    state: str = "opened"
    beta: bool = False
    store: bool = False
    sla_eligible: bool = True
    trial_started_on: date | None = None
    trial_ends_on: date | None = None
    first_month: Month | None = None
    period_end: Month | None = None
    pending_changes: dict[str, Month] = field(default_factory=dict)  # change id -> effective month
    termination_month: Month | None = None
    termination_reason: str | None = None  # TerminationReason value once terminated
    suspension_stop_on: date | None = None
    retention_until: date | None = None
    data_deleted: bool = False  # contractor data erased
    stored_data_deleted: bool = False
    last_invoiced_on: date | None = None  # issue date of the last invoice (records retention)
    last_paid_on: date | None = None
    unapplied_credit: int = 0  # SLA fee reductions not yet set against an invoice
    overdue: set[str] = field(default_factory=set)  # invoice ids marked PaymentOverdue, still unpaid
    open_invoices: dict[str, tuple[date, int]] = field(default_factory=dict)  # id -> (due_on, unpaid)
    reminded: set[str] = field(default_factory=set)  # "invoice id|stage" of the payment reminders recorded
    undecided_claims: dict[str, date] = field(default_factory=dict)  # claim id -> breach date

    # -- folding (the facts of domain.contract.Contract's mutators) ------------------------------
    def apply(self, event: Any) -> None:
        """Fold one event of the Contract aggregate (dispatch on its class: ``TIMELINE_FOLD``)."""
        TIMELINE_FOLD(self, event)

    def follow(self, event: Any, ledger: Ledger, issued_before: int) -> list[uuid.UUID]:
        """Fold ``event`` after ``ledger`` folded it (``issued_before``: its invoice count before):
        the timeline learns each invoice the event issued, paid or refunded. Returns them."""
        self.apply(event)
        touched: list[uuid.UUID] = list(ledger.invoices)[issued_before:]  # new invoices: the last keys
        touched.extend(i for i in invoices_referenced(event) if i in ledger.invoices)
        for invoice_id in touched:
            invoice = ledger.invoices[invoice_id]
            self.invoice_changed(str(invoice_id), invoice.due_on, invoice.outstanding, invoice.issued_on)
        self.unapplied_credit = sum(amount for _, amount in ledger.pending_credits)
        return touched

    def invoice_changed(self, invoice_id: str, due_on: date, unpaid: int, issued_on: date | None = None) -> None:
        """Called after the Ledger folded an event that issued or paid an invoice."""
        if issued_on is not None and (self.last_invoiced_on is None or issued_on > self.last_invoiced_on):
            self.last_invoiced_on = issued_on
        if unpaid > 0:
            self.open_invoices[invoice_id] = (due_on, unpaid)
        else:
            self.open_invoices.pop(invoice_id, None)
            self.overdue.discard(invoice_id)

    def _set_plan(self, plan: Any) -> None:
        self.beta, self.store, self.sla_eligible = bool(plan.beta), bool(plan.store), bool(plan.sla_eligible)

    def _on_Opened(self, e: Any) -> None:
        self.service, self.state = e.service, State.OPENED.value

    def _on_TrialStarted(self, e: Any) -> None:
        self.state, self.trial_started_on, self.trial_ends_on = State.TRIAL.value, e.started_on, e.trial_ends_on
        self._set_plan(e.plan)

    def _on_TrialExpired(self, e: Any) -> None:
        self.state, self.retention_until = State.TRIAL_EXPIRED.value, e.retention_until

    def _on_Applied(self, e: Any) -> None:
        self.state = State.APPLIED.value
        self._set_plan(e.plan)

    def _on_Approved(self, e: Any) -> None:
        self.state, self.first_month = State.CONCLUDED.value, e.first_month

    def _on_Rejected(self, e: Any) -> None:
        if e.resumes_trial:
            self.state = State.TRIAL.value
        else:
            self.state, self.retention_until = State.REJECTED.value, e.retention_until

    def _on_ServicePeriodStarted(self, e: Any) -> None:
        self.state, self.period_end = State.ACTIVE.value, e.period_end

    def _on_Renewed(self, e: Any) -> None:
        self.period_end = e.period_end

    def _on_ChangeRequested(self, e: Any) -> None:
        """A later request for the same month supersedes the earlier one (``supersede``)."""
        self.pending_changes = dict(supersede(self.pending_changes.items(), (str(e.change_id), e.effective_month),
                                              _month_of))

    def _on_GradeChanged(self, e: Any) -> None:
        self._set_plan(e.plan)
        self.pending_changes.pop(str(e.change_id), None)

    def _on_UsersChanged(self, e: Any) -> None:
        self.pending_changes.pop(str(e.change_id), None)

    def _on_TerminationNoticed(self, e: Any) -> None:
        self.termination_month = e.effective_month

    def _on_PaymentOverdue(self, e: Any) -> None:
        self.overdue.add(str(e.invoice_id))

    def _on_PaymentReminded(self, e: Any) -> None:
        self.reminded.add(f"{e.invoice_id}|{e.stage}")

    def _on_SuspensionNoticed(self, e: Any) -> None:
        self.state, self.suspension_stop_on = State.SUSPENSION_NOTICED.value, e.stop_on

    def _on_SuspensionLifted(self, e: Any) -> None:
        self.state, self.suspension_stop_on = State.ACTIVE.value, None

    def _on_SuspensionStopMoved(self, e: Any) -> None:
        self.suspension_stop_on = e.stop_on

    def _on_PaymentReversed(self, e: Any) -> None:
        """Rule book 7: a past-due invoice is overdue again; a lifted suspension comes back."""
        if e.overdue_again:
            self.overdue.add(str(e.invoice_id))
        if e.suspension_stop_on is not None:
            self.state, self.suspension_stop_on = "suspension_noticed", e.suspension_stop_on

    def _on_Terminated(self, e: Any) -> None:
        self.termination_reason = getattr(e.reason, "value", e.reason)
        self.state, self.retention_until, self.suspension_stop_on = (State.TERMINATED.value, e.retention_until,
                                                                     None)

    def _on_SlaBreachClaimed(self, e: Any) -> None:
        self.undecided_claims[str(e.claim_id)] = breach_date(e.started_at)

    def _on_CreditGranted(self, e: Any) -> None:
        self.undecided_claims.pop(str(e.claim_id), None)

    def _on_CreditRejected(self, e: Any) -> None:
        self.undecided_claims.pop(str(e.claim_id), None)

    def _on_PaymentReceived(self, e: Any) -> None:
        if self.last_paid_on is None or e.paid_on > self.last_paid_on:
            self.last_paid_on = e.paid_on

    def _on_StoredDataDeleted(self, e: Any) -> None:
        self.stored_data_deleted = True

    def _on_ContractorDataErased(self, e: Any) -> None:
        self.data_deleted = True

    def _on_DataDeleted(self, e: Any) -> None:
        """The event of stores written before issue 15: both facts at once."""
        self.data_deleted = self.stored_data_deleted = True

    def owed(self) -> Owed:
        return Owed(principal=sum(unpaid for _, unpaid in self.open_invoices.values()),
                    unapplied_credit=self.unapplied_credit, last_settled_on=self.last_paid_on)

    # -- derived ---------------------------------------------------------------------------------
    def next_month_start(self) -> Month | None:
        """``domain.contract.next_month_start``: first period, renewal, change, noticed end."""
        return next_month_start(self.state in IN_SERVICE, self.state == State.CONCLUDED.value, self.first_month,
                                self.period_end, self.pending_changes.values())

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "state": self.state,
            "beta": self.beta,
            "store": self.store,
            "sla_eligible": self.sla_eligible,
            "trial_started_on": DATE.encode_optional(self.trial_started_on),
            "trial_ends_on": DATE.encode_optional(self.trial_ends_on),
            "first_month": MONTH.encode_optional(self.first_month),
            "period_end": MONTH.encode_optional(self.period_end),
            "pending_changes": [[k, MONTH.encode(m)] for k, m in self.pending_changes.items()],
            "termination_month": MONTH.encode_optional(self.termination_month),
            "termination_reason": self.termination_reason,
            "suspension_stop_on": DATE.encode_optional(self.suspension_stop_on),
            "retention_until": DATE.encode_optional(self.retention_until),
            "data_deleted": self.data_deleted,
            "stored_data_deleted": self.stored_data_deleted,
            "last_invoiced_on": DATE.encode_optional(self.last_invoiced_on),
            "last_paid_on": DATE.encode_optional(self.last_paid_on),
            "unapplied_credit": self.unapplied_credit,
            "overdue": sorted(self.overdue),
            "reminded": sorted(self.reminded),
            "open_invoices": {k: [DATE.encode(d), n] for k, (d, n) in sorted(self.open_invoices.items())},
            "undecided_claims": {k: DATE.encode(d) for k, d in sorted(self.undecided_claims.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timeline:
        return cls(
            service=data["service"],
            state=data["state"],
            beta=data["beta"],
            store=data["store"],
            sla_eligible=data["sla_eligible"],
            trial_started_on=DATE.decode_optional(data["trial_started_on"]),
            trial_ends_on=DATE.decode_optional(data["trial_ends_on"]),
            first_month=MONTH.decode_optional(data["first_month"]),
            period_end=MONTH.decode_optional(data["period_end"]),
            pending_changes={k: MONTH.decode(m) for k, m in data["pending_changes"]},
            termination_month=MONTH.decode_optional(data["termination_month"]),
            termination_reason=data.get("termination_reason"),  # documents written before it: rebuild
            suspension_stop_on=DATE.decode_optional(data["suspension_stop_on"]),
            retention_until=DATE.decode_optional(data["retention_until"]),
            data_deleted=data["data_deleted"],
            # documents written before issue 15 lack these: DataDeleted meant both deletions
            stored_data_deleted=data.get("stored_data_deleted", data["data_deleted"]),
            last_invoiced_on=DATE.decode_optional(data.get("last_invoiced_on")),
            last_paid_on=DATE.decode_optional(data.get("last_paid_on")),
            unapplied_credit=data.get("unapplied_credit", 0),
            overdue=set(data["overdue"]),
            reminded=set(data.get("reminded", ())),  # documents written before the reminders
            open_invoices={k: (DATE.decode(d), n) for k, (d, n) in data["open_invoices"].items()},
            undecided_claims={k: DATE.decode(d) for k, d in data["undecided_claims"].items()},
        )


def contract_deadlines(t: Timeline, policy: Policy) -> list[DueAction]:
    """Every open deadline of one contract, sorted. Rules (spec 3-10):

    - trial_end: the trial's end date while in trial (Art. 5.2).
    - month_start: first day of the next month needing action (Art. 8, 10).
    - payment_reminder / overdue_reminder: ``domain.settlement.payment_reminder_on`` for each unpaid
      invoice not yet reminded at that stage; the one before the due date only while not overdue (rule book 7).
    - payment_overdue: due date + 1 for each unpaid invoice not yet marked overdue (Art. 9.5), none once
      terminated for non-payment (``domain.contract.overdue_marks_end``).
    - suspension_notice: due date + ``suspension_notice_after_days`` for overdue invoices while
      active (spec 7).
    - suspension_stop: the stop date of a suspension notice (spec 7).
    - sla_window_end: breach date + ``sla_claim_window_days`` + 1 for undecided claims (Art. 20.3).
    - stored_data_deletion: ``retention_until`` once ended, until StoredDataDeleted (Art. 15.3 / 15.5).
    - contractor_data_erasure: once ended and nothing is owed, the day after the records period of the
      last invoice (never before the stored-data deadline), until ContractorDataErased (spec 10, Art. 13;
      ``domain.retention.contractor_data_erasure_on``).
    """
    out: list[DueAction] = []
    if t.state == State.TRIAL.value and t.trial_ends_on is not None:
        out.append(DueAction(t.trial_ends_on, TRIAL_END.name))
    month = t.next_month_start()
    if month is not None:
        out.append(DueAction(month.first_day, MONTH_START.name, str(month)))
    if t.open_invoices:
        _invoice_deadlines(t, policy, out)
    if t.state == State.SUSPENSION_NOTICED.value and t.suspension_stop_on is not None:
        out.append(DueAction(t.suspension_stop_on, SUSPENSION_STOP.name))
    for claim_id, breach_on in t.undecided_claims.items():
        out.append(DueAction(breach_on + timedelta(days=policy.sla_claim_window_days + 1), SLA_WINDOW_END.name,
                             claim_id))
    if t.state in ENDED and t.retention_until is not None and not t.stored_data_deleted:
        out.append(DueAction(t.retention_until, STORED_DATA_DELETION.name))
    if t.state in ENDED and not t.data_deleted:
        erase_on = contractor_data_erasure_on(t.retention_until, t.last_invoiced_on, t.owed(),
                                              policy.fiscal_year_end, policy.records_retention_years,
                                              policy.records_filing_months)
        if erase_on is not None:
            out.append(DueAction(erase_on, CONTRACTOR_DATA_ERASURE.name))
    return sorted(out)


_ANY_DAY = date(2000, 1, 1)
_ONE_DAY = timedelta(days=1)


def _invoice_deadlines(t: Timeline, policy: Policy, out: list[DueAction]) -> None:
    """The reminders, overdue marks and suspension notices of ``contract_deadlines``. What does not
    depend on the invoice is read once (issue 21: twice per contract projected): which reminders
    are on, the non-payment path having run, the state. Each reminder's date is still
    ``payment_reminder_on``'s (rule book 7), per invoice: the rule stays in one place."""
    reminders = [(stage, kind.name) for stage, kind in REMINDER_KINDS.items()
                 if payment_reminder_on(_ANY_DAY, stage, policy) is not None]
    path_ran = overdue_marks_end(t.termination_reason)  # Art. 9.5: ``domain.contract.overdue_marks_end``
    notice_after = timedelta(days=policy.suspension_notice_after_days)
    active = t.state == State.ACTIVE.value
    reminded, marked = t.reminded, t.overdue
    for invoice_id, (due_on, _unpaid) in t.open_invoices.items():
        overdue = invoice_id in marked
        for stage, kind_name in reminders:
            if (not (stage == BEFORE_DUE and overdue)
                    and not (reminded and f"{invoice_id}|{stage}" in reminded)):
                remind_on = payment_reminder_on(due_on, stage, policy)
                if remind_on is not None:
                    out.append(DueAction(remind_on, kind_name, invoice_id))
        if not overdue:
            if not path_ran:
                out.append(DueAction(due_on + _ONE_DAY, PAYMENT_OVERDUE.name, invoice_id))
        elif active:
            out.append(DueAction(due_on + notice_after, SUSPENSION_NOTICE.name, invoice_id))


def fold_event(ledger: Ledger, timeline: Timeline, event: Any) -> list[uuid.UUID]:
    """Fold one Contract event into the billing ``Ledger`` and then the ``Timeline`` (the order
    the aggregate folds them in); returns the invoices the event issued, paid or refunded."""
    issued_before = len(ledger.invoices)
    ledger.apply(event)
    return timeline.follow(event, ledger, issued_before)


def _month_of(change: tuple[str, Month]) -> Month:
    return change[1]


def _timeline_handlers() -> tuple[dict[type, Handler[Timeline]], Iterable[type]]:
    c, t = ContractEvents, Timeline
    return ({
        c.Opened: t._on_Opened,
        c.TrialStarted: t._on_TrialStarted,
        c.TrialExpired: t._on_TrialExpired,
        c.Applied: t._on_Applied,
        c.Approved: t._on_Approved,
        c.Rejected: t._on_Rejected,
        c.ServicePeriodStarted: t._on_ServicePeriodStarted,
        c.Renewed: t._on_Renewed,
        c.ChangeRequested: t._on_ChangeRequested,
        c.GradeChanged: t._on_GradeChanged,
        c.UsersChanged: t._on_UsersChanged,
        c.TerminationNoticed: t._on_TerminationNoticed,
        c.PaymentOverdue: t._on_PaymentOverdue,
        c.SuspensionNoticed: t._on_SuspensionNoticed,
        c.SuspensionLifted: t._on_SuspensionLifted,
        c.Terminated: t._on_Terminated,
        c.SlaBreachClaimed: t._on_SlaBreachClaimed,
        c.CreditGranted: t._on_CreditGranted,
        c.CreditRejected: t._on_CreditRejected,
        c.DataDeleted: t._on_DataDeleted,
        c.PaymentReceived: t._on_PaymentReceived,  # the invoice itself reaches it through ``follow``
        c.StoredDataDeleted: t._on_StoredDataDeleted,
        c.ContractorDataErased: t._on_ContractorDataErased,
        c.SuspensionStopMoved: t._on_SuspensionStopMoved,
        c.PaymentReversed: t._on_PaymentReversed,
        c.PaymentReminded: t._on_PaymentReminded,
    }, (c.ContractorInfoChanged, c.PrivacyRequestAnswered, c.DebtWrittenOff,  # these reach it through ``follow``
        c.WriteOffReversed, c.InvoiceIssued, c.InvoiceVoided, c.LateInterestWaived))


TIMELINE_FOLD: Dispatch[Timeline] = Dispatch("deadline Timeline", _timeline_handlers)
