"""The Contract aggregate (spec 3-10). Public methods check, private ``@event`` methods mutate.

Every command takes the business time (``at`` instant or ``on`` JST date) as an argument,
and every derived value that policy could later change (tax rate, due date, stop date,
retention deadline, upgrade charge) is recorded in the event, so replays are exact.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar

from eventsourcing.domain import Aggregate, event

from domain.billing import Draft, Invoice, InvoiceLine, Ledger, Payment, WriteOff, due_date, issue
from domain.calendar import BusinessCalendar, Month, jst_date, jst_start, require_aware
from domain.catalog import PricePlan
from domain.errors import InvalidInput, RuleViolation
from domain.folds import event_class
from domain.invoice_numbers import NumberBook
from domain.invoicing import RETURN_INVOICE, STANDARD_RATE
from domain.policy import Policy
from domain.retention import (
    CONTACTS_ERASED,
    CONTRACTOR_DATA_ARTICLE,
    ERASED_MARK,
    PRIVACY_REQUEST_ARTICLE,
    RECORDS_LAW,
    STORED_DATA_ARTICLE,
    Owed,
    contractor_data_erasure_on,
    last_invoice_on,
    records_kept_until,
    retention_deadline,
    split_contractor,
)
from domain.settlement import BEFORE_DUE, REMINDER_STAGES, CustomerAccount, payment_reminder_on
from domain.sla import ClaimAssessment, Coverage, OutageCause, OutageFacts, Remedy, assess_claim

T = TypeVar("T")

CONTRACT_NAMESPACE = uuid.UUID("0b8f6a3e-2d53-4f0a-9c55-3b1f7e2a9d41")


class State(Enum):
    OPENED = "opened"
    TRIAL = "trial"
    APPLIED = "applied"
    CONCLUDED = "concluded"
    ACTIVE = "active"
    SUSPENSION_NOTICED = "suspension_noticed"
    TERMINATED = "terminated"
    TRIAL_EXPIRED = "trial_expired"
    REJECTED = "rejected"


class BillingCycle(Enum):
    MONTHLY = "monthly"
    ANNUAL = "annual"


class TerminationReason(Enum):
    NOTICE = "notice"  # Art. 10
    TERM_EXPIRED = "term_expired"  # annual term not renewed (POLICY annual_auto_renew off)
    NON_PAYMENT = "non_payment"  # Art. 9.5
    FOR_CAUSE = "for_cause"  # Art. 2.4, 23, 24
    DISCONTINUATION = "discontinuation"  # Art. 18
    TERMS_CHANGE = "terms_change"  # Art. 28


def scheduled_termination_day(reason: TerminationReason, ended_on: date) -> date:
    """The business day a termination the scheduler recorded took effect, from the event's own
    fields: a notice or a term end at the month start after the last day (``ended_on`` + 1, in
    its month when an SLA extension moved the end: exact for extensions shorter than that month),
    a stop for non-payment and a discontinuation on ``ended_on`` itself."""
    if TerminationReason(reason) in (TerminationReason.NOTICE, TerminationReason.TERM_EXPIRED):
        return Month.of(ended_on + timedelta(days=1)).first_day
    return ended_on


REJECTION_ARTICLES = {
    "Art. 2.4.1": "false statements in the application",
    "Art. 2.4.2": "past or expected failure to meet contractual duties",
    "Art. 2.4.3": "continued provision is reasonably difficult",
    "Art. 2.4.4": "significant obstacle to the provider's business",
}

FOR_CAUSE_ARTICLES = {
    **REJECTION_ARTICLES,  # Art. 2.4 also allows cancelling a concluded contract
    "Art. 23.1.1": "breach of the terms",
    "Art. 23.1.2": "false or missing statements in the application",
    "Art. 23.1.3": "harm to the provider's business or service system",
    "Art. 23.1.4": "bankruptcy, corporate reorganisation or civil rehabilitation",
    "Art. 23.1.5": "provisional seizure, compulsory execution or tax delinquency",
    "Art. 23.1.6": "unreachable for a long period",
    "Art. 24.2": "anti-social forces (either party)",
}

PRIVACY_REQUESTS = ("erase", "stop_use")  # privacy policy 7: 消去 / 利用停止 (disclosure is a read)

IN_SERVICE = (State.CONCLUDED, State.ACTIVE, State.SUSPENSION_NOTICED)
ENDED = (State.TERMINATED, State.TRIAL_EXPIRED, State.REJECTED)
DISCONTINUED_STATES = (State.TRIAL, State.APPLIED, *IN_SERVICE)  # Art. 18: a discontinuation ends these


def overdue_marks_end(termination_reason: TerminationReason | str | None) -> bool:
    """Art. 9.5, rule book 7: ``PaymentOverdue`` is the first step of the non-payment path (overdue,
    suspension notice, stop). Once the contract was terminated for non-payment that path has run
    its course: no invoice is marked overdue any more (the aggregate refuses, the deadline
    timeline lists no ``payment_overdue``). What is still owed keeps its Art. 9.4 late interest,
    which runs from the day after the due date whether or not an overdue mark was recorded."""
    reason = termination_reason.value if isinstance(termination_reason, TerminationReason) else termination_reason
    return reason == TerminationReason.NON_PAYMENT.value


def supersede(pending: Iterable[T], new: T, month_of: Callable[[T], Month]) -> list[T]:
    """Art. 10.1 supersede rule: a later change request for the same effective month replaces
    the earlier one. Returns the pending requests that remain, ``new`` last."""
    return [*(p for p in pending if month_of(p) != month_of(new)), new]


def next_month_start(in_service: bool, concluded: bool, first_month: Month | None, period_end: Month | None,
                     pending_months: Iterable[Month]) -> Month | None:
    """Art. 8 / 10: the next month whose first day needs action: the first service period
    (concluded, not started), else the month after the period (renewal or noticed end) or an
    earlier pending change's effective month; None out of service."""
    if concluded:
        return first_month
    if not in_service or period_end is None:
        return None
    return min([period_end.plus(1), *pending_months])


@dataclass(frozen=True)
class PendingChange:
    change_id: uuid.UUID
    effective_month: Month
    plan: PricePlan
    users: int
    upgrade_charge: int
    remaining_months: int


@dataclass
class Claim:
    claim_id: uuid.UUID
    outage: OutageFacts
    received_on: date
    proof_of_payment: bool
    proof_of_breach: bool
    decided: str | None = None  # "granted" | "rejected"


def _effective_month(change: PendingChange) -> Month:
    return change.effective_month


def _require_reason(reason: str) -> None:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
        raise InvalidInput("rule book 6.1", "a reason is required (at most 500 characters)", "reason")


