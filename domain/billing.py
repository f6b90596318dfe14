"""Billing as a pure fold over contract events (spec 6, Art. 9).

The same ``Ledger`` is folded inside the Contract aggregate (to validate payments and
overdue) and by the billing projection, so the two can never disagree.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from domain.calendar import Month
from domain.catalog import Campaign, PricePlan
from domain.folds import Dispatch, Handler
from domain.money import floor_yen, tax_on

INVOICE_NAMESPACE = uuid.UUID("6f1c5a52-51d6-4b8e-9a43-0f2f3c1e7a10")


def invoice_id(contract_id: uuid.UUID, key: str) -> uuid.UUID:
    """Deterministic invoice id from (contract, period key) so rebuilds give the same ids."""
    return uuid.uuid5(INVOICE_NAMESPACE, f"{contract_id}:{key}")


def due_date(issue_month: Month, months_after: int) -> date:
    """POLICY ``due``: last day of the month ``months_after`` months after the invoice's month."""
    return issue_month.plus(months_after).last_day


@dataclass(frozen=True)
class InvoiceLine:
    kind: str  # base_fee | campaign_fee | initial_fee | upgrade_difference | sla_credit | tax
    rule: str  # the article / spec section the line comes from
    description: str
    amount: int
    quantity: int = 1
    unit_price: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rule": self.rule,
            "description": self.description,
            "quantity": self.quantity,
            "unit_price": self.unit_price,
            "amount": self.amount,
        }


@dataclass(frozen=True)
class Payment:
    paid_on: date
    amount: int
    transfer_id: uuid.UUID | None = None  # the bank transfer it came from (rule book 7)
    source: str = "transfer"  # transfer | credit_balance (an earlier overpayment) | reversal (negative)


@dataclass(frozen=True)
class WriteOff:
    """Principal no longer claimed (rule book 7): a transfer-fee shortfall within the tolerance, or
    an uncollectible debt an operator wrote off. It stays on the record and on the invoice."""

    written_off_on: date
    amount: int  # negative: a write-off undone (its transfer was reversed)
    rule: str = "rule book 7"
    transfer_id: uuid.UUID | None = None  # the transfer whose fee shortfall it was (undone with it)


@dataclass
class Invoice:
    invoice_id: uuid.UUID
    contract_id: uuid.UUID
    kind: str  # monthly | annual | upgrade
    period: str  # "2026-05" or "2026-05..2027-04"
    month: Month  # the month the invoice belongs to (issued on its 1st)
    issued_on: date
    due_on: date
    lines: list[InvoiceLine]
    payments: list[Payment] = field(default_factory=list)
    refunded: int = 0
    write_offs: list[WriteOff] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def paid(self) -> int:
        return sum(p.amount for p in self.payments)

    @property
    def written_off(self) -> int:
        return sum(w.amount for w in self.write_offs)

    @property
    def outstanding(self) -> int:
        return self.total - self.paid - self.written_off

    def _reductions(self) -> list[tuple[date, int]]:
        """What reduced the unpaid principal, and from which day: payments and write-offs."""
        return [(p.paid_on, p.amount) for p in self.payments] + [(w.written_off_on, w.amount) for w in self.write_offs]

    def outstanding_on(self, day: date) -> int:
        """Unpaid principal at the end of ``day``."""
        return self.total - sum(amount for on, amount in self._reductions() if on <= day)

    def late_interest(self, as_of: date, annual_rate: Decimal) -> int:
        """Art. 9.4: rate x unpaid x days / 365 for each day from the day after the due date
        to the day before payment (or before ``as_of``); partial payments reduce the unpaid
        amount from their day; one floor per invoice; 365-day year even in leap years."""
        start = self.due_on + timedelta(days=1)
        if as_of <= start:
            return 0
        weighted = 0  # sum of unpaid-yen x days
        reductions = sorted(self._reductions())
        unpaid = self.total - sum(amount for on, amount in reductions if on < start)
        cursor = start
        for paid_on, amount in reductions:
            if paid_on < start:
                continue
            stop = min(paid_on, as_of)
            if stop > cursor:
                weighted += unpaid * (stop - cursor).days
                cursor = stop
            if paid_on >= as_of:
                break
            unpaid -= amount
        if as_of > cursor and unpaid > 0:
            weighted += unpaid * (as_of - cursor).days
        return floor_yen(annual_rate * weighted / 365)

    def to_dict(self) -> dict[str, Any]:
        return {
            "invoice_id": str(self.invoice_id),
            "contract_id": str(self.contract_id),
            "kind": self.kind,
            "period": self.period,
            "month": str(self.month),
            "issued_on": self.issued_on.isoformat(),
            "due_on": self.due_on.isoformat(),
            "lines": [line.to_dict() for line in self.lines],
            "total": self.total,
            "paid": self.paid,
            "outstanding": self.outstanding,
            "refunded": self.refunded,
            "payments": [self._payment_dict(p) for p in self.payments],
            "written_off": self.written_off,
            "write_offs": [{"written_off_on": w.written_off_on.isoformat(), "amount": w.amount}
                           for w in self.write_offs],
        }

    @staticmethod
    def _payment_dict(p: Payment) -> dict[str, Any]:
        data: dict[str, Any] = {"paid_on": p.paid_on.isoformat(), "amount": p.amount}
        if p.transfer_id is not None:
            data["transfer_id"] = str(p.transfer_id)
        if p.source != "transfer":
            data["source"] = p.source
        return data


