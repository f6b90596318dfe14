"""Open deadlines of one contract (spec 11): a pure fold of its events plus a rule function.

``Timeline`` folds the lifecycle facts that decide *when* something must happen next; it
mirrors the Contract aggregate's own mutators (same event names, same fields) but keeps only
what deadlines need, so it is small and serialisable. Invoice amounts come from the billing
``Ledger``: the caller reports each invoice's unpaid principal through ``invoice_changed``.

``contract_deadlines`` maps a timeline to the deadline kinds of ``application.read_models``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from domain.calendar import Month, jst_date
from domain.policy import Policy
from domain.sla import BREACH_AFTER

IN_SERVICE = ("concluded", "active", "suspension_noticed")
ENDED = ("terminated", "trial_expired", "rejected")


class DueAction(NamedTuple):
    """One open deadline of an aggregate: act on ``due_on`` (kind as in ``DEADLINE_KINDS``)."""

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
    suspension_stop_on: date | None = None
    retention_until: date | None = None
    data_deleted: bool = False
    overdue: set[str] = field(default_factory=set)  # invoice ids marked PaymentOverdue, still unpaid
    open_invoices: dict[str, tuple[date, int]] = field(default_factory=dict)  # id -> (due_on, unpaid)
    undecided_claims: dict[str, date] = field(default_factory=dict)  # claim id -> breach date

    # -- folding (mirrors domain.contract.Contract's mutators) -----------------------------------
    def apply(self, event: Any) -> None:
        handler = getattr(self, "_on_" + type(event).__name__, None)
        if handler is not None:
            handler(event)

    def invoice_changed(self, invoice_id: str, due_on: date, unpaid: int) -> None:
        """Called after the Ledger folded an event that issued or paid an invoice."""
        if unpaid > 0:
            self.open_invoices[invoice_id] = (due_on, unpaid)
        else:
            self.open_invoices.pop(invoice_id, None)
            self.overdue.discard(invoice_id)

    def _set_plan(self, plan: Any) -> None:
        self.beta, self.store, self.sla_eligible = bool(plan.beta), bool(plan.store), bool(plan.sla_eligible)

    def _on_Opened(self, e: Any) -> None:
        self.service, self.state = e.service, "opened"

    def _on_TrialStarted(self, e: Any) -> None:
        self.state, self.trial_started_on, self.trial_ends_on = "trial", e.started_on, e.trial_ends_on
        self._set_plan(e.plan)

    def _on_TrialExpired(self, e: Any) -> None:
        self.state, self.retention_until = "trial_expired", e.retention_until

    def _on_Applied(self, e: Any) -> None:
        self.state = "applied"
        self._set_plan(e.plan)

    def _on_Approved(self, e: Any) -> None:
        self.state, self.first_month = "concluded", e.first_month

    def _on_Rejected(self, e: Any) -> None:
        if e.resumes_trial:
            self.state = "trial"
        else:
            self.state, self.retention_until = "rejected", e.retention_until

    def _on_ServicePeriodStarted(self, e: Any) -> None:
        self.state, self.period_end = "active", e.period_end

    def _on_Renewed(self, e: Any) -> None:
        self.period_end = e.period_end

    def _on_ChangeRequested(self, e: Any) -> None:
        """A later request for the same month supersedes the earlier one (as in the aggregate)."""
        self.pending_changes = {k: m for k, m in self.pending_changes.items() if m != e.effective_month}
        self.pending_changes[str(e.change_id)] = e.effective_month

    def _on_GradeChanged(self, e: Any) -> None:
        self._set_plan(e.plan)
        self.pending_changes.pop(str(e.change_id), None)

    def _on_UsersChanged(self, e: Any) -> None:
        self.pending_changes.pop(str(e.change_id), None)

    def _on_TerminationNoticed(self, e: Any) -> None:
        self.termination_month = e.effective_month

    def _on_PaymentOverdue(self, e: Any) -> None:
        self.overdue.add(str(e.invoice_id))

    def _on_SuspensionNoticed(self, e: Any) -> None:
        self.state, self.suspension_stop_on = "suspension_noticed", e.stop_on

    def _on_SuspensionLifted(self, e: Any) -> None:
        self.state, self.suspension_stop_on = "active", None

    def _on_Terminated(self, e: Any) -> None:
        self.state, self.retention_until, self.suspension_stop_on = "terminated", e.retention_until, None

    def _on_SlaBreachClaimed(self, e: Any) -> None:
        self.undecided_claims[str(e.claim_id)] = breach_date(e.started_at)

    def _on_CreditGranted(self, e: Any) -> None:
        self.undecided_claims.pop(str(e.claim_id), None)

    def _on_CreditRejected(self, e: Any) -> None:
        self.undecided_claims.pop(str(e.claim_id), None)

    def _on_DataDeleted(self, e: Any) -> None:
        self.data_deleted = True

    # -- derived ---------------------------------------------------------------------------------
    def next_month_start(self) -> Month | None:
        """Same rule as ``Contract.next_month_start``: first period, renewal, change, noticed end."""
        if self.state == "concluded":
            return self.first_month
        if self.state not in IN_SERVICE or self.period_end is None:
            return None
        return min([self.period_end.plus(1), *self.pending_changes.values()])

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "state": self.state,
            "beta": self.beta,
            "store": self.store,
            "sla_eligible": self.sla_eligible,
            "trial_started_on": _d(self.trial_started_on),
            "trial_ends_on": _d(self.trial_ends_on),
            "first_month": _m(self.first_month),
            "period_end": _m(self.period_end),
            "pending_changes": [[k, str(m)] for k, m in self.pending_changes.items()],
            "termination_month": _m(self.termination_month),
            "suspension_stop_on": _d(self.suspension_stop_on),
            "retention_until": _d(self.retention_until),
            "data_deleted": self.data_deleted,
            "overdue": sorted(self.overdue),
            "open_invoices": {k: [d.isoformat(), n] for k, (d, n) in sorted(self.open_invoices.items())},
            "undecided_claims": {k: d.isoformat() for k, d in sorted(self.undecided_claims.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timeline:
        return cls(
            service=data["service"],
            state=data["state"],
            beta=data["beta"],
            store=data["store"],
            sla_eligible=data["sla_eligible"],
            trial_started_on=_pd(data["trial_started_on"]),
            trial_ends_on=_pd(data["trial_ends_on"]),
            first_month=_pm(data["first_month"]),
            period_end=_pm(data["period_end"]),
            pending_changes={k: Month.parse(m) for k, m in data["pending_changes"]},
            termination_month=_pm(data["termination_month"]),
            suspension_stop_on=_pd(data["suspension_stop_on"]),
            retention_until=_pd(data["retention_until"]),
            data_deleted=data["data_deleted"],
            overdue=set(data["overdue"]),
            open_invoices={k: (date.fromisoformat(d), n) for k, (d, n) in data["open_invoices"].items()},
            undecided_claims={k: date.fromisoformat(d) for k, d in data["undecided_claims"].items()},
        )


def breach_date(outage_started_at: datetime) -> date:
    """Spec 8: the JST date of start + 24h."""
    return jst_date(outage_started_at + BREACH_AFTER)


def contract_deadlines(t: Timeline, policy: Policy) -> list[DueAction]:
    """Every open deadline of one contract, sorted. Rules (spec 3-10):

    - trial_end: the trial's end date while in trial (Art. 5.2).
    - month_start: first day of the next month needing action (Art. 8, 10).
    - payment_overdue: due date + 1 for each unpaid invoice not yet marked overdue (Art. 9.5).
    - suspension_notice: due date + ``suspension_notice_after_days`` for overdue invoices while
      active (spec 7).
    - suspension_stop: the stop date of a suspension notice (spec 7).
    - sla_window_end: breach date + ``sla_claim_window_days`` + 1 for undecided claims (Art. 20.3).
    - retention_deletion: ``retention_until`` once ended, until DataDeleted (Art. 15.3 / 15.5).
    """
    out: list[DueAction] = []
    if t.state == "trial" and t.trial_ends_on is not None:
        out.append(DueAction(t.trial_ends_on, "trial_end"))
    month = t.next_month_start()
    if month is not None:
        out.append(DueAction(month.first_day, "month_start", str(month)))
    for invoice_id, (due_on, _unpaid) in t.open_invoices.items():
        if invoice_id not in t.overdue:
            out.append(DueAction(due_on + timedelta(days=1), "payment_overdue", invoice_id))
        elif t.state == "active":
            out.append(DueAction(due_on + timedelta(days=policy.suspension_notice_after_days),
                                 "suspension_notice", invoice_id))
    if t.state == "suspension_noticed" and t.suspension_stop_on is not None:
        out.append(DueAction(t.suspension_stop_on, "suspension_stop"))
    for claim_id, breach_on in t.undecided_claims.items():
        out.append(DueAction(breach_on + timedelta(days=policy.sla_claim_window_days + 1), "sla_window_end",
                             claim_id))
    if t.state in ENDED and t.retention_until is not None and not t.data_deleted:
        out.append(DueAction(t.retention_until, "retention_deletion"))
    return sorted(out)


def _d(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _pd(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _m(value: Month | None) -> str | None:
    return None if value is None else str(value)


def _pm(value: str | None) -> Month | None:
    return None if value is None else Month.parse(value)