def _require_positive_int(value: int, field: str, article: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(article, f"{field} must be a positive whole number", field)


class Contract(Aggregate):
    """One cloud service contract of one customer (本サービス契約, Art. 2.1)."""

    class Event(Aggregate.Event):
        def mutate(self, aggregate: Any) -> Any:
            """Fold billing first, so the aggregate's own mutators see the updated ledger."""
            if aggregate is not None:
                aggregate.ledger.apply(self)
            return super().mutate(aggregate)

    @staticmethod
    def create_id(customer_number: str, service: str, reference: str = "", generation: int = 0) -> uuid.UUID:
        """Deterministic: the ``generation``-th contract of a customer for a service and reference
        (0 for the first, whose id is the one contracts always had; 1 after it ended, ...), so a
        retried application finds the contract it opened (decisions: a new contract after one ended)."""
        name = f"{customer_number}\x1f{service}\x1f{reference}"
        return uuid.uuid5(CONTRACT_NAMESPACE, name if generation == 0 else f"{name}\x1f{generation}")

    # -- creation ------------------------------------------------------------------------------
    @event("Opened")
    def __init__(self, customer_number: str, service: str, reference: str = "", generation: int = 0) -> None:
        self.customer_number = customer_number
        self.service = service
        self.reference = reference
        # ``generation`` (the n-th contract after n ended ones) only derives the id (create_id); the
        # state keeps no copy, so the snapshot schema is unchanged
        self.state = State.OPENED
        self.plan: PricePlan | None = None
        self.cycle: BillingCycle | None = None
        self.users = 0
        self.contractor: dict[str, str] = {}
        self.trial_started_on: date | None = None
        self.trial_ends_on: date | None = None
        self.concluded_on: date | None = None
        self.first_month: Month | None = None
        self.period_start: Month | None = None
        self.period_end: Month | None = None
        self.pending_changes: list[PendingChange] = []
        self.termination_month: Month | None = None
        self.overdue: set[uuid.UUID] = set()
        self.suspension_stop_on: date | None = None
        self.ended_on: date | None = None
        self.termination_reason: TerminationReason | None = None
        self.termination_article: str | None = None
        self.retention_until: date | None = None
        self.extension_days = 0
        self.claims: dict[uuid.UUID, Claim] = {}
        self.data_deleted = False  # contractor data erased (ContractorDataErased, or the old DataDeleted)
        self.contractor_erased_on: date | None = None
        self.stored_data_deleted_on: date | None = None
        self.contacts_erased_on: date | None = None
        self.payment_references: set[str] = set()
        self.last_suspension: tuple[date, list[uuid.UUID]] | None = None  # (stop date, invoices) last noticed
        self.suspension_lifted_on: date | None = None
        self.reversed_payments: set[tuple[str, str]] = set()  # (transfer id, source) reversed (rule book 7)
        self.payment_reminders: set[tuple[str, str]] = set()  # (invoice id, stage) reminded (rule book 7)
        self.ledger = Ledger(self.id)

    @classmethod
    def open(cls, customer_number: str, service: str, reference: str = "", generation: int = 0) -> Contract:
        if not customer_number or len(customer_number) > 64:
            raise InvalidInput("Art. 2.2", "customer_number is required (at most 64 characters)",
                               "customer_number")
        if generation:
            return cls(customer_number=customer_number, service=service, reference=reference, generation=generation)
        return cls(customer_number=customer_number, service=service, reference=reference)

    @property
    def ended(self) -> bool:
        """Terminated, trial expired or rejected: a new application opens a new contract."""
        return self.state in ENDED

    # -- trial (Art. 5) --------------------------------------------------------------------------
    def start_trial(self, plan: PricePlan, users: int, contractor: dict[str, str], at: datetime) -> None:
        self._require_state("Art. 5.1", State.OPENED)
        self._check_plan(plan)
        if plan.store:
            raise RuleViolation("Art. 4.3", "the store service is free and has no trial")
        if plan.trial_days <= 0:
            raise RuleViolation("Art. 5.2", f"grade {plan.grade} offers no trial period")
        self._check_users(plan, users)
        started = jst_date(at)
        self._trial_started(plan=plan, users=users, contractor=dict(contractor), started_on=started,
                            trial_ends_on=started + timedelta(days=plan.trial_days), at=at)

    @event("TrialStarted")
    def _trial_started(self, plan: PricePlan, users: int, contractor: dict[str, str], started_on: date,
                       trial_ends_on: date, at: datetime) -> None:
        self.state, self.plan, self.users, self.contractor = State.TRIAL, plan, users, contractor
        self.trial_started_on, self.trial_ends_on = started_on, trial_ends_on

    def expire_trial(self, on: date, policy: Policy) -> None:
        """TrialExpired on the trial's end date (Art. 5.2); data kept ``retention_days`` (Art. 15.5)."""
        self._require_state("Art. 5.2", State.TRIAL)
        assert self.trial_ends_on is not None
        if on < self.trial_ends_on:
            raise RuleViolation("Art. 5.2", f"the trial runs until {self.trial_ends_on}")
        # The scheduled date, not the day the job ran: a late run must not move the retention deadline.
        ended = self.trial_ends_on
        self._trial_expired(expired_on=ended, retention_until=retention_deadline(ended, policy))

    @event("TrialExpired")
    def _trial_expired(self, expired_on: date, retention_until: date) -> None:
        self.state, self.ended_on, self.retention_until = State.TRIAL_EXPIRED, expired_on, retention_until

    # -- application and review (Art. 2) ----------------------------------------------------------
    def apply(self, plan: PricePlan, cycle: BillingCycle, users: int, contractor: dict[str, str] | None,
              at: datetime) -> None:
        require_aware(at)
        self._require_state("Art. 2.2", State.OPENED, State.TRIAL)
        self._check_plan(plan)
        self._check_users(plan, users)
        info = dict(contractor) if contractor is not None else self.contractor
        info = {k: v for k, v in info.items() if k != CONTACTS_ERASED}  # the mark is not information
        self._check_contacts_allowed(info)
        if not info.get("name"):
            raise InvalidInput("Art. 2.2", "contractor.name is required for a paid application",
                               "contractor.name")
        self._applied(plan=plan, cycle=cycle, users=users, contractor=info, at=at)

    @event("Applied")
    def _applied(self, plan: PricePlan, cycle: BillingCycle, users: int, contractor: dict[str, str],
                 at: datetime) -> None:
        self.state, self.plan, self.cycle, self.users, self.contractor = State.APPLIED, plan, cycle, users, contractor

    def approve(self, at: datetime) -> None:
        """Approval concludes the contract; service starts on the 1st of the next JST month (Art. 8)."""
        self._require_state("Art. 2.3", State.APPLIED)
        concluded = jst_date(at)
        self._approved(concluded_on=concluded, first_month=Month.of(concluded).plus(1), at=at)

    @event("Approved")
    def _approved(self, concluded_on: date, first_month: Month, at: datetime) -> None:
        self.state, self.concluded_on, self.first_month = State.CONCLUDED, concluded_on, first_month

    def reject(self, article: str, at: datetime, policy: Policy) -> None:
        self._require_state("Art. 2.4", State.APPLIED)
        if article not in REJECTION_ARTICLES:
            raise InvalidInput("Art. 2.4", f"reason must be one of {', '.join(REJECTION_ARTICLES)}", "article")
        on = jst_date(at)
        resumes_trial = self.trial_ends_on is not None
        self._rejected(article=article, rejected_on=on, resumes_trial=resumes_trial,
                       retention_until=None if resumes_trial else retention_deadline(on, policy),
                       at=at)

    @event("Rejected")
    def _rejected(self, article: str, rejected_on: date, resumes_trial: bool, retention_until: date | None,
                  at: datetime) -> None:
        """A rejected trial customer keeps the trial until its end (then TrialExpired)."""
        if resumes_trial:
            self.state, self.cycle = State.TRIAL, None
        else:
            self.state, self.ended_on, self.retention_until = State.REJECTED, rejected_on, retention_until
        self.termination_article = article

    # -- service periods and renewal (Art. 8) ------------------------------------------------------
    def advance_to(self, month: Month, policy: Policy, numbers: NumberBook) -> None:
        """Run every month start up to ``month`` in order: changes taking effect, the first
        period, renewals and the end of a noticed term, issuing their invoices with numbers from
        ``numbers``. Months already run are no-ops."""
        while self.state in IN_SERVICE:
            next_start = self.next_month_start()
            if next_start is None or next_start > month:
                return
            self._begin_month(next_start, policy, numbers)
            if self.state is State.TERMINATED:  # ended at this month start: nothing comes after
                self.settle(next_start.first_day, policy, numbers)

    def next_month_start(self) -> Month | None:
        """The next month whose first day needs action (period start, renewal, change, end)."""
        return next_month_start(self.state in IN_SERVICE, self.state is State.CONCLUDED, self.first_month,
                                self.period_end, (c.effective_month for c in self.pending_changes))

    def _begin_month(self, month: Month, policy: Policy, numbers: NumberBook) -> None:
        assert self.first_month is not None and self.cycle is not None
        if self.termination_month is not None and month > self.termination_month:
            ended = self.termination_month.last_day + timedelta(days=self.extension_days)
            self._terminated(reason=TerminationReason.NOTICE, article="Art. 10.1", ended_on=ended,
                             retention_until=retention_deadline(ended, policy), at=jst_start(month.first_day))
            return
        annual = self.cycle is BillingCycle.ANNUAL
        new_period = self.period_end is None or month > self.period_end
        if annual and new_period and self.period_end is not None and not policy.annual_auto_renew:
            ended = self.period_end.last_day + timedelta(days=self.extension_days)
            self._terminated(reason=TerminationReason.TERM_EXPIRED, article="Art. 8.2", ended_on=ended,
                             retention_until=retention_deadline(ended, policy), at=jst_start(month.first_day))
            return
        for change in [c for c in self.pending_changes if c.effective_month <= month]:
            self._apply_change(change, month, policy, numbers)
        if not new_period:
            return
        due = due_date(month, policy.due_months_after)
        end = month.plus(11) if annual else month
        if self.state is State.CONCLUDED:
            self._period_started(month=month, period_end=end, tax_rate=policy.tax_rate, due_on=due)
        else:
            self._renewed(month=month, period_end=end, tax_rate=policy.tax_rate, due_on=due)
        self._issue(self.ledger.draft_period(month, end, due, policy.late_interest_rate), month.first_day, policy,
                    numbers, None)

    # -- issuing (rule book 6.1, Consumption Tax Act Art. 57-4) -----------------------------------
    def _issue(self, draft: Draft, issued_on: date, policy: Policy, numbers: NumberBook,
               at: datetime | None) -> None:
        """Issue ``draft``: the next number, the issuer and recipient as of today, frozen in the event."""
        recipient = self.contractor.get("name", "")
        issuer = policy.issuer.to_dict() if policy.issuer is not None else None
        document, digest, invoice = issue(draft, self.id, numbers.allocate(issued_on), issued_on, issuer, recipient)
        self.ledger.prepare(invoice)  # folded as built, not parsed back from the document (issue 21)
        try:
            self._invoice_issued(invoice_id=invoice.invoice_id, recipient=recipient, document=document,
                                 document_hash=digest, at=at)
        finally:
            self.ledger.prepare(None)

    @event("InvoiceIssued")
    def _invoice_issued(self, invoice_id: uuid.UUID, recipient: str, document: dict[str, Any], document_hash: str,
                        at: datetime | None) -> None:
        original = document.get("original")
        if original is not None:  # corrected or credited: overdue no longer, once nothing is owed on it
            oid = uuid.UUID(original["invoice_id"])
            if oid in self.ledger.invoices and self.ledger.invoices[oid].outstanding <= 0:
                self.overdue.discard(oid)

    @event("ServicePeriodStarted")
    def _period_started(self, month: Month, period_end: Month, tax_rate: Decimal, due_on: date) -> None:
        self.state, self.period_start, self.period_end = State.ACTIVE, month, period_end

    @event("Renewed")
    def _renewed(self, month: Month, period_end: Month, tax_rate: Decimal, due_on: date) -> None:
        self.period_start, self.period_end = month, period_end

    # -- changes (Art. 10) -------------------------------------------------------------------------
    def request_change(self, plan: PricePlan | None, users: int | None, requested_month: Month | None,
                       at: datetime, calendar: BusinessCalendar) -> PendingChange:
        self._require_state("Art. 10.1", *IN_SERVICE)
        assert self.plan is not None and self.first_month is not None and self.cycle is not None
        received = jst_date(at)
        effective = calendar.effective_month(received, requested_month)
        effective = max(effective, self.first_month) if self.state is State.CONCLUDED else effective
        if self.termination_month is not None and effective > self.termination_month:
            raise RuleViolation("Art. 10.1", f"the contract ends after {self.termination_month}; "
                                f"a change effective {effective} comes too late")
        old_plan, old_users = self.terms_in_force(effective.plus(-1))
        new_plan = plan if plan is not None else old_plan
        new_users = users if users is not None else old_users
        if plan is not None:
            self._check_plan(plan)
            if plan.service != self.service:
                raise InvalidInput("Art. 10.1", "a change keeps the contract's service", "grade")
        if users is not None:
            _require_positive_int(users, "users", "Art. 10.1")
        self._check_users(new_plan, new_users)
        if new_plan.grade == old_plan.grade and new_users == old_users:
            raise RuleViolation("Art. 10.1", f"grade and users already in force from {effective}")
        charge, remaining = 0, 0
        if self.cycle is BillingCycle.ANNUAL and not self._is_term_start(effective):
            if new_plan.rank < old_plan.rank:
                raise RuleViolation("Art. 10.1.2", "no downgrade during an annual term "
                                    "(allowed to take effect at renewal)")
            if new_users < old_users:
                raise RuleViolation("Art. 10.1.2", "no user decrease during an annual term "
                                    "(allowed to take effect at renewal)")
            term_end = self._term_end_for(effective)
            remaining = term_end.minus(effective) + 1
            diff = new_plan.annual_price * new_users - old_plan.annual_price * old_users
            charge = max(0, diff * remaining // 12)
        change = PendingChange(uuid.uuid5(self.id, f"change:{self.version}"), effective, new_plan, new_users,
                               charge, remaining)
        self._change_requested(change_id=change.change_id, requested_month=requested_month,
                               effective_month=effective, received_on=received, plan=new_plan,
                               users=new_users, upgrade_charge=charge, remaining_months=remaining, at=at)
        return change

    @event("ChangeRequested")
    def _change_requested(self, change_id: uuid.UUID, requested_month: Month | None, effective_month: Month,
                          received_on: date, plan: PricePlan, users: int, upgrade_charge: int,
                          remaining_months: int, at: datetime) -> None:
        """A later request for the same month supersedes the earlier one (``supersede``)."""
        new = PendingChange(change_id, effective_month, plan, users, upgrade_charge, remaining_months)
        self.pending_changes = sorted(supersede(self.pending_changes, new, _effective_month),
                                      key=_effective_month)

    def terms_in_force(self, month: Month) -> tuple[PricePlan, int]:
        """Grade and users in force in ``month``, counting pending changes effective by then."""
        assert self.plan is not None
        plan, users = self.plan, self.users
        for change in self.pending_changes:
            if change.effective_month <= month:
                plan, users = change.plan, change.users
        return plan, users

    def _apply_change(self, change: PendingChange, month: Month, policy: Policy, numbers: NumberBook) -> None:
        assert self.plan is not None
        due = due_date(month, policy.due_months_after)
        common: dict[str, Any] = dict(change_id=change.change_id, effective_month=change.effective_month,
                                      users=change.users, upgrade_charge=change.upgrade_charge,
                                      remaining_months=change.remaining_months, tax_rate=policy.tax_rate,
                                      due_on=due)
        if change.plan.grade != self.plan.grade:
            self._grade_changed(plan=change.plan, **common)
        else:
            self._users_changed(**common)
        draft = self.ledger.draft_upgrade(change.change_id, change.effective_month, change.remaining_months,
                                          change.upgrade_charge, due)
        if draft is not None:
            self._issue(draft, change.effective_month.first_day, policy, numbers, None)

    @event("GradeChanged")
    def _grade_changed(self, change_id: uuid.UUID, plan: PricePlan, effective_month: Month, users: int,
                       upgrade_charge: int, remaining_months: int, tax_rate: Decimal, due_on: date) -> None:
        self.plan, self.users = plan, users
        self.pending_changes = [c for c in self.pending_changes if c.change_id != change_id]

    @event("UsersChanged")
    def _users_changed(self, change_id: uuid.UUID, effective_month: Month, users: int, upgrade_charge: int,
                       remaining_months: int, tax_rate: Decimal, due_on: date) -> None:
        self.users = users
        self.pending_changes = [c for c in self.pending_changes if c.change_id != change_id]

    def _term_starts(self) -> Month:
        assert self.first_month is not None
        return self.first_month

    def _is_term_start(self, month: Month) -> bool:
        length = 12 if self.cycle is BillingCycle.ANNUAL else 1
        return month.minus(self._term_starts()) % length == 0 and month >= self._term_starts()

    def _term_end_for(self, month: Month) -> Month:
        """Last month of the (possibly future, auto-renewed) term containing ``month``."""
        offset = month.minus(self._term_starts())
        return self._term_starts().plus((offset // 12) * 12 + 11)

    # -- termination notice (Art. 8.3, 10) ---------------------------------------------------------
    def notice_termination(self, requested_month: Month | None, at: datetime,
                           calendar: BusinessCalendar) -> Month:
        self._require_state("Art. 10.1", *IN_SERVICE)
        assert self.first_month is not None
        if self.termination_month is not None:
            raise RuleViolation("Art. 10.1", f"termination already noticed for {self.termination_month}")
        received = jst_date(at)
        earliest = max(calendar.effective_month(received, requested_month), self.first_month)
        if self.cycle is BillingCycle.ANNUAL:
            last = self._term_end_for(earliest)  # Art. 8.3: no ending in the middle of a term
        else:
            last = earliest
        self._termination_noticed(requested_month=requested_month, effective_month=last,
                                  received_on=received, at=at)
        return last

    @event("TerminationNoticed")
    def _termination_noticed(self, requested_month: Month | None, effective_month: Month, received_on: date,
                             at: datetime) -> None:
        self.termination_month = effective_month

    # -- payments and non-payment (Art. 9) -----------------------------------------------------------
    def receive_payment(self, invoice_id: uuid.UUID, amount: int, paid_on: date, at: datetime,
                        reference: str | None = None, transfer_id: uuid.UUID | None = None,
                        source: str = "transfer") -> None:
        """``reference`` (the payer's transaction id) makes a retried payment refused, not doubled;
        ``transfer_id`` names the bank transfer it was allocated from (rule book 7), ``source`` is
        ``credit_balance`` when an earlier overpayment pays it."""
        _require_positive_int(amount, "amount", "Art. 9.3")
        if source not in ("transfer", "credit_balance"):
            raise InvalidInput("rule book 7", "source must be transfer or credit_balance", "source")
        if reference is not None and reference in self.payment_references:
            raise RuleViolation("Art. 9.3", "a payment with this reference is already recorded", "reference")
        invoice = self.ledger.invoices.get(invoice_id)
        if invoice is None:
            raise InvalidInput("Art. 9.3", "no such invoice on this contract", "invoice_id")
        if paid_on < invoice.issued_on or paid_on > jst_date(at):
            raise InvalidInput("Art. 9.3", f"paid_on must lie between {invoice.issued_on} and today", "paid_on")
        if amount > invoice.outstanding:
            raise RuleViolation("Art. 9.5", f"amount exceeds the invoice's outstanding {invoice.outstanding} yen "
                                "(no overpayment: paid fees are never refunded)", "amount")
        self._payment_received(invoice_id=invoice_id, amount=amount, paid_on=paid_on, at=at, reference=reference,
                               transfer_id=transfer_id, source=source)
        self._lift_if_settled(paid_on)

    def _lift_if_settled(self, on: date) -> None:
        """Art. 9.5: paid in full (principal) before the stop date -> the contract continues."""
        if (self.state is State.SUSPENSION_NOTICED and self.suspension_stop_on is not None
                and on < self.suspension_stop_on and not self._overdue_principal()):
            self._suspension_lifted(lifted_on=on)

    @event("PaymentReceived")
    def _payment_received(self, invoice_id: uuid.UUID, amount: int, paid_on: date, at: datetime,
                          reference: str | None = None, transfer_id: uuid.UUID | None = None,
                          source: str = "transfer") -> None:
        if reference is not None:
            self.payment_references.add(reference)
        if self.ledger.invoices[invoice_id].outstanding <= 0:
            self.overdue.discard(invoice_id)

    def reverse_payment(self, transfer_id: uuid.UUID, on: date, reason: str, source: str = "transfer") -> None:
        """Rule book 7: a bounced or mistaken transfer is undone by facts naming it, one per invoice it
        paid: each is unpaid again as if the money never came (late interest too, Art. 9.4); the fee
        shortfall written off with it is claimed again; those past due are overdue again; and a
        suspension it lifted comes back with its original stop date (Art. 9.5)."""
        if not reason or not reason.strip() or len(reason) > 500:
            raise InvalidInput("rule book 7", "reason is required (at most 500 characters)", "reason")
        if (str(transfer_id), source) in self.reversed_payments:
            raise RuleViolation("rule book 7", "the payments of this transfer are already reversed")
        hits: list[tuple[Invoice, list[Payment], list[WriteOff]]] = []
        for invoice in self.ledger.invoices.values():
            own = [p for p in invoice.payments if p.transfer_id == transfer_id and p.source == source]
            fees = [w for w in invoice.write_offs if w.transfer_id == transfer_id and w.amount > 0
                    and source == "transfer"]
            if own:
                hits.append((invoice, own, fees))
        if not hits:
            raise RuleViolation("rule book 7", "no payment of this transfer on this contract to reverse")
        restore: date | None = None
        past_due = {i.invoice_id for i, _, _ in hits if on > i.due_on}
        if (self.state is State.ACTIVE and self.last_suspension is not None and self.suspension_lifted_on is not None
                and set(self.last_suspension[1]) & past_due):
            restore = self.last_suspension[0]
        for n, (invoice, own, fees) in enumerate(hits):
            for payment in own:
                self._payment_reversed(invoice_id=invoice.invoice_id, transfer_id=transfer_id, source=source,
                                       amount=payment.amount, paid_on=payment.paid_on, reversed_on=on, reason=reason,
                                       overdue_again=invoice.invoice_id in past_due,
                                       suspension_stop_on=restore if n == len(hits) - 1 else None)
            for write_off in fees:
                self._write_off_reversed(invoice_id=invoice.invoice_id, transfer_id=transfer_id,
                                         amount=write_off.amount, written_off_on=write_off.written_off_on,
                                         reversed_on=on)

    @event("PaymentReversed")
    def _payment_reversed(self, invoice_id: uuid.UUID, transfer_id: uuid.UUID, source: str, amount: int,
                          paid_on: date, reversed_on: date, reason: str, overdue_again: bool,
                          suspension_stop_on: date | None) -> None:
        self.reversed_payments.add((str(transfer_id), source))
        if overdue_again:
            self.overdue.add(invoice_id)
        if suspension_stop_on is not None:
            self.state, self.suspension_stop_on, self.suspension_lifted_on = (
                State.SUSPENSION_NOTICED, suspension_stop_on, None)

    @event("WriteOffReversed")
    def _write_off_reversed(self, invoice_id: uuid.UUID, transfer_id: uuid.UUID, amount: int, written_off_on: date,
                            reversed_on: date) -> None:
        pass

    def write_off(self, invoice_id: uuid.UUID, amount: int, on: date, rule: str, reason: str,
                  transfer_id: uuid.UUID | None = None) -> None:
        """Rule book 7: principal no longer claimed (a fee shortfall within the tolerance, or an
        uncollectible debt an operator writes off with the reason); it stays on the record."""
        _require_positive_int(amount, "amount", "rule book 7")
        invoice = self.ledger.invoices.get(invoice_id)
        if invoice is None:
            raise InvalidInput("rule book 7", "no such invoice on this contract", "invoice_id")
        if amount > invoice.outstanding:
            raise RuleViolation("rule book 7", "the write-off exceeds the invoice's outstanding amount")
        if not reason or not reason.strip() or len(reason) > 500:
            raise InvalidInput("rule book 7", "reason is required (at most 500 characters)", "reason")
        if on < invoice.issued_on:
            raise InvalidInput("rule book 7", "a write-off cannot precede the invoice", "written_off_on")
        self._debt_written_off(invoice_id=invoice_id, amount=amount, written_off_on=on, rule=rule, reason=reason,
                               transfer_id=transfer_id)
        self._lift_if_settled(on)

    @event("DebtWrittenOff")
    def _debt_written_off(self, invoice_id: uuid.UUID, amount: int, written_off_on: date, rule: str,
                          reason: str, transfer_id: uuid.UUID | None = None) -> None:
        if self.ledger.invoices[invoice_id].outstanding <= 0:
            self.overdue.discard(invoice_id)

    # -- operator discretion (Art. 9.5 ただし書) ------------------------------------------------------
    def move_suspension_stop(self, stop_on: date, reason: str, at: datetime) -> None:
        """Art. 9.5 proviso: the provider may allow a later payment: a later (or earlier, not past)
        stop date, recorded with the reason."""
        self._require_state("Art. 9.5", State.SUSPENSION_NOTICED)
        if not reason or not reason.strip() or len(reason) > 500:
            raise InvalidInput("Art. 9.5", "reason is required (at most 500 characters)", "reason")
        if stop_on <= jst_date(at):
            raise InvalidInput("Art. 9.5", "the new stop date must lie after today", "stop_on")
        if stop_on == self.suspension_stop_on:
            raise RuleViolation("Art. 9.5", "the stop date is already that day")
        self._suspension_stop_moved(previous_stop_on=self.suspension_stop_on, stop_on=stop_on, reason=reason, at=at)

    @event("SuspensionStopMoved")
    def _suspension_stop_moved(self, previous_stop_on: date | None, stop_on: date, reason: str, at: datetime) -> None:
        self.suspension_stop_on = stop_on
        if self.last_suspension is not None:
            self.last_suspension = (stop_on, self.last_suspension[1])

    def lift_suspension(self, reason: str, at: datetime) -> None:
        """Art. 9.5 proviso: the provider continues the contract although money is still owed."""
        self._require_state("Art. 9.5", State.SUSPENSION_NOTICED)
        if not reason or not reason.strip() or len(reason) > 500:
            raise InvalidInput("Art. 9.5", "reason is required (at most 500 characters)", "reason")
        self._suspension_lifted(lifted_on=jst_date(at), reason=reason)

    def _overdue_principal(self) -> int:
        return sum(self.ledger.invoices[i].outstanding for i in self.overdue)

    def mark_overdue(self, invoice_id: uuid.UUID, on: date) -> None:
        invoice = self.ledger.invoices.get(invoice_id)
        if invoice is None:
            raise InvalidInput("Art. 9.5", "no such invoice on this contract", "invoice_id")
        if overdue_marks_end(self.termination_reason):
            raise RuleViolation("Art. 9.5", f"the contract was terminated for non-payment on {self.ended_on}: no "
                                "further overdue marks (Art. 9.4 late interest still accrues from the due date)")
        if on <= invoice.due_on:
            raise RuleViolation("Art. 9.5", f"invoice is due on {invoice.due_on}; not overdue on {on}")
        unpaid = invoice.outstanding_on(invoice.due_on)
        if invoice.outstanding <= 0 or unpaid <= 0 or invoice_id in self.overdue:
            raise RuleViolation("Art. 9.5", "invoice is paid or already overdue")
        self._payment_overdue(invoice_id=invoice_id, due_on=invoice.due_on, unpaid=invoice.outstanding,
                              overdue_on=on)

    def remind_payment(self, invoice_id: uuid.UUID, stage: str, on: date, policy: Policy) -> None:
        """Rule book 7 reminders: once per invoice and stage, on or after the day
        ``domain.settlement.payment_reminder_on`` gives, while principal is unpaid; the one before
        the due date only until it (an overdue invoice gets the one after). Recorded on the
        reminder's own date, never before the invoice was issued."""
        if stage not in REMINDER_STAGES:
            raise InvalidInput("rule book 7", f"stage must be one of {', '.join(REMINDER_STAGES)}", "stage")
        invoice = self.ledger.invoices.get(invoice_id)
        if invoice is None:
            raise InvalidInput("rule book 7", "no such invoice on this contract", "invoice_id")
        remind_on = payment_reminder_on(invoice.due_on, stage, policy)
        if remind_on is None:
            raise RuleViolation("rule book 7", f"no {stage.replace('_', ' ')} reminder (POLICY payment_reminder_days)")
        if (str(invoice_id), stage) in self.payment_reminders:
            raise RuleViolation("rule book 7", f"the {stage.replace('_', ' ')} reminder of this invoice is already "
                                "recorded")
        if invoice.outstanding <= 0:
            raise RuleViolation("rule book 7", "the invoice is paid")
        if on < remind_on:
            raise RuleViolation("rule book 7", f"the reminder is due on {remind_on}")
        if stage == BEFORE_DUE and (on > invoice.due_on or invoice_id in self.overdue):
            raise RuleViolation("rule book 7", f"the invoice's due date {invoice.due_on} has passed")
        self._payment_reminded(invoice_id=invoice_id, stage=stage, due_on=invoice.due_on, unpaid=invoice.outstanding,
                               reminded_on=max(on, invoice.issued_on))

    @event("PaymentReminded")
    def _payment_reminded(self, invoice_id: uuid.UUID, stage: str, due_on: date, unpaid: int,
                          reminded_on: date) -> None:
        self.payment_reminders.add((str(invoice_id), stage))

    @event("PaymentOverdue")
    def _payment_overdue(self, invoice_id: uuid.UUID, due_on: date, unpaid: int, overdue_on: date) -> None:
        self.overdue.add(invoice_id)

    def notice_suspension(self, on: date, policy: Policy) -> date:
        self._require_state("Art. 9.5", State.ACTIVE)
        late = sorted(i for i in self.overdue
                      if on >= self.ledger.invoices[i].due_on + timedelta(days=policy.suspension_notice_after_days))
        if not late:
            raise RuleViolation("Art. 9.5", f"nothing is {policy.suspension_notice_after_days} days overdue on {on}")
        stop = on + timedelta(days=policy.suspension_grace_days)
        reason = "non-payment of invoices " + ", ".join(str(i) for i in late)
        self._suspension_noticed(invoice_ids=late, reason=reason, noticed_on=on, stop_on=stop)
        return stop

    @event("SuspensionNoticed")
    def _suspension_noticed(self, invoice_ids: list[uuid.UUID], reason: str, noticed_on: date,
                            stop_on: date) -> None:
        self.state, self.suspension_stop_on = State.SUSPENSION_NOTICED, stop_on
        self.last_suspension, self.suspension_lifted_on = (stop_on, list(invoice_ids)), None

    @event("SuspensionLifted")
    def _suspension_lifted(self, lifted_on: date, reason: str | None = None) -> None:
        """``reason``: set when an operator lifted it (Art. 9.5 proviso); None when it was paid."""
        self.state, self.suspension_stop_on, self.suspension_lifted_on = State.ACTIVE, None, lifted_on

    def stop_for_non_payment(self, on: date, policy: Policy) -> None:
        self._require_state("Art. 9.5", State.SUSPENSION_NOTICED)
        assert self.suspension_stop_on is not None
        if on < self.suspension_stop_on:
            raise RuleViolation("Art. 9.5", f"the stop date is {self.suspension_stop_on}")
        stop = self.suspension_stop_on  # the notified stop date, even if the job runs late
        self._terminated(reason=TerminationReason.NON_PAYMENT, article="Art. 9.5", ended_on=stop,
                         retention_until=retention_deadline(stop, policy), at=jst_start(stop))

    # -- termination for cause, discontinuation, terms change (Art. 18, 23, 24, 28) -------------------
    def terminate_for_cause(self, article: str, at: datetime, policy: Policy) -> None:
        self._require_state(article if article in FOR_CAUSE_ARTICLES else "Art. 23.1", *IN_SERVICE)
        if article not in FOR_CAUSE_ARTICLES:
            raise InvalidInput("Art. 23.1", f"article must be one of {', '.join(FOR_CAUSE_ARTICLES)}", "article")
        on = jst_date(at)
        self._terminated(reason=TerminationReason.FOR_CAUSE, article=article, ended_on=on,
                         retention_until=retention_deadline(on, policy), at=at)

    def terminate_for_discontinuation(self, discontinued_on: date, policy: Policy) -> None:
        """Art. 18: every contract of the service ends on the discontinuation date."""
        self._require_state("Art. 18", *DISCONTINUED_STATES)
        self._terminated(reason=TerminationReason.DISCONTINUATION, article="Art. 18", ended_on=discontinued_on,
                         retention_until=retention_deadline(discontinued_on, policy), at=jst_start(discontinued_on))

    def terminate_for_terms_change(self, effective_on: date, at: datetime, policy: Policy) -> None:
        """Art. 28: a customer who objects may end the contract before the change takes effect."""
        self._require_state("Art. 28", *IN_SERVICE)
        on = jst_date(at)
        if on >= effective_on:
            raise RuleViolation("Art. 28", f"the terms change took effect on {effective_on}; too late to object")
        self._terminated(reason=TerminationReason.TERMS_CHANGE, article="Art. 28", ended_on=on,
                         retention_until=retention_deadline(on, policy), at=at)

    class Terminated(Event):
        """The contract ended. ``at`` is the business instant: the command's (for cause, terms
        change), or 00:00 JST of the scheduler's deadline (notice and term end: the month start
        after the last month; non-payment: the notified stop date; discontinuation: its date).

        ``class_version`` 2 (issue 19): version 1, stored before, had ``at: null`` for the
        scheduler's terminations. ``upcast_v1_v2`` derives the instant from the event's own fields
        as the scheduler records it now, so old events read like new ones and are never rewritten
        (the state does not depend on ``at``; a replay is unchanged)."""

        reason: TerminationReason
        article: str
        ended_on: date
        retention_until: date
        at: datetime

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            if state.get("at") is None:
                state["at"] = jst_start(scheduled_termination_day(state["reason"], state["ended_on"]))

    @event(Terminated)
    def _terminated(self, reason: TerminationReason, article: str, ended_on: date, retention_until: date,
                    at: datetime) -> None:
        self.state, self.termination_reason, self.termination_article = State.TERMINATED, reason, article
        self.ended_on, self.retention_until, self.suspension_stop_on = ended_on, retention_until, None

    # -- SLA (Art. 20, 21) ---------------------------------------------------------------------------
    def claim_sla(self, claim_id: uuid.UUID, outage: OutageFacts, at: datetime, proof_of_payment: bool,
                  proof_of_breach: bool, evidence: str, policy: Policy) -> ClaimAssessment:
        if outage.service != self.service:
            raise RuleViolation("Art. 20.1", f"the outage concerns {outage.service}, not {self.service}")
        if claim_id in self.claims or any(c.outage.outage_id == outage.outage_id for c in self.claims.values()):
            raise RuleViolation("Art. 20.3", "this outage has already been claimed for this contract")
        if self.state in (State.OPENED, State.REJECTED) or self.data_deleted:
            raise RuleViolation("Art. 20.3", f"a contract in state {self.state.value} cannot claim")
        if len(evidence) > 10_000:
            raise InvalidInput("Art. 20.3", "evidence is limited to 10,000 characters", "evidence")
        received = jst_date(at)
        self._sla_claimed(claim_id=claim_id, outage_id=outage.outage_id, service=outage.service,
                          started_at=outage.started_at, ended_at=outage.ended_at, cause=outage.cause,
                          received_on=received, proof_of_payment=proof_of_payment,
                          proof_of_breach=proof_of_breach, evidence=evidence, at=at)
        return self.assess(claim_id, policy)

    @event("SlaBreachClaimed")
    def _sla_claimed(self, claim_id: uuid.UUID, outage_id: uuid.UUID, service: str, started_at: datetime,
                     ended_at: datetime, cause: OutageCause, received_on: date, proof_of_payment: bool,
                     proof_of_breach: bool, evidence: str, at: datetime) -> None:
        facts = OutageFacts(outage_id, service, started_at, ended_at, cause)
        self.claims[claim_id] = Claim(claim_id, facts, received_on, proof_of_payment, proof_of_breach)

    def coverage_for(self, month: Month) -> Coverage:
        assert self.plan is not None
        return Coverage.of(self.ledger.monthly_fee(month), self.trial_started_on is not None,
                           self.plan.beta, self.plan.store, self.plan.sla_eligible)

    def assess(self, claim_id: uuid.UUID, policy: Policy) -> ClaimAssessment:
        claim = self.claims[claim_id]
        month = Month.of(claim.outage.breach_date)
        return assess_claim(claim.outage, claim.received_on, claim.proof_of_payment, claim.proof_of_breach,
                            self.coverage_for(month), policy.sla_claim_window_days)

    def decide_claim(self, claim_id: uuid.UUID, remedy: Remedy | None, amount: int | None, at: datetime,
                     policy: Policy, numbers: NumberBook | None = None) -> None:
        """The provider chooses remedy and amount (Art. 20.1); default: minimum as fee reduction.
        A refund is paid back with a credit note (rule book 8, 6.1), numbered from ``numbers``; a fee
        reduction granted after the contract ended has no next invoice and becomes one too."""
        claim = self.claims.get(claim_id)
        if claim is None:
            raise InvalidInput("Art. 20.3", "no such claim on this contract", "claim_id")
        if claim.decided is not None:
            raise RuleViolation("Art. 20.1", f"claim already {claim.decided}")
        result = self.assess(claim_id, policy)
        if not result.eligible:
            if remedy is not None or amount is not None:
                raise RuleViolation(result.reason.split(":")[0] if result.reason else "Art. 20",
                                    f"claim is not eligible: {result.reason}")
            self._credit_rejected(claim_id=claim_id, reason=result.reason or "", at=at)
            return
        chosen = remedy or Remedy.FEE_REDUCTION
        value = result.minimum if amount is None else amount
        if isinstance(value, bool) or not isinstance(value, int) or not result.minimum <= value <= result.maximum:
            raise InvalidInput("Art. 20.1", f"amount must lie between {result.minimum} and {result.maximum}",
                               "amount")
        assert result.breach_month is not None
        refund_of = None
        if chosen is Remedy.REFUND:
            refund_of = self.ledger.invoice_for_month(result.breach_month)
            if refund_of is None:
                raise RuleViolation("Art. 20.1", f"no invoice of {result.breach_month} to refund")
            if numbers is None:
                raise RuleViolation(RETURN_INVOICE, "a refund is paid with a numbered credit note")
        self._credit_granted(claim_id=claim_id, remedy=chosen.value, amount=value, credit_days=result.credit_days,
                             breach_month=result.breach_month, at=at)
        if refund_of is not None and numbers is not None:
            self._refund_credit(str(claim_id), value, refund_of, jst_date(at), policy, numbers, at)
        elif numbers is not None:
            self.settle(jst_date(at), policy, numbers, at)

    # -- corrections, credit notes, interest (rule book 6, 6.1, 8; Art. 9.4) ---------------------------
    def _refund_credit(self, claim: str, amount: int, original: Invoice, on: date, policy: Policy,
                       numbers: NumberBook, at: datetime | None) -> None:
        """Rule book 8: an SLA refund, documented by a credit note at the rate of the refunded fee
        (Art. 57-4(3): per rate): the fee line's of the month's invoice (``Ledger.fee_rate``), else the plan's."""
        rate = self.ledger.fee_rate(original) or (self.plan.tax_rate if self.plan is not None else STANDARD_RATE)
        draft = self.ledger.draft_credit_note(
            original, "sla_refund", "Art. 20.1 SLA refund", f"SLA refund for claim {claim}", amount, rate, claim,
            f"sla_refund:{claim}", on, "SLA refund (Art. 20.1)")
        self._issue(draft, on, policy, numbers, at)

    def settle(self, on: date, policy: Policy, numbers: NumberBook, at: datetime | None = None) -> None:
        """What an ended contract still owes or is owed, billed now (no next invoice will come):
        fee reductions become refunds with a credit note (rule book 8), and the late interest of
        settled invoices an interest invoice (rule book 6, Art. 9.4). A no-op otherwise."""
        if self.state is not State.TERMINATED:
            return
        for claim, amount in list(self.ledger.pending_credits):
            claim_facts = self.claims.get(uuid.UUID(claim))
            month = Month.of(claim_facts.outage.breach_date) if claim_facts is not None else None
            original = (self.ledger.invoice_for_month(month) if month is not None else None) or self._last_invoice()
            if original is not None:
                self._refund_credit(claim, amount, original, on, policy, numbers, at)
        lines = self.ledger.interest_lines(policy.late_interest_rate)
        if lines:
            draft = Draft(f"interest:{on.isoformat()}:{self.version}", "interest", str(Month.of(on)), Month.of(on),
                          due_date(Month.of(on), policy.due_months_after), tuple(lines))
            self._issue(draft, on, policy, numbers, at)

    def _last_invoice(self) -> Invoice | None:
        owed = [i for i in self.ledger.invoices.values() if i.document_type == "invoice"]
        return max(owed, key=lambda i: (i.issued_on, i.number)) if owed else None

    def bill_interest(self, on: date, policy: Policy, numbers: NumberBook, at: datetime | None = None) -> None:
        """Rule book 6: an interest invoice of its own for the open late interest (an operator's
        choice when it should not wait for the next invoice)."""
        lines = self.ledger.interest_lines(policy.late_interest_rate)
        if not lines:
            raise RuleViolation("Art. 9.4", "no settled invoice has late interest left to bill")
        draft = Draft(f"interest:{on.isoformat()}:{self.version}", "interest", str(Month.of(on)), Month.of(on),
                      due_date(Month.of(on), policy.due_months_after), tuple(lines))
        self._issue(draft, on, policy, numbers, at)

    def waive_interest(self, invoice_id: uuid.UUID, reason: str, at: datetime, policy: Policy) -> int:
        """Rule book 6: an operator waives the open late interest of an invoice, with the reason."""
        invoice = self.ledger.invoices.get(invoice_id)
        if invoice is None:
            raise InvalidInput("Art. 9.4", f"no invoice {invoice_id} on this contract", "invoice_id")
        _require_reason(reason)
        amount = invoice.open_interest(policy.late_interest_rate)
        if amount <= 0:
            raise RuleViolation("Art. 9.4", "no late interest left to waive on this invoice (unpaid principal, "
                                "or already billed or waived)")
        self._interest_waived(invoice_id=invoice_id, amount=amount, reason=reason, at=at)
        return amount

    @event("LateInterestWaived")
    def _interest_waived(self, invoice_id: uuid.UUID, amount: int, reason: str, at: datetime) -> None:
        pass

    def void_invoice(self, invoice_id: uuid.UUID, reason: str, at: datetime, policy: Policy,
                     numbers: NumberBook) -> None:
        """Rule book 6.1: an invoice issued in error is voided, only before any payment, with a reason.
        What it billed by rule is given back (``Ledger._release``) and, on an ended contract, settled
        at once (``_settle_released``)."""
        invoice = self._owed_invoice(invoice_id)
        _require_reason(reason)
        if invoice.payments:
            raise RuleViolation("rule book 6.1", "a paid invoice cannot be voided: issue a credit note")
        if invoice.credited or invoice.refunded:  # voided, its credit note would return a supply never made
            raise RuleViolation("rule book 6.1", "a credited invoice cannot be voided: adjust it with a further "
                                                 "credit note")
        self._invoice_voided(invoice_id=invoice_id, reason=reason, at=at)
        self._settle_released(invoice, jst_date(at), policy, numbers, at)

    def _settle_released(self, replaced: Invoice, on: date, policy: Policy, numbers: NumberBook,
                         at: datetime) -> None:
        """Rule book 6 and 8: on an ended contract no next invoice will take what a voided or corrected
        invoice gave back (its late interest, its SLA fee reductions), so it is settled now, as after
        every other command there (``settle``). Not after an interest invoice: its own interest,
        billed again by the same command, would undo the void; it stays open for the operator to
        waive or bill (Art. 9.4)."""
        if replaced.kind != "interest":
            self.settle(on, policy, numbers, at)

    @event("InvoiceVoided")
    def _invoice_voided(self, invoice_id: uuid.UUID, reason: str, at: datetime) -> None:
        self.overdue.discard(invoice_id)

    def correct_invoice(self, invoice_id: uuid.UUID, lines: list[InvoiceLine], reason: str, at: datetime,
                        policy: Policy, numbers: NumberBook) -> uuid.UUID:
        """Rule book 6.1: a corrected invoice (修正インボイス) replaces an unpaid one and refers to it;
        the original stays as issued, marked corrected. A paid or credited invoice is corrected by a
        (further) credit note."""
        original = self._owed_invoice(invoice_id)
        _require_reason(reason)
        if original.payments:
            raise RuleViolation("rule book 6.1", "a paid invoice is corrected with a credit note")
        if original.credited or original.refunded:  # replaced, it would owe its total again: the credit lost
            raise RuleViolation("rule book 6.1", "a credited invoice is corrected with a further credit note")
        if not lines or any(line.tax_rate is None and line.kind != "late_interest" for line in lines):
            raise InvalidInput("rule book 6.1", "a corrected invoice needs lines, each with its tax rate", "lines")
        on = jst_date(at)
        draft = Draft(f"correction:{invoice_id}:{self.version}", "correction", original.period, original.month,
                      max(original.due_on, on), tuple(lines), "invoice", self.ledger.original_of(original), reason)
        self._issue(draft, on, policy, numbers, at)
        corrected = self._last_invoice_id()
        self._settle_released(original, on, policy, numbers, at)
        return corrected

    def issue_credit_note(self, invoice_id: uuid.UUID, amount: int, reason: str, at: datetime, policy: Policy,
                          numbers: NumberBook, rate: Decimal | None = None) -> uuid.UUID:
        """Rule book 6.1: a discount or credit after issue is a credit note (返還インボイス) against the
        invoice, at the rate of what it returns (Art. 57-4(3): per rate): the invoice's rate, or
        ``rate`` when the invoice has items at both rates; it lowers what is owed, and beyond that is
        a refund due."""
        original = self._owed_invoice(invoice_id)
        _require_reason(reason)
        _require_positive_int(amount, "amount", RETURN_INVOICE)
        rates = sorted({line.tax_rate for line in original.lines if line.tax_rate is not None}, reverse=True)
        if rate is None and len(rates) > 1:
            raise InvalidInput(RETURN_INVOICE, "the invoice has items at more than one tax rate: name the rate "
                               "of what is returned", "tax_rate")
        if rate is not None and rate not in rates:
            raise InvalidInput(RETURN_INVOICE, "the invoice has no item at this tax rate", "tax_rate")
        rate = rate if rate is not None else rates[0] if rates else STANDARD_RATE
        taxable = sum(line.amount for line in original.lines if line.tax_rate == rate)
        if amount > taxable - self._credited_taxable(original, rate):
            raise RuleViolation(RETURN_INVOICE, f"at most {taxable - self._credited_taxable(original, rate)} yen "
                                "of this invoice can still be credited")
        on = jst_date(at)
        draft = self.ledger.draft_credit_note(original, "credit_note", "rule book 6.1 credit after issue",
                                              f"credit on {original.number}", amount, rate, str(invoice_id),
                                              f"credit_note:{invoice_id}:{self.version}", on, reason)
        self._issue(draft, on, policy, numbers, at)
        return self._last_invoice_id()

    def _credited_taxable(self, original: Invoice, rate: Decimal) -> int:
        """What the return invoices against ``original`` returned at ``rate`` (tax-exclusive): credit
        notes and SLA refunds alike (Art. 57-4(3): neither returns more than was supplied)."""
        return sum(line.amount for note in self.ledger.invoices.values()
                   if note.document_type == "credit_note" and note.original
                   and note.original.get("invoice_id") == str(original.invoice_id)
                   for line in note.lines if line.tax_rate == rate)

    def _last_invoice_id(self) -> uuid.UUID:
        return next(reversed(self.ledger.invoices))

    def _owed_invoice(self, invoice_id: uuid.UUID) -> Invoice:
        invoice = self.ledger.invoices.get(invoice_id)
        if invoice is None:
            raise InvalidInput("rule book 6.1", f"no invoice {invoice_id} on this contract", "invoice_id")
        if invoice.document_type != "invoice" or invoice.status != "issued":
            raise RuleViolation("rule book 6.1", f"invoice {invoice.number} is {invoice.status}, not open")
        return invoice

    @event("CreditGranted")
    def _credit_granted(self, claim_id: uuid.UUID, remedy: str, amount: int, credit_days: int,
                        breach_month: Month, at: datetime) -> None:
        self.claims[claim_id].decided = "granted"
        if remedy == Remedy.EXTENSION.value:
            self.extension_days += credit_days

    @event("CreditRejected")
    def _credit_rejected(self, claim_id: uuid.UUID, reason: str, at: datetime) -> None:
        self.claims[claim_id].decided = "rejected"

    # -- contractor information (Art. 12, 13) -------------------------------------------------------
    def change_contractor(self, contractor: dict[str, str], at: datetime) -> None:
        if self.data_deleted or self.state is State.OPENED:
            raise RuleViolation("Art. 12.1", "no contractor information to change")
        if not contractor.get("name"):
            raise InvalidInput("Art. 12.1", "contractor.name is required", "contractor.name")
        self._check_contacts_allowed(contractor)
        self._contractor_changed(contractor=dict(contractor), at=at)

    @event("ContractorInfoChanged")
    def _contractor_changed(self, contractor: dict[str, str], at: datetime) -> None:
        self.contractor = contractor

    def _check_contacts_allowed(self, contractor: dict[str, str]) -> None:
        if self.contacts_erased_on is not None and split_contractor(contractor)[1]:
            raise RuleViolation(PRIVACY_REQUEST_ARTICLE, f"the contacts were erased on request on "
                                f"{self.contacts_erased_on}; only the name and address can be recorded")

    # -- stored data (Art. 15.3) ----------------------------------------------------------------------
    def delete_stored_data(self, on: date) -> None:
        """Art. 15.3 / 15.5: the customer's stored data (保存データ) is deleted once the retention
        period after the end of the contract has passed. Contractor data is not touched."""
        self._require_state(STORED_DATA_ARTICLE, *ENDED)
        assert self.retention_until is not None
        if self.stored_data_deleted_on is not None:
            raise RuleViolation(STORED_DATA_ARTICLE, f"stored data already deleted on {self.stored_data_deleted_on}")
        if on < self.retention_until:
            raise RuleViolation(STORED_DATA_ARTICLE, f"stored data is kept until {self.retention_until}")
        self._stored_data_deleted(service=self.service, deleted_on=on)

    @event("StoredDataDeleted")
    def _stored_data_deleted(self, service: str, deleted_on: date) -> None:
        """The instruction to the platform, and its record, that the stored data is purged (the
        application stamps who caused it: the scheduler and the deadline, section 13)."""
        self.stored_data_deleted_on = deleted_on

    # -- contractor data (Art. 13, privacy policy, records retention) ---------------------------------
    def owed(self, customer_credit: int = 0) -> Owed:
        """What is still owed, from the ledger (the input of the contractor-data rule), and
        ``customer_credit``: the customer's credit balance, owed to the customer (rule book 7; it
        is kept on the customer's account, which the caller reads)."""
        invoices = self.ledger.invoices.values()
        paid_on = [p.paid_on for i in invoices for p in i.payments]
        return Owed(principal=sum(max(i.outstanding, 0) for i in invoices),
                    unapplied_credit=sum(amount for _, amount in self.ledger.pending_credits),
                    last_settled_on=max(paid_on) if paid_on else None, credit_balance=customer_credit)

    def last_invoice_on(self) -> date | None:
        """Issue date of the contract's last issued document (``domain.retention.last_invoice_on``)."""
        return last_invoice_on([i.issued_on for i in self.ledger.invoices.values()])

    def records_kept_until(self, policy: Policy) -> date | None:
        return records_kept_until(self.last_invoice_on(), policy.fiscal_year_end, policy.records_retention_years,
                                  policy.records_filing_months)

    def contractor_data_erasure_on(self, policy: Policy, customer_credit: int = 0) -> date | None:
        """The day the contractor data goes (``domain.retention.contractor_data_erasure_on``);
        None while the contract lasts or anything is owed (either way: ``customer_credit``, the
        customer's credit balance, is owed to the customer)."""
        deletion = self.retention_until if self.state in ENDED else None
        return contractor_data_erasure_on(deletion, self.last_invoice_on(), self.owed(customer_credit),
                                          policy.fiscal_year_end, policy.records_retention_years,
                                          policy.records_filing_months)

    def erase_contractor_data(self, on: date, policy: Policy, customer_credit: int = 0,
                              credit_cleared_on: date | None = None) -> None:
        """Crypto-shredding of every personal field once the keeping ends (spec 10, Art. 13).
        Rule book 10 keeps it "while anything is owed", both ways: ``customer_credit`` (the
        customer's credit balance, rule book 7) is money the provider owes the customer, so the
        erasure waits until it is applied or refunded (the refusal points at the customer's account,
        ``refers_to``, so the scheduler lists it for an operator); once it is cleared the erasure is
        dated no earlier than ``credit_cleared_on`` (the last day it was owed: a deadline fired late
        does not backdate the erasure past it)."""
        if self.data_deleted:
            raise RuleViolation(CONTRACTOR_DATA_ARTICLE,
                                f"contractor data already erased on {self.contractor_erased_on}")
        self._require_state(CONTRACTOR_DATA_ARTICLE, *ENDED)
        owed = self.owed(customer_credit)
        if owed.anything:
            held = ({"customer_account": str(CustomerAccount.create_id(self.customer_number))}
                    if owed.credit_balance else None)
            way_out = ("; refund it to the customer (rule book 7)" if owed.credit_balance > 0 else
                       "; collect it from the customer (rule book 7)" if owed.credit_balance < 0 else "")
            raise RuleViolation(CONTRACTOR_DATA_ARTICLE, f"contractor data is kept while anything is owed "
                                f"({owed.describe()}){way_out}", refers_to=held)
        due = self.contractor_data_erasure_on(policy, customer_credit)
        assert due is not None
        if on < due:
            raise RuleViolation(CONTRACTOR_DATA_ARTICLE, f"contractor data is kept until {due - timedelta(days=1)}")
        if credit_cleared_on is not None and credit_cleared_on > on:
            on = credit_cleared_on
        self._contractor_data_erased(erased_on=on, reason=self._erasure_reason(policy))

    def _erasure_reason(self, policy: Policy) -> str:
        kept_until = self.records_kept_until(policy)
        if kept_until is None:
            return "no invoice was ever issued: no records to keep (erased with the stored data)"
        return (f"records period ended on {kept_until}: {policy.records_retention_years} years after the fiscal "
                f"year holding the last invoice ({self.last_invoice_on()}); nothing owed")

    @event("ContractorDataErased")
    def _contractor_data_erased(self, erased_on: date, reason: str) -> None:
        """Stored together with the destruction of the contract's keys (crypto-shredding)."""
        self.data_deleted, self.contractor, self.contractor_erased_on = True, {}, erased_on

    @event("DataDeleted")
    def _data_deleted(self, deleted_on: date) -> None:
        """The event of stores written before the split (issue 15), read as the new facts: it deleted
        the stored data and destroyed the contractor key on ``deleted_on``. No command emits it now."""
        self.data_deleted, self.contractor = True, {}
        self.contractor_erased_on = self.stored_data_deleted_on = deleted_on

    # -- requests under the privacy policy (開示等の請求, section 7) ---------------------------------
    def answer_privacy_request(self, request: str, at: datetime, policy: Policy,
                               customer_credit: int = 0) -> dict[str, Any]:
        """A request to stop using or to erase the contractor data: the contacts go at once, the
        record fields (the invoice recipient) stay until the records period ends. Recorded with its
        outcome; a contract without records to keep is erased whole, unless the customer's credit
        balance (``customer_credit``, rule book 7) is still owed to them."""
        if request not in PRIVACY_REQUESTS:
            raise InvalidInput(PRIVACY_REQUEST_ARTICLE, f"request must be one of {', '.join(PRIVACY_REQUESTS)}",
                               "request")
        if self.state is State.OPENED:
            raise RuleViolation(PRIVACY_REQUEST_ARTICLE, "no contractor information is held")
        received = jst_date(at)
        records, contacts = split_contractor(self.contractor)
        no_records = self.state in ENDED and self.last_invoice_on() is None and customer_credit == 0
        erased: list[str] = []
        kept: list[str] = []
        kept_until: date | None = None
        if self.data_deleted:
            because = f"the contractor data was already erased on {self.contractor_erased_on}"
        elif no_records:
            erased, because = sorted([*records, *contacts]), "no invoice was ever issued: no records to keep"
        else:
            due = self.contractor_data_erasure_on(policy, customer_credit)
            erased, kept, because = sorted(contacts), sorted(records), self._kept_because(policy, customer_credit)
            kept_until = None if due is None else due - timedelta(days=1)
        self._privacy_request_answered(request=request, received_on=received, erased_fields=erased,
                                       kept_fields=kept, kept_until=kept_until, kept_because=because)
        if no_records and not self.data_deleted:
            self._contractor_data_erased(erased_on=received,
                                         reason=f"{PRIVACY_REQUEST_ARTICLE} request: no records to keep")
        return {"request": request, "received_on": received, "erased_fields": erased, "kept_fields": kept,
                "kept_until": kept_until, "kept_because": because}

    def _kept_because(self, policy: Policy, customer_credit: int = 0) -> str:
        owed = self.owed(customer_credit)
        start = (f"the day after the tax return's filing deadline, {policy.records_filing_months} months after the "
                 "end" if policy.records_filing_months else "the end")
        why = [f"the recipient's name (and address) must be kept with the invoice records: {RECORDS_LAW}; "
               f"{policy.records_retention_years} years from {start} of the fiscal year (ending "
               f"{policy.fiscal_year_end}) holding the last invoice"]
        if self.state not in ENDED:
            why.append("the contract is still in force, so its last invoice is not known yet")
        if owed.anything:
            why.append(f"amounts are still owed ({owed.describe()}): kept until they are settled")
        return "; ".join(why)

    @event("PrivacyRequestAnswered")
    def _privacy_request_answered(self, request: str, received_on: date, erased_fields: list[str],
                                  kept_fields: list[str], kept_until: date | None, kept_because: str) -> None:
        """Stored together with the destruction of the contract's contacts key."""
        if self.data_deleted:
            return
        self.contacts_erased_on = self.contacts_erased_on or received_on
        records, _ = split_contractor(self.contractor)
        self.contractor = {**records, CONTACTS_ERASED: ERASED_MARK}

    # -- helpers ---------------------------------------------------------------------------------------
    def _require_state(self, article: str, *allowed: State) -> None:
        if self.state not in allowed:
            names = ", ".join(s.value for s in allowed)
            raise RuleViolation(article, f"not allowed in state {self.state.value} (allowed: {names})")

    def _check_plan(self, plan: PricePlan) -> None:
        if plan.service != self.service:
            raise InvalidInput("Art. 7", f"grade {plan.grade} belongs to {plan.service}, not {self.service}", "grade")

    @staticmethod
    def _check_users(plan: PricePlan, users: int) -> None:
        _require_positive_int(users, "users", "Art. 3.1")
        if users < plan.min_users:
            raise InvalidInput("Art. 10.1", f"grade {plan.grade} needs at least {plan.min_users} users", "users")
        if users > 100_000:
            raise InvalidInput("Art. 3.1", "users must be at most 100000", "users")


class ContractEvents:
    """The Contract aggregate's event classes (made by ``@event``), typed for the folds and
    handlers that dispatch on them: a renamed event fails here, at import."""

    Opened = event_class(Contract, "Opened")
    TrialStarted = event_class(Contract, "TrialStarted")
    TrialExpired = event_class(Contract, "TrialExpired")
    Applied = event_class(Contract, "Applied")
    Approved = event_class(Contract, "Approved")
    Rejected = event_class(Contract, "Rejected")
    ServicePeriodStarted = event_class(Contract, "ServicePeriodStarted")
    Renewed = event_class(Contract, "Renewed")
    ChangeRequested = event_class(Contract, "ChangeRequested")
    GradeChanged = event_class(Contract, "GradeChanged")
    UsersChanged = event_class(Contract, "UsersChanged")
    TerminationNoticed = event_class(Contract, "TerminationNoticed")
    PaymentReceived = event_class(Contract, "PaymentReceived")
    PaymentOverdue = event_class(Contract, "PaymentOverdue")
    SuspensionNoticed = event_class(Contract, "SuspensionNoticed")
    SuspensionLifted = event_class(Contract, "SuspensionLifted")
    Terminated = event_class(Contract, "Terminated")
    SlaBreachClaimed = event_class(Contract, "SlaBreachClaimed")
    CreditGranted = event_class(Contract, "CreditGranted")
    CreditRejected = event_class(Contract, "CreditRejected")
    ContractorInfoChanged = event_class(Contract, "ContractorInfoChanged")
    DataDeleted = event_class(Contract, "DataDeleted")  # stores written before issue 15
    StoredDataDeleted = event_class(Contract, "StoredDataDeleted")
    ContractorDataErased = event_class(Contract, "ContractorDataErased")
    PrivacyRequestAnswered = event_class(Contract, "PrivacyRequestAnswered")
    PaymentReversed = event_class(Contract, "PaymentReversed")
    WriteOffReversed = event_class(Contract, "WriteOffReversed")
    DebtWrittenOff = event_class(Contract, "DebtWrittenOff")
    SuspensionStopMoved = event_class(Contract, "SuspensionStopMoved")
    PaymentReminded = event_class(Contract, "PaymentReminded")
    InvoiceIssued = event_class(Contract, "InvoiceIssued")
    InvoiceVoided = event_class(Contract, "InvoiceVoided")
    LateInterestWaived = event_class(Contract, "LateInterestWaived")

    @classmethod
    def all(cls) -> tuple[type[Any], ...]:
        """Every event class of the aggregate, in the order they are declared."""
        return tuple(v for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, type))


_E = ContractEvents
EVENT_ARTICLES: dict[type[Any], str] = {
    _E.Opened: "Art. 2.1",
    _E.TrialStarted: "Art. 5.1",
    _E.TrialExpired: "Art. 5.2",
    _E.Applied: "Art. 2.2",
    _E.Approved: "Art. 2.3, 8.1",
    _E.ServicePeriodStarted: "Art. 8.1",
    _E.Renewed: "Art. 8.2",
    _E.ChangeRequested: "Art. 10.1",
    _E.GradeChanged: "Art. 10.1",
    _E.UsersChanged: "Art. 10.1",
    _E.TerminationNoticed: "Art. 8.3, 10.1",
    _E.PaymentReceived: "Art. 9.3",
    _E.PaymentOverdue: "Art. 9.5",
    _E.SuspensionNoticed: "Art. 9.5",
    _E.SuspensionLifted: "Art. 9.5",
    _E.SlaBreachClaimed: "Art. 20.3",
    _E.CreditGranted: "Art. 20.1",
    _E.CreditRejected: "Art. 20",
    _E.ContractorInfoChanged: "Art. 12.1",
    _E.DataDeleted: "Art. 15.3",
    _E.StoredDataDeleted: "Art. 15.3",
    _E.ContractorDataErased: "Art. 13; Corporate Tax Act records period",
    _E.PrivacyRequestAnswered: "privacy policy 7",
    _E.PaymentReversed: "Art. 9.3, 9.4",  # rule book 7: a reversed transfer
    _E.WriteOffReversed: "Art. 9.3",
    _E.DebtWrittenOff: "Art. 9.3",  # rule book 7: fee shortfall or uncollectible debt
    _E.SuspensionStopMoved: "Art. 9.5",  # the proviso: a later payment allowed
    _E.PaymentReminded: "Art. 9.3",  # rule book 7: reminders before and after the due date
    _E.InvoiceIssued: "Consumption Tax Act Art. 57-4 (rule book 6.1)",
    _E.InvoiceVoided: "rule book 6.1",
    _E.LateInterestWaived: "Art. 9.4",
}
"""The rule each event class applies; ``Rejected`` and ``Terminated`` record their article."""
ARTICLE_RECORDED_BY_EVENT = (_E.Rejected, _E.Terminated)