@dataclass
class Ledger:
    """Invoices of one contract, built only from its events."""

    contract_id: uuid.UUID
    cycle: str | None = None  # "monthly" | "annual"
    plan: PricePlan | None = None
    users: int = 0
    campaign: Campaign | None = None
    first_month: Month | None = None
    term_start: Month | None = None
    term_end: Month | None = None
    initial_fee_charged: bool = False
    invoices: dict[uuid.UUID, Invoice] = field(default_factory=dict)
    pending_credits: list[tuple[str, int]] = field(default_factory=list)  # (claim id, amount)
    monthly_fees: dict[Month, int] = field(default_factory=dict)  # fee in force per service month

    # -- folding -----------------------------------------------------------------------------
    def apply(self, event: Any) -> None:
        """Fold one event of the Contract aggregate (dispatch on its class: ``LEDGER_FOLD``)."""
        LEDGER_FOLD(self, event)

    def _on_Applied(self, e: Any) -> None:
        self.cycle, self.plan, self.users = e.cycle.value, e.plan, e.users
        self.campaign = e.plan.campaign

    def _on_Approved(self, e: Any) -> None:
        self.first_month = e.first_month

    def _on_ServicePeriodStarted(self, e: Any) -> None:
        self._issue_period(e.month, e.period_end, e.tax_rate, e.due_on)

    def _on_Renewed(self, e: Any) -> None:
        self._issue_period(e.month, e.period_end, e.tax_rate, e.due_on)

    def _on_GradeChanged(self, e: Any) -> None:
        self.plan, self.users, self.campaign = e.plan, e.users, None
        self._after_change(e)

    def _on_UsersChanged(self, e: Any) -> None:
        self.users = e.users
        self._after_change(e)

    def _on_PaymentReceived(self, e: Any) -> None:
        self.invoices[e.invoice_id].payments.append(
            Payment(e.paid_on, e.amount, getattr(e, "transfer_id", None), getattr(e, "source", "transfer")))

    def _on_PaymentReversed(self, e: Any) -> None:
        """Rule book 7: a reversal is a negative payment ON THE ORIGINAL DAY, so from that day on
        the invoice is as unpaid as if the money never came (Art. 9.4 interest follows); nothing
        recorded is removed."""
        self.invoices[e.invoice_id].payments.append(Payment(e.paid_on, -e.amount, e.transfer_id, "reversal"))

    def _on_DebtWrittenOff(self, e: Any) -> None:
        self.invoices[e.invoice_id].write_offs.append(
            WriteOff(e.written_off_on, e.amount, e.rule, getattr(e, "transfer_id", None)))

    def _on_WriteOffReversed(self, e: Any) -> None:
        """The fee shortfall written off with a transfer that was reversed is claimed again."""
        self.invoices[e.invoice_id].write_offs.append(
            WriteOff(e.written_off_on, -e.amount, "rule book 7", e.transfer_id))

    def _on_CreditGranted(self, e: Any) -> None:
        if e.remedy == "fee_reduction":
            self.pending_credits.append((str(e.claim_id), e.amount))
        elif e.remedy == "refund":
            target = self.invoice_for_month(e.breach_month)
            if target is not None:
                target.refunded += e.amount

    # -- rules -------------------------------------------------------------------------------
    def _base_lines(self, month: Month, period_end: Month) -> list[InvoiceLine]:
        assert self.plan is not None and self.first_month is not None
        plan, users = self.plan, self.users
        index = month.minus(self.first_month)
        camp = self.campaign
        if self.cycle == "monthly":
            if camp is not None and index < camp.months:
                price, kind, rule = camp.monthly_price, "campaign_fee", "Art. 9.2 campaign price"
            else:
                price, kind, rule = plan.monthly_price, "base_fee", "Art. 9.1 base fee"
            desc = f"{plan.service} {plan.grade} {month} x {users} users"
        else:
            if camp is not None and camp.annual_price is not None and index < camp.months:
                price, kind, rule = camp.annual_price, "campaign_fee", "Art. 9.2 campaign price"
            else:
                price, kind, rule = plan.annual_price, "base_fee", "Art. 9.1 base fee"
            desc = f"{plan.service} {plan.grade} {month}..{period_end} x {users} users"
        return [InvoiceLine(kind, rule, desc, price * users, users, price)]

    def _issue_period(self, month: Month, period_end: Month, tax_rate: Decimal, due_on: date) -> None:
        assert self.plan is not None
        lines = self._base_lines(month, period_end)
        base = lines[0].amount
        if self.cycle == "annual":
            self.term_start, self.term_end = month, period_end
            per_month = base // 12
            m = month
            while m <= period_end:
                self.monthly_fees[m] = per_month
                m = m.plus(1)
        else:
            self.monthly_fees[month] = base
        if not self.initial_fee_charged:
            self.initial_fee_charged = True
            if self.plan.initial_fee:
                lines.append(InvoiceLine("initial_fee", "Art. 9.1 initial fee", "one-time initial fee",
                                         self.plan.initial_fee, 1, self.plan.initial_fee))
        lines.extend(self._take_credits(sum(line.amount for line in lines)))
        key = str(month) if self.cycle == "monthly" else f"{month}..{period_end}"
        self._add_invoice(self.cycle or "monthly", key, month, lines, tax_rate, due_on)

    def _take_credits(self, subtotal: int) -> list[InvoiceLine]:
        """SLA fee reductions on the next invoice (Art. 20.1); what exceeds it carries over."""
        lines, remaining, carried = [], subtotal, []
        for claim, amount in self.pending_credits:
            used = min(amount, remaining)
            if used:
                lines.append(InvoiceLine("sla_credit", "Art. 20.1 SLA fee reduction",
                                         f"SLA credit for claim {claim}", -used))
                remaining -= used
            if amount > used:
                carried.append((claim, amount - used))
        self.pending_credits = carried
        return lines

    def _after_change(self, e: Any) -> None:
        if self.cycle == "annual" and e.upgrade_charge > 0:
            grade = self.plan.grade if self.plan is not None else "?"
            lines = [InvoiceLine(
                "upgrade_difference", "Art. 10.1.2 upgrade difference",
                f"upgrade to {grade} x {self.users} users for {e.remaining_months} months",
                e.upgrade_charge)]
            self._add_invoice("upgrade", f"upgrade:{e.change_id}", e.effective_month, lines, e.tax_rate, e.due_on)
        if self.cycle == "annual" and self.plan is not None and self.term_end is not None:
            per_month = self.plan.annual_price * self.users // 12
            m = e.effective_month
            while m <= self.term_end:
                self.monthly_fees[m] = per_month
                m = m.plus(1)

    def _add_invoice(self, kind: str, key: str, month: Month, lines: list[InvoiceLine],
                     tax_rate: Decimal, due_on: date) -> None:
        subtotal = sum(line.amount for line in lines)
        tax = tax_on(subtotal, tax_rate)
        lines = [*lines, InvoiceLine("tax", "spec 1 consumption tax",
                                     f"consumption tax {tax_rate * 100:.0f}% on {subtotal}", tax)]
        iid = invoice_id(self.contract_id, key)
        self.invoices[iid] = Invoice(iid, self.contract_id, kind, key.removeprefix("upgrade:"), month,
                                     month.first_day, due_on, lines)

    # -- queries -----------------------------------------------------------------------------
    def monthly_fee(self, month: Month) -> int | None:
        """Fee in force for a service month (annual: annual total / 12, floored); None if unbilled."""
        return self.monthly_fees.get(month)

    def invoice_for_month(self, month: Month) -> Invoice | None:
        for inv in self.invoices.values():
            if inv.kind != "upgrade" and inv.month <= month and (
                inv.period == str(month) or (".." in inv.period and Month.parse(inv.period[-7:]) >= month)
            ):
                return inv
        return None

    def outstanding(self) -> int:
        return sum(i.outstanding for i in self.invoices.values())

    def late_interest(self, as_of: date, rate: Decimal) -> int:
        return sum(i.late_interest(as_of, rate) for i in self.invoices.values())


