"""A deadlines source computed by loading every aggregate: slow, obviously correct, test-only.

Used to test the sweep's own logic independently of the projection, and as an oracle the
projection's deadlines are compared with."""

from __future__ import annotations

from datetime import date, timedelta

from application.read_models import Deadline
from application.service import ContractsApplication
from domain.contract import ENDED, IN_SERVICE, Contract, State
from domain.deadlines import DEADLINE_KIND_NAMES
from domain.policy import Policy
from domain.service_events import ServiceDiscontinuation, TermsChange

ORDER = {k: i for i, k in enumerate(DEADLINE_KIND_NAMES)}


def contract_deadlines(c: Contract, window_days: int, notice_after_days: int,
                       policy: Policy | None = None) -> list[Deadline]:
    out: list[Deadline] = []
    if c.state is State.TRIAL and c.trial_ends_on is not None:
        out.append(Deadline(c.trial_ends_on, "trial_end", c.id))
    if c.state in IN_SERVICE:
        nxt = c.next_month_start()
        if nxt is not None:
            out.append(Deadline(nxt.first_day, "month_start", c.id, str(nxt)))
    policy = policy or Policy()
    for inv in c.ledger.invoices.values():
        if inv.outstanding > 0:  # rule book 7 reminders, once per stage
            before, after = (inv.due_on - timedelta(days=policy.payment_reminder_days_before),
                             inv.due_on + timedelta(days=policy.payment_reminder_days_after))
            if (policy.payment_reminder_days_before and inv.invoice_id not in c.overdue
                    and (str(inv.invoice_id), "before_due") not in c.payment_reminders):
                out.append(Deadline(before, "payment_reminder", c.id, str(inv.invoice_id)))
            if policy.payment_reminder_days_after and (str(inv.invoice_id), "after_due") not in c.payment_reminders:
                out.append(Deadline(after, "overdue_reminder", c.id, str(inv.invoice_id)))
        if inv.invoice_id not in c.overdue and inv.outstanding > 0 and inv.outstanding_on(inv.due_on) > 0:
            out.append(Deadline(inv.due_on + timedelta(days=1), "payment_overdue", c.id, str(inv.invoice_id)))
    if c.state is State.ACTIVE:
        for i in c.overdue:
            if c.ledger.invoices[i].outstanding > 0:
                due = c.ledger.invoices[i].due_on + timedelta(days=notice_after_days)
                out.append(Deadline(due, "suspension_notice", c.id, str(i)))
    if c.state is State.SUSPENSION_NOTICED and c.suspension_stop_on is not None:
        out.append(Deadline(c.suspension_stop_on, "suspension_stop", c.id))
    for claim in c.claims.values():
        if claim.decided is None:
            out.append(Deadline(claim.outage.breach_date + timedelta(days=window_days + 1), "sla_window_end",
                                c.id, str(claim.claim_id)))
    if c.state in ENDED and c.stored_data_deleted_on is None and c.retention_until is not None:
        out.append(Deadline(c.retention_until, "stored_data_deletion", c.id))
    erase_on = c.contractor_data_erasure_on(policy)  # the aggregate's view of spec 10
    if c.state in ENDED and not c.data_deleted and erase_on is not None:
        out.append(Deadline(erase_on, "contractor_data_erasure", c.id))
    return out


class ScanDeadlines:
    """``deadlines_until`` by loading every aggregate; ``wait_for`` is immediate."""

    def __init__(self, app: ContractsApplication) -> None:
        self.app = app

    def wait_for(self, position: int, timeout: float = 5.0) -> bool:
        return True

    def all(self) -> list[Deadline]:
        app, policy = self.app, self.app.policy
        contracts: list[Contract] = [app.repository.get(i) for i in app.iter_aggregate_ids("Contract.Opened")]
        out: list[Deadline] = []
        for c in contracts:
            out.extend(contract_deadlines(c, policy.sla_claim_window_days, policy.suspension_notice_after_days,
                                          policy))
        for i in app.iter_aggregate_ids("DiscontinuationAnnounced"):
            item = app.repository.get(i)
            assert isinstance(item, ServiceDiscontinuation)
            if item.completed:
                continue
            out.append(Deadline(item.discontinue_on, "discontinuation", item.id, item.service))
        for i in app.iter_aggregate_ids("TermsChangeAnnounced"):
            change = app.repository.get(i)
            assert isinstance(change, TermsChange)
            if not change.in_effect:
                out.append(Deadline(change.effective_on, "terms_change_effective", change.id, change.terms_version))
        return sorted(out, key=_order)

    def deadlines_until(self, until: date, limit: int | None = None,
                        after: Deadline | None = None) -> list[Deadline]:
        due = [d for d in self.all() if d.due_on <= until and (after is None or _order(d) > _order(after))]
        return due if limit is None else due[:limit]

    def deadlines_on(self, day: date, kind: str, limit: int) -> list[Deadline]:
        return [d for d in self.all() if d.due_on == day and d.kind == kind][:limit]


def _order(d: Deadline) -> tuple[date, int, str, str]:
    return d.due_on, ORDER[d.kind], str(d.aggregate_id), d.ref
