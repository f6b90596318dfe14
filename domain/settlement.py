"""Settlement of money as it arrives (rule book section 7, Art. 9.3 and 9.5): bank transfers
(振込) received for a customer, their allocation (消込) to the customer's open invoices, the
transfer-fee shortfall written off by rule, the excess kept as the customer's credit balance,
and reversals. Nothing is edited: every step is an event.

* ``allocate`` is the allocation rule, a pure function: oldest invoice first (due date, then
  issue date), or the invoices the payer named in the order named; principal only (late interest
  becomes a claim once it is billed, and is then an open invoice like any other, rule book 6);
  a shortfall of at most ``transfer_fee_tolerance`` yen on the last invoice it reaches is written
  off; what is left over is credit.
* ``Transfer`` is one received transfer (its own aggregate: listed, fetched and reversed by id).
* ``CustomerAccount`` is the customer (the debtor of every transfer): the contracts it holds and
  its credit balance. Every allocation changes it, so two transfers for one customer never
  allocate the same yen twice (the second one's save conflicts and is retried on fresh state).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.calendar import jst_date, require_aware
from domain.errors import InvalidInput, RuleViolation
from domain.policy import Policy
from domain.retention import ERASED_MARK

TRANSFER_NAMESPACE = uuid.UUID("2f7d3a51-8c1e-4b6a-9e0d-5a4c3b2e1f90")
ACCOUNT_NAMESPACE = uuid.UUID("7a1e4c2b-3d5f-4e6a-8b9c-0d1e2f3a4b5c")

RULE_OLDEST_FIRST = "rule book 7: oldest open invoice first, principal before interest"
RULE_NAMED = "rule book 7: the invoices the payer named"
RULE_FEE_TOLERANCE = "rule book 7: transfer fee shortfall within transfer_fee_tolerance"
RULE_CREDIT = "rule book 7: excess kept as credit balance"
RULE_CREDIT_APPLIED = "rule book 7: credit balance applied to an open invoice"
RULE_UNCOLLECTIBLE = "rule book 7: uncollectible debt written off by an operator"

MAX_YEN = 10**12

BEFORE_DUE, AFTER_DUE = "before_due", "after_due"
REMINDER_STAGES = (BEFORE_DUE, AFTER_DUE)
"""The two payment reminders of an unpaid invoice (rule book 7: dunning)."""


def payment_reminder_on(due_on: date, stage: str, policy: Policy) -> date | None:
    """rule book 7 payment reminders: a reminder fact is recorded POLICY
    ``payment_reminder_days_before`` days before the due date (``before_due``) and
    ``payment_reminder_days_after`` days after it (``after_due``) while the invoice is unpaid;
    0 turns that reminder off (None). Example: due 2026-05-31 with 7 and 7 -> 2026-05-24 and
    2026-06-07 (the overdue mark is 2026-06-01, the suspension notice 2026-06-14)."""
    if stage == BEFORE_DUE:
        days = -policy.payment_reminder_days_before if policy.payment_reminder_days_before > 0 else None
    elif stage == AFTER_DUE:
        days = policy.payment_reminder_days_after if policy.payment_reminder_days_after > 0 else None
    else:
        raise InvalidInput("rule book 7", f"stage must be one of {', '.join(REMINDER_STAGES)}", "stage")
    return None if days is None else due_on + timedelta(days=days)


def require_yen(value: int, field: str, article: str = "Art. 9.3") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_YEN:
        raise InvalidInput(article, f"{field} must be a whole number of yen from 1 to 10^12", field)


@dataclass(frozen=True, order=True)
class OpenInvoice:
    """An invoice with unpaid principal, as the allocation sees it (sorted oldest first)."""

    due_on: date
    issued_on: date
    invoice_id: uuid.UUID
    contract_id: uuid.UUID
    outstanding: int


@dataclass(frozen=True)
class Allocation:
    contract_id: uuid.UUID
    invoice_id: uuid.UUID
    amount: int
    rule: str

    def to_dict(self) -> dict[str, Any]:
        return {"contract_id": str(self.contract_id), "invoice_id": str(self.invoice_id), "amount": self.amount,
                "rule": self.rule}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Allocation:
        return cls(uuid.UUID(data["contract_id"]), uuid.UUID(data["invoice_id"]), int(data["amount"]),
                   str(data["rule"]))


@dataclass(frozen=True)
class AllocationPlan:
    """Where one sum of money goes: to invoices, written off (the fee shortfall), and to credit."""

    allocations: tuple[Allocation, ...]
    written_off: tuple[Allocation, ...]
    credit: int

    @property
    def allocated(self) -> int:
        return sum(a.amount for a in self.allocations)


def allocate(amount: int, open_invoices: Sequence[OpenInvoice], named: Sequence[uuid.UUID] = (),
             tolerance: int = 0, rule: str | None = None) -> AllocationPlan:
    """Rule book section 7. ``named``: the invoices the payer named (only those, in that order);
    otherwise every open invoice, oldest first. ``tolerance``: POLICY ``transfer_fee_tolerance``.

    Example: 48,400 yen for two invoices of 24,200 pays both; 23,760 yen (24,200 less a 440 yen
    fee) with a tolerance of 440 pays 23,760 and writes 440 off; 30,000 for one of 24,200 leaves
    5,800 credit."""
    by_id = {i.invoice_id: i for i in open_invoices if i.outstanding > 0}
    if named:
        order = [by_id[i] for i in dict.fromkeys(named) if i in by_id]
        rule = rule or RULE_NAMED
    else:
        order = sorted(by_id.values())
        rule = rule or RULE_OLDEST_FIRST
    remaining, allocations, written_off = amount, [], []
    for invoice in order:
        if remaining <= 0:
            break
        paid = min(remaining, invoice.outstanding)
        allocations.append(Allocation(invoice.contract_id, invoice.invoice_id, paid, rule))
        remaining -= paid
        short = invoice.outstanding - paid
        if 0 < short <= tolerance:
            written_off.append(Allocation(invoice.contract_id, invoice.invoice_id, short, RULE_FEE_TOLERANCE))
    return AllocationPlan(tuple(allocations), tuple(written_off), remaining)


def reference_digest(bank_reference: str) -> str:
    return hashlib.sha256(bank_reference.strip().encode("utf-8")).hexdigest()


class Transfer(Aggregate):
    """One bank transfer received (振込入金). ``payer_name`` and ``bank_reference`` are personal
    data (often the remitter's name): sealed when stored, redacted for auditors. The id is
    derived from the customer and the bank reference, so the same transfer reported twice is
    refused (idempotent per customer, rule book 7)."""

    @staticmethod
    def create_id(customer_number: str | None, bank_reference: str) -> uuid.UUID:
        return uuid.uuid5(TRANSFER_NAMESPACE, f"{customer_number or ''}\x1f{reference_digest(bank_reference)}")

    @event("Received")
    def __init__(self, customer_number: str | None, payer_name: str, bank_reference: str, amount: int,
                 value_date: date, named_invoices: list[uuid.UUID], received_at: datetime) -> None:
        self.customer_number = customer_number
        self.payer_name = payer_name
        self.bank_reference = bank_reference
        self.amount = amount
        self.value_date = value_date
        self.named_invoices = list(named_invoices)
        self.received_at = received_at
        self.status = "unapplied"
        self.allocations: list[Allocation] = []
        self.written_off: list[Allocation] = []
        self.credit = 0
        self.reversed_on: date | None = None
        self.reversal_reason: str | None = None
        self.payer_erased_on: date | None = None

    @classmethod
    def receive(cls, customer_number: str | None, payer_name: str, bank_reference: str, amount: int,
                value_date: date, named_invoices: Sequence[uuid.UUID], at: datetime) -> Transfer:
        require_aware(at)
        require_yen(amount, "amount")
        if not bank_reference or not bank_reference.strip() or len(bank_reference) > 64:
            raise InvalidInput("Art. 9.3", "bank_reference is required (at most 64 characters)", "bank_reference")
        if len(payer_name) > 140:
            raise InvalidInput("Art. 9.3", "payer_name has at most 140 characters", "payer_name")
        if value_date > jst_date(at):
            raise InvalidInput("Art. 9.3", "value_date lies in the future", "value_date")
        if named_invoices and customer_number is None:
            raise InvalidInput("Art. 9.3", "naming invoices needs the customer_number", "invoice_ids")
        return cls(customer_number=customer_number, payer_name=payer_name, bank_reference=bank_reference,
                   amount=amount, value_date=value_date, named_invoices=list(named_invoices), received_at=at)

    def apply_for(self, customer_number: str, plan: AllocationPlan, at: datetime) -> None:
        """Record where the money went (an unmatched transfer gets its customer here)."""
        if self.status != "unapplied":
            raise RuleViolation("rule book 7", f"the transfer is {self.status}, not unapplied")
        if self.customer_number is not None and customer_number != self.customer_number:
            raise RuleViolation("rule book 7", "the transfer belongs to another customer")
        if plan.allocated + plan.credit != self.amount:
            raise InvalidInput("rule book 7", "the allocation does not add up to the transfer", "amount")
        self._applied(customer_number=customer_number, allocations=[a.to_dict() for a in plan.allocations],
                      written_off=[a.to_dict() for a in plan.written_off], credit=plan.credit, at=at)

    @event("Applied")
    def _applied(self, customer_number: str, allocations: list[dict[str, Any]], written_off: list[dict[str, Any]],
                 credit: int, at: datetime) -> None:
        self.customer_number = customer_number
        self.allocations = [Allocation.from_dict(a) for a in allocations]
        self.written_off = [Allocation.from_dict(a) for a in written_off]
        self.credit = credit
        self.status = "applied"

    def reverse(self, reason: str, on: date) -> None:
        """A bounced or mistaken transfer (rule book 7): undone by a new fact, never deleted."""
        if self.status == "reversed":
            raise RuleViolation("rule book 7", "the transfer is already reversed")
        if not reason or not reason.strip() or len(reason) > 500:
            raise InvalidInput("rule book 7", "reason is required (at most 500 characters)", "reason")
        if on < self.value_date:
            raise InvalidInput("rule book 7", "a transfer cannot be reversed before its value date", "reversed_on")
        self._reversed(reason=reason, reversed_on=on)

    @event("Reversed")
    def _reversed(self, reason: str, reversed_on: date) -> None:
        self.status, self.reversed_on, self.reversal_reason = "reversed", reversed_on, reason

    def erase_payer_data(self, on: date, reason: str) -> None:
        """Rule book 10: the payer name and bank reference are the customer's personal data, kept as
        long as the customer's contractor data: erased (crypto-shredding, the transfer's key is
        destroyed with this event) once every contract of the customer had its contractor data
        erased (``payer_data_erasable``). Amounts, dates and allocations stay."""
        if self.payer_erased_on is not None:
            raise RuleViolation("rule book 10", f"the payer data was already erased on {self.payer_erased_on}")
        if on < self.value_date:
            raise InvalidInput("rule book 10", "erased_on lies before the transfer's value date", "erased_on")
        self._payer_data_erased(erased_on=on, reason=reason)

    @event("PayerDataErased")
    def _payer_data_erased(self, erased_on: date, reason: str) -> None:
        self.payer_erased_on = erased_on
        self.payer_name = self.bank_reference = ERASED_MARK


def payer_data_erasable(contracts_erased: Sequence[bool]) -> bool:
    """Spec 10 (rule book 10, payer names on payments are personal data): a customer's transfers
    keep their payer name and bank reference while any contract of the customer keeps its
    contractor data; once the last one is erased (``ContractorDataErased``), they go too."""
    return bool(contracts_erased) and all(contracts_erased)


@dataclass(frozen=True)
class CreditUse:
    """Credit balance applied to an invoice (kept so a reversal can unwind it, newest first)."""

    source: uuid.UUID  # the transfer whose excess it was, or the credit note (rule book 6.1)
    contract_id: uuid.UUID
    invoice_id: uuid.UUID
    amount: int


class CustomerAccount(Aggregate):
    """One customer (契約者, by customer number): its contracts and its credit balance."""

    @staticmethod
    def create_id(customer_number: str) -> uuid.UUID:
        return uuid.uuid5(ACCOUNT_NAMESPACE, customer_number)

    @event("Opened")
    def __init__(self, customer_number: str) -> None:
        self.customer_number = customer_number
        self.contract_ids: list[uuid.UUID] = []
        self.credits: dict[str, int] = {}  # source id (text): a transfer's excess or a credit note's -> unused
        self.uses: list[CreditUse] = []
        self.refunded = 0
        self.transfer_ids: list[uuid.UUID] = []  # every transfer applied for the customer (spec 10 erasure)
        self.credit_cleared_on: date | None = None  # the day the credit balance last went back to 0 (rule book 10)
        self.refunded_from: dict[str, int] = {}  # source id (text) -> credit of it refunded (a reversal takes it back)

    @property
    def credit_balance(self) -> int:
        """What the provider owes the customer on the account (rule book 7). Negative: the customer
        owes it (a reversed transfer whose credit had been refunded; see ``reverse_transfer``)."""
        return sum(self.credits.values())

    def register(self, contract_id: uuid.UUID) -> None:
        if contract_id not in self.contract_ids:
            self._registered(contract_id=contract_id)

    @event("ContractRegistered")
    def _registered(self, contract_id: uuid.UUID) -> None:
        self.contract_ids.append(contract_id)

    def record_transfer(self, transfer_id: uuid.UUID, allocated: int, credit: int) -> None:
        """Every applied transfer passes here, so concurrent allocations for the customer conflict."""
        self._transfer_applied(transfer_id=transfer_id, allocated=allocated, credit=credit)

    @event("TransferApplied")
    def _transfer_applied(self, transfer_id: uuid.UUID, allocated: int, credit: int) -> None:
        if transfer_id not in self.transfer_ids:
            self.transfer_ids.append(transfer_id)
        if credit:
            self.credits[str(transfer_id)] = self.credits.get(str(transfer_id), 0) + credit

    def plan_credit(self, open_invoices: Sequence[OpenInvoice]) -> list[CreditUse]:
        """Credit applied to open invoices oldest first, oldest credit first; never more than the net
        balance (a negative entry, money the customer owes back, is netted first)."""
        uses: list[CreditUse] = []
        pools: list[list[Any]] = [[uuid.UUID(source), left] for source, left in self.credits.items() if left > 0]
        available = max(self.credit_balance, 0)
        for invoice in sorted(i for i in open_invoices if i.outstanding > 0):
            need = min(invoice.outstanding, available)
            available -= need
            for pool in pools:
                if need <= 0:
                    break
                take = min(need, pool[1])
                if take > 0:
                    uses.append(CreditUse(pool[0], invoice.contract_id, invoice.invoice_id, take))
                    pool[1] -= take
                    need -= take
        return uses

    def apply_credit(self, uses: Sequence[CreditUse], on: date) -> None:
        for use in uses:
            if use.amount <= 0 or self.credits.get(str(use.source), 0) < use.amount:
                raise RuleViolation("rule book 7", "not that much credit balance")
            self._credit_applied(source=use.source, contract_id=use.contract_id, invoice_id=use.invoice_id,
                                 amount=use.amount, applied_on=on)

    @event("CreditApplied")
    def _credit_applied(self, source: uuid.UUID, contract_id: uuid.UUID, invoice_id: uuid.UUID, amount: int,
                        applied_on: date) -> None:
        self.credits[str(source)] -= amount
        self.uses.append(CreditUse(source, contract_id, invoice_id, amount))
        self._cleared(applied_on)

    def _cleared(self, on: date) -> None:
        """Rule book 10: contractor data kept while the credit is owed is kept through this day."""
        if self.credit_balance == 0:
            self.credit_cleared_on = on if self.credit_cleared_on is None else max(on, self.credit_cleared_on)

    def credit_from_note(self, note_id: uuid.UUID, contract_id: uuid.UUID, invoice_id: uuid.UUID, amount: int,
                         on: date) -> None:
        """Rule book 6.1 and 7: a credit note returned more of an invoice than was still owed on it; the
        part already paid is the customer's credit balance, like an overpayment (kept under the note's id)."""
        require_yen(amount, "amount", "rule book 7")
        if str(note_id) in self.credits:
            raise RuleViolation("rule book 7", "this credit note is already in the credit balance")
        self._note_credited(note_id=note_id, contract_id=contract_id, invoice_id=invoice_id, amount=amount,
                            credited_on=on)

    @event("CreditNoteCredited")
    def _note_credited(self, note_id: uuid.UUID, contract_id: uuid.UUID, invoice_id: uuid.UUID, amount: int,
                       credited_on: date) -> None:
        self.credits[str(note_id)] = amount

    def refund_credit(self, amount: int, reason: str, on: date) -> None:
        """An operator returns credit balance to the customer (rule book 6: an overpayment is the
        one refund besides SLA refunds)."""
        require_yen(amount, "amount", "rule book 7")
        if amount > self.credit_balance:
            raise RuleViolation("rule book 7", "the refund exceeds the credit balance")
        if not reason or not reason.strip() or len(reason) > 500:
            raise InvalidInput("rule book 7", "reason is required (at most 500 characters)", "reason")
        taken: dict[str, int] = {}
        need = amount
        for source, left in self.credits.items():
            take = min(need, left)
            if take > 0:
                taken[source] = take
                need -= take
        self._credit_refunded(amount=amount, sources=taken, reason=reason, refunded_on=on)

    @event("CreditRefunded")
    def _credit_refunded(self, amount: int, sources: dict[str, int], reason: str, refunded_on: date) -> None:
        for source, take in sources.items():
            self.credits[source] -= take
            self.refunded_from[source] = self.refunded_from.get(source, 0) + take
        self.refunded += amount
        self._cleared(refunded_on)

    def reverse_transfer(self, transfer_id: uuid.UUID, on: date) -> None:
        """Rule book 7: the money never came, so every yen of its excess is taken back: what is unused
        goes, what paid invoices is unwound on them (the caller reverses those payments), and what an
        operator already refunded becomes a debt of the customer on the account (the credit balance
        goes negative by that much: a receivable again, netted against the customer's next credit;
        docs/decisions.md). Nothing is refused: a bounced transfer is a fact of the bank."""
        unspent = self.credits.get(str(transfer_id), 0)
        undone = [u for u in self.uses if u.source == transfer_id]
        refunded = self.refunded_from.get(str(transfer_id), 0)
        self._transfer_reversed(transfer_id=transfer_id, unspent_credit=unspent,
                                credit_uses_undone=[{"contract_id": str(u.contract_id),
                                                     "invoice_id": str(u.invoice_id), "amount": u.amount}
                                                    for u in undone], reversed_on=on, refund_taken_back=refunded)

    @event("TransferReversed")
    def _transfer_reversed(self, transfer_id: uuid.UUID, unspent_credit: int, credit_uses_undone: list[dict[str, Any]],
                           reversed_on: date, refund_taken_back: int = 0) -> None:
        """``refund_taken_back``: 0 in events recorded before refunds were taken back."""
        self.credits.pop(str(transfer_id), None)
        self.uses = [u for u in self.uses if u.source != transfer_id]
        if refund_taken_back:
            self.credits[str(transfer_id)] = -refund_taken_back
            self.refunded_from.pop(str(transfer_id), None)
        self._cleared(reversed_on)