def _ledger_handlers() -> tuple[dict[type, Handler[Ledger]], tuple[type, ...]]:
    from domain.contract import ContractEvents as c  # noqa: N813 - the aggregate imports this module

    return ({
        c.Applied: Ledger._on_Applied,
        c.Approved: Ledger._on_Approved,
        c.ServicePeriodStarted: Ledger._on_ServicePeriodStarted,
        c.Renewed: Ledger._on_Renewed,
        c.GradeChanged: Ledger._on_GradeChanged,
        c.UsersChanged: Ledger._on_UsersChanged,
        c.PaymentReceived: Ledger._on_PaymentReceived,
        c.CreditGranted: Ledger._on_CreditGranted,
        c.PaymentReversed: Ledger._on_PaymentReversed,
        c.DebtWrittenOff: Ledger._on_DebtWrittenOff,
        c.WriteOffReversed: Ledger._on_WriteOffReversed,
    }, (c.Opened, c.TrialStarted, c.TrialExpired, c.Rejected, c.ChangeRequested, c.TerminationNoticed,
        c.PaymentOverdue, c.SuspensionNoticed, c.SuspensionLifted, c.Terminated, c.SlaBreachClaimed,
        c.CreditRejected, c.ContractorInfoChanged, c.DataDeleted, c.StoredDataDeleted, c.ContractorDataErased,
        c.PrivacyRequestAnswered, c.SuspensionStopMoved, c.PaymentReminded))


LEDGER_FOLD: Dispatch[Ledger] = Dispatch("billing Ledger", _ledger_handlers)
