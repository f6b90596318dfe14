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
from domain.invoicing import QUALIFIED_INVOICE, TAX_RATES, RateTotal, document_hash, rate_totals
from domain.money import floor_yen
from domain.retention import ERASED_MARK

_PREPARED = "_prepared_invoice"  # ``Ledger.prepare``: an instance attribute, never a field (not state)
INVOICE_NAMESPACE = uuid.UUID("6f1c5a52-51d6-4b8e-9a43-0f2f3c1e7a10")


def invoice_id(contract_id: uuid.UUID, key: str) -> uuid.UUID:
    """Deterministic invoice id from (contract, period key) so rebuilds give the same ids."""
    return uuid.uuid5(INVOICE_NAMESPACE, f"{contract_id}:{key}")


def due_date(issue_month: Month, months_after: int) -> date:
    """POLICY ``due``: last day of the month ``months_after`` months after the invoice's month."""
    return issue_month.plus(months_after).last_day


@dataclass(frozen=True)
class InvoiceLine:
    """One line: ``quantity x unit_price == amount``, or no unit price at all (tax, credits, interest).

    ``tax_rate`` is the consumption tax rate of a taxable line (Art. 57-4(1) item 3: reduced-rate
    items are marked by it); ``None`` for a line outside consumption tax (the tax lines
    themselves, late interest: damages, Art. 9.4). ``ref`` ties a line to what it settles (an
    SLA claim id, an original invoice id)."""

    kind: str  # base_fee | campaign_fee | initial_fee | upgrade_difference | sla_credit | late_interest | tax
    rule: str  # the article / spec section the line comes from
    description: str
    amount: int
    quantity: int | None = None
    unit_price: int | None = None
    tax_rate: Decimal | None = None
    ref: str | None = None

    def __post_init__(self) -> None:
        if self.unit_price is not None and (self.quantity or 0) * self.unit_price != self.amount:
            raise ValueError(f"rule book 6: {self.kind} line {self.quantity} x {self.unit_price} != {self.amount}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rule": self.rule,
            "description": self.description,
            "quantity": self.quantity,
            "unit_price": self.unit_price,
            "amount": self.amount,
            "tax_rate": None if self.tax_rate is None else str(self.tax_rate),
            "reduced_rate": self.tax_rate is not None and TAX_RATES.get(self.tax_rate) == "reduced",
            "ref": self.ref,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InvoiceLine:
        rate = d.get("tax_rate")
        # positional, in field order (kind, rule, description, amount, quantity, unit_price, tax_rate,
        # ref): a third cheaper than by keyword, and every folded invoice reads its lines here
        return cls(d["kind"], d["rule"], d["description"], int(d["amount"]), d.get("quantity"), d.get("unit_price"),
                   None if rate is None else Decimal(str(rate)), d.get("ref"))


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
    """An issued document of one contract: an invoice (適格請求書) or a credit note (適格返還請求書).

    Everything but ``payments``, ``write_offs``, ``refunded`` and ``status`` is as issued (the
    ``InvoiceIssued`` event's document) and never changes."""

    invoice_id: uuid.UUID
    contract_id: uuid.UUID
    kind: str  # monthly | annual | upgrade | interest | correction | credit_note | sla_refund
    period: str  # "2026-05" or "2026-05..2027-04"
    month: Month  # the month the invoice belongs to (issued on its 1st)
    issued_on: date
    due_on: date
    lines: list[InvoiceLine]
    payments: list[Payment] = field(default_factory=list)
    refunded: int = 0
    write_offs: list[WriteOff] = field(default_factory=list)
    number: str = ""
    document_type: str = "invoice"  # invoice | credit_note
    status: str = "issued"  # issued | void | corrected
    rate_totals: list[RateTotal] = field(default_factory=list)
    issuer: dict[str, str] | None = None
    recipient: str | None = None  # personal data: only on the write side, never in a read table
    document_hash: str = ""
    original: dict[str, str] | None = None  # the invoice a correction / credit note refers to
    reason: str | None = None  # of a correction, a credit note or a void
    interest_waived: int = 0  # Art. 9.4 interest waived by an operator (recorded with its reason)
    interest_billed: int = 0  # Art. 9.4 interest billed on a later invoice
    credited: int = 0  # credit notes (返還インボイス) against it that reduce what is owed

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def tax(self) -> int:
        return sum(r.tax for r in self.rate_totals)

    @property
    def owed(self) -> bool:
        """Whether the document is a claim on the customer (not a credit note, not void or corrected)."""
        return self.document_type == "invoice" and self.status == "issued"

    @property
    def paid(self) -> int:
        return sum(p.amount for p in self.payments)

    @property
    def written_off(self) -> int:
        return sum(w.amount for w in self.write_offs)

    @property
    def outstanding(self) -> int:
        """Unpaid principal: the total less credit notes, payments and write-offs (rule book 7)."""
        return max(0, self.total - self.credited - self.paid - self.written_off) if self.owed else 0

    @property
    def refund_due(self) -> int:
        """Paid beyond what a credit note left owed: money the customer is to get back (at most what
        was paid; what was written off is simply no longer claimed)."""
        if not self.owed:
            return 0
        return max(0, min(self.paid, self.paid + self.credited + self.written_off - self.total))

    def _reductions(self) -> list[tuple[date, int]]:
        """What reduced the unpaid principal, and from which day: payments and write-offs."""
        return [(p.paid_on, p.amount) for p in self.payments] + [(w.written_off_on, w.amount) for w in self.write_offs]

    def outstanding_on(self, day: date) -> int:
        """Unpaid principal at the end of ``day``."""
        if not self.owed:
            return 0
        return max(0, self.total - self.credited - sum(amount for on, amount in self._reductions() if on <= day))

    @property
    def settled_on(self) -> date | None:
        """The day the principal was settled (paid or written off, rule book 7) and stayed settled;
        None while anything is unpaid. A reversal is a negative payment on the original day, so a
        reversed and paid-again invoice is settled on the later payment's day."""
        if not self.owed or self.outstanding > 0 or not self.payments:
            return None
        days = sorted({on for on, _ in self._reductions()}, reverse=True)
        settled = days[0]
        for day in days[1:]:
            if self.outstanding_on(day) > 0:
                break
            settled = day
        return settled

    def open_interest(self, annual_rate: Decimal) -> int:
        """Art. 9.4, rule book 6: once the principal is settled, the interest accrued until then is a
        claim of its own; what is neither billed yet nor waived."""
        settled = self.settled_on
        if settled is None:
            return 0
        return max(0, self.late_interest(settled, annual_rate) - self.interest_billed - self.interest_waived)

    def late_interest(self, as_of: date, annual_rate: Decimal) -> int:
        """Art. 9.4: rate x unpaid x days / 365 for each day from the day after the due date
        to the day before payment (or before ``as_of``); partial payments and write-offs reduce the
        unpaid amount from their day (a reversal raises it again from the original day); one floor
        per invoice; 365-day year even in leap years.

        Interest accrues on the unpaid *principal*: late interest billed on this invoice (its
        ``late_interest`` lines) bears none (no compound interest), and payments settle the
        principal first (rule book 7); a credit note lowers the principal."""
        if not self.owed:
            return 0
        start = self.due_on + timedelta(days=1)
        if as_of <= start:
            return 0
        principal = self.total - self.credited - sum(x.amount for x in self.lines if x.kind == "late_interest")
        weighted = 0  # sum of unpaid-principal-yen x days
        reductions = sorted(self._reductions())
        paid = sum(amount for on, amount in reductions if on < start)
        cursor = start
        for paid_on, amount in reductions:
            if paid_on < start:
                continue
            stop = min(paid_on, as_of)
            if stop > cursor:
                weighted += max(0, principal - paid) * (stop - cursor).days
                cursor = stop
            if paid_on >= as_of:
                break
            paid += amount
        if as_of > cursor and principal > paid:
            weighted += (principal - paid) * (as_of - cursor).days
        return floor_yen(annual_rate * weighted / 365)

    def to_dict(self) -> dict[str, Any]:
        """Without the recipient (personal data: read tables never hold it; the API adds it)."""
        data = {
            "invoice_id": str(self.invoice_id),
            "contract_id": str(self.contract_id),
            "number": self.number,
            "document_type": self.document_type,
            "status": self.status,
            "kind": self.kind,
            "period": self.period,
            "month": str(self.month),
            "issued_on": self.issued_on.isoformat(),
            "due_on": self.due_on.isoformat(),
            "issuer": self.issuer,
            "lines": [line.to_dict() for line in self.lines],
            "rate_totals": [r.to_dict() for r in self.rate_totals],
            "tax": self.tax,
            "total": self.total,
            "paid": self.paid,
            "outstanding": self.outstanding,
            "refunded": self.refunded,
            "payments": [self._payment_dict(p) for p in self.payments],
            "written_off": self.written_off,
            "write_offs": [{"written_off_on": w.written_off_on.isoformat(), "amount": w.amount}
                           for w in self.write_offs],
            "original": self.original,
            "reason": self.reason,
            "interest_billed": self.interest_billed,
            "interest_waived": self.interest_waived,
            "credited": self.credited,
            "refund_due": self.refund_due,
            "document_hash": self.document_hash,
        }
        return data

    @staticmethod
    def _payment_dict(p: Payment) -> dict[str, Any]:
        data: dict[str, Any] = {"paid_on": p.paid_on.isoformat(), "amount": p.amount}
        if p.transfer_id is not None:
            data["transfer_id"] = str(p.transfer_id)
        if p.source != "transfer":
            data["source"] = p.source
        return data

    @classmethod
    def from_document(cls, document: dict[str, Any], recipient: str | None, digest: str) -> Invoice:
        """The invoice as issued, from the ``InvoiceIssued`` event's document."""
        return cls(
            invoice_id=uuid.UUID(document["invoice_id"]),
            contract_id=uuid.UUID(document["contract_id"]),
            kind=document["kind"],
            period=document["period"],
            month=Month.parse(document["month"]),
            issued_on=date.fromisoformat(document["issued_on"]),
            due_on=date.fromisoformat(document["due_on"]),
            lines=[InvoiceLine.from_dict(d) for d in document["lines"]],
            number=document["number"],
            document_type=document["document_type"],
            rate_totals=[RateTotal.from_dict(r) for r in document["rate_totals"]],
            issuer=document["issuer"],
            recipient=recipient,
            document_hash=digest,
            original=document.get("original"),
            reason=document.get("reason"),
        )


@dataclass(frozen=True)
class Draft:
    """What an invoice about to be issued holds, before its number and tax lines (see ``issue``)."""

    key: str  # the invoice id derives from (contract, key): stable across rebuilds
    kind: str
    period: str
    month: Month
    due_on: date
    lines: tuple[InvoiceLine, ...]
    document_type: str = "invoice"
    original: dict[str, str] | None = None
    reason: str | None = None


def issue(draft: Draft, contract_id: uuid.UUID, number: str, issued_on: date, issuer: dict[str, str] | None,
          recipient: str) -> tuple[dict[str, Any], str, Invoice]:
    """The issued document (Art. 57-4(1) items 1-6; for a credit note Art. 57-4(3)), its hash, and
    the invoice as issued.

    Tax is added per rate, one rounding down per rate per invoice (rule book 6.1). The document
    holds only JSON values, so its hash can be recomputed from the stored event alone. The invoice
    is built from the values the document was written from: equal to ``Invoice.from_document`` of
    the document (the ledger folds it as is when the aggregate issues it, ``Ledger.prepare``,
    instead of parsing back the document it has just built)."""
    totals = rate_totals((line.tax_rate, line.amount) for line in draft.lines)
    tax_lines = [InvoiceLine("tax", f"{QUALIFIED_INVOICE} item 5: consumption tax per rate",
                             f"consumption tax {r.rate * 100:.0f}% on {r.taxable}", r.tax) for r in totals]
    lines = [*draft.lines, *tax_lines]
    iid = invoice_id(contract_id, draft.key)
    document: dict[str, Any] = {
        "invoice_id": str(iid),
        "contract_id": str(contract_id),
        "number": number,
        "document_type": draft.document_type,
        "kind": draft.kind,
        "period": draft.period,
        "month": str(draft.month),
        "issued_on": issued_on.isoformat(),
        "due_on": draft.due_on.isoformat(),
        "issuer": issuer,
        "lines": [line.to_dict() for line in lines],
        "rate_totals": [r.to_dict() for r in totals],
        "total": sum(line.amount for line in lines),
        "currency": "JPY",
        "original": draft.original,
        "reason": draft.reason,
    }
    digest = document_hash({**document, "recipient": recipient})
    invoice = Invoice(iid, contract_id, draft.kind, draft.period, draft.month, issued_on, draft.due_on, list(lines),
                      number=number, document_type=draft.document_type, rate_totals=list(totals), issuer=issuer,
                      recipient=recipient, document_hash=digest, original=draft.original, reason=draft.reason)
    return document, digest, invoice


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
        self._begin_period(e.month, e.period_end)

    def _on_Renewed(self, e: Any) -> None:
        self._begin_period(e.month, e.period_end)

    def _on_GradeChanged(self, e: Any) -> None:
        self.plan, self.users, self.campaign = e.plan, e.users, None
        self._after_change(e)

    def _on_UsersChanged(self, e: Any) -> None:
        self.users = e.users
        self._after_change(e)

    def _on_ContractorDataErased(self, e: Any) -> None:
        """Art. 13: the keys sealing the recipients are destroyed; the live state reads as a replay
        does (``[erased]``), so a cached contract never shows a recipient its store can no longer read."""
        for invoice in self.invoices.values():
            if invoice.recipient is not None:
                invoice.recipient = ERASED_MARK

    _on_DataDeleted = _on_ContractorDataErased  # stores written before issue 15: it destroyed both keys

    def prepare(self, invoice: Invoice | None) -> None:
        """The invoice the next ``InvoiceIssued`` folded here carries, as ``issue`` built it
        with the event's document (None: forget it). Not state: it lasts until that fold, which
        takes it instead of parsing the document back (issue 21); every other fold (a replay, the
        projections) reads the document."""
        if invoice is None:
            self.__dict__.pop(_PREPARED, None)
        else:
            self.__dict__[_PREPARED] = invoice

    def _on_InvoiceIssued(self, e: Any) -> None:
        """Rule book 6.1: the invoice is read from its event, never recomputed (or is the one its
        document was just written from, ``prepare``: the same values, the hash of the same document)."""
        prepared: Invoice | None = self.__dict__.pop(_PREPARED, None)
        if prepared is not None and prepared.document_hash == e.document_hash:
            invoice = prepared
        else:
            invoice = Invoice.from_document(e.document, e.recipient, e.document_hash)
        self.invoices[invoice.invoice_id] = invoice
        if invoice.kind in ("monthly", "annual"):
            self.initial_fee_charged = True  # Art. 9.1: the initial fee is on the first invoice only
        original = self.invoices.get(uuid.UUID(invoice.original["invoice_id"])) if invoice.original else None
        if original is not None and invoice.kind == "correction":
            original.status = "corrected"  # rule book 6.1: replaced by a corrected invoice, never edited
            self._release(original)
        elif original is not None and invoice.kind == "credit_note":
            original.credited += invoice.total
        elif original is not None and invoice.kind == "sla_refund":
            original.refunded += invoice.total
        used: dict[str, int] = {}
        for line in invoice.lines:
            if line.kind in ("sla_credit", "sla_refund") and line.ref is not None:
                used[line.ref] = used.get(line.ref, 0) + abs(line.amount)
            elif line.kind == "late_interest" and line.ref is not None:
                source = self.invoices.get(uuid.UUID(line.ref))
                if source is not None:
                    source.interest_billed += line.amount
        if used:
            carried = []
            for claim, amount in self.pending_credits:
                take = min(amount, used.get(claim, 0))
                used[claim] = used.get(claim, 0) - take
                if amount > take:
                    carried.append((claim, amount - take))
            self.pending_credits = carried

    def _on_InvoiceVoided(self, e: Any) -> None:
        invoice = self.invoices[e.invoice_id]
        invoice.status, invoice.reason = "void", e.reason
        self._release(invoice)

    def _release(self, invoice: Invoice) -> None:
        """A voided or corrected invoice no longer bills what it billed by rule: its late interest
        is open again (Art. 9.4) and its SLA fee reductions wait for the next invoice again (rule
        book 8: a granted remedy always reaches the customer). A corrected invoice's lines are the
        operator's; what they bill by rule is taken again when it is issued."""
        for line in invoice.lines:
            if line.kind == "late_interest" and line.ref is not None:
                source = self.invoices.get(uuid.UUID(line.ref))
                if source is not None:
                    source.interest_billed -= line.amount
            elif line.kind == "sla_credit" and line.ref is not None:
                self.pending_credits.append((line.ref, -line.amount))

    def _on_LateInterestWaived(self, e: Any) -> None:
        self.invoices[e.invoice_id].interest_waived += e.amount

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
        """A fee reduction waits for the next invoice; a refund is paid back with a credit note
        (``InvoiceIssued`` of kind ``sla_refund``, issued by the same command)."""
        if e.remedy == "fee_reduction":
            self.pending_credits.append((str(e.claim_id), e.amount))

    # -- rules -------------------------------------------------------------------------------
    def _base_price(self, month: Month) -> tuple[int, str, str]:
        """The unit price of a period starting in ``month`` (Art. 9.1 base fee, or the Art. 9.2
        campaign price in the campaign's months), the line's kind and its rule."""
        assert self.plan is not None and self.first_month is not None
        camp = self.campaign
        in_campaign = camp is not None and month.minus(self.first_month) < camp.months
        if self.cycle == "monthly":
            if in_campaign:
                assert camp is not None
                return camp.monthly_price, "campaign_fee", "Art. 9.2 campaign price"
            return self.plan.monthly_price, "base_fee", "Art. 9.1 base fee"
        if in_campaign and camp is not None and camp.annual_price is not None:
            return camp.annual_price, "campaign_fee", "Art. 9.2 campaign price"
        return self.plan.annual_price, "base_fee", "Art. 9.1 base fee"

    def _base_lines(self, month: Month, period_end: Month) -> list[InvoiceLine]:
        price, kind, rule = self._base_price(month)
        plan, users = self.plan, self.users
        assert plan is not None
        if self.cycle == "monthly":
            desc = f"{plan.service} {plan.grade} {month} x {users} users"
        else:
            desc = f"{plan.service} {plan.grade} {month}..{period_end} x {users} users"
        return [InvoiceLine(kind, rule, desc, price * users, users, price, plan.tax_rate)]

    def _begin_period(self, month: Month, period_end: Month) -> None:
        base = self._base_price(month)[0] * self.users  # the amount of its base line (``_base_lines``)
        if self.cycle == "annual":
            self.term_start, self.term_end = month, period_end
            per_month = base // 12
            m = month
            while m <= period_end:
                self.monthly_fees[m] = per_month
                m = m.plus(1)
        else:
            self.monthly_fees[month] = base

    def draft_period(self, month: Month, period_end: Month, due_on: date, interest_rate: Decimal) -> Draft:
        """The invoice of a period that starts (Art. 9.1, 9.2; rule book 6): base or campaign fee,
        the initial fee on the first invoice, pending SLA fee reductions (Art. 20.1), and the late
        interest of invoices settled since (Art. 9.4: a tax-free line)."""
        assert self.plan is not None
        lines = self._base_lines(month, period_end)
        if not self.initial_fee_charged and self.plan.initial_fee:
            lines.append(InvoiceLine("initial_fee", "Art. 9.1 initial fee", "one-time initial fee",
                                     self.plan.initial_fee, 1, self.plan.initial_fee, self.plan.tax_rate))
        lines.extend(self._credit_lines(sum(line.amount for line in lines), self.plan.tax_rate))
        lines.extend(self.interest_lines(interest_rate))
        key = str(month) if self.cycle == "monthly" else f"{month}..{period_end}"
        return Draft(key, self.cycle or "monthly", key, month, due_on, tuple(lines))

    def interest_lines(self, rate: Decimal) -> list[InvoiceLine]:
        """Art. 9.4: the open late interest of each settled invoice, outside consumption tax (damages)."""
        lines = []
        for invoice in self.invoices.values():
            amount = invoice.open_interest(rate)
            if amount > 0:
                lines.append(InvoiceLine("late_interest", "Art. 9.4 late interest (not taxable)",
                                         f"late interest on {invoice.number} (due {invoice.due_on}, "
                                         f"paid {invoice.settled_on})", amount, ref=str(invoice.invoice_id)))
        return lines

    @staticmethod
    def original_of(invoice: Invoice) -> dict[str, str]:
        return {"invoice_id": str(invoice.invoice_id), "number": invoice.number,
                "issued_on": invoice.issued_on.isoformat()}

    def draft_credit_note(self, original: Invoice, kind: str, rule: str, description: str, amount: int,
                          rate: Decimal, ref: str, key: str, on: date, reason: str) -> Draft:
        """A return invoice (返還インボイス, Art. 57-4(3)): the returned amount at its rate, the
        date of the return (the issue date) and the original's number and date."""
        line = InvoiceLine(kind, rule, description, amount, tax_rate=rate, ref=ref)
        return Draft(key, kind, original.period, original.month, on, (line,), "credit_note",
                     self.original_of(original), reason)

    def _credit_lines(self, subtotal: int, rate: Decimal) -> list[InvoiceLine]:
        """SLA fee reductions on the next invoice (Art. 20.1), at the rate of the fee they reduce;
        what exceeds the invoice carries over (consumed when the invoice is issued)."""
        lines, remaining = [], subtotal
        for claim, amount in self.pending_credits:
            used = min(amount, remaining)
            if used:
                lines.append(InvoiceLine("sla_credit", "Art. 20.1 SLA fee reduction",
                                         f"SLA credit for claim {claim}", -used, tax_rate=rate, ref=claim))
                remaining -= used
        return lines

    def draft_upgrade(self, change_id: uuid.UUID, effective_month: Month, remaining_months: int, charge: int,
                      due_on: date) -> Draft | None:
        """Art. 10.1.2: the difference of a mid-term upgrade of an annual contract, invoiced in the
        effective month (its period is that month)."""
        if self.cycle != "annual" or charge <= 0 or self.plan is None:
            return None
        line = InvoiceLine("upgrade_difference", "Art. 10.1.2 upgrade difference",
                           f"upgrade to {self.plan.grade} x {self.users} users for {remaining_months} months",
                           charge, 1, charge, self.plan.tax_rate)
        return Draft(f"upgrade:{change_id}", "upgrade", str(effective_month), effective_month, due_on, (line,))

    def _after_change(self, e: Any) -> None:
        if self.cycle == "annual" and self.plan is not None and self.term_end is not None:
            per_month = self.plan.annual_price * self.users // 12
            m = e.effective_month
            while m <= self.term_end:
                self.monthly_fees[m] = per_month
                m = m.plus(1)

    # -- queries -----------------------------------------------------------------------------
    def monthly_fee(self, month: Month) -> int | None:
        """Fee in force for a service month (annual: annual total / 12, floored); None if unbilled."""
        return self.monthly_fees.get(month)

    def invoice_for_month(self, month: Month) -> Invoice | None:
        """The period invoice in force for a service month: a corrected one's correction (rule book
        6.1: the corrected invoice replaces it; a refund returns on the document in force)."""
        for inv in self.invoices.values():
            if inv.kind in ("monthly", "annual") and inv.month <= month and (
                inv.period == str(month) or (".." in inv.period and Month.parse(inv.period[-7:]) >= month)
            ):
                return self._in_force(inv)
        return None

    def fee_rate(self, invoice: Invoice) -> Decimal | None:
        """The tax rate of the fee a period invoice billed by rule (its Art. 9.1 / 9.2 line), found on
        the original a corrected invoice replaced (a correction's lines and their order are an
        operator's); None for a document that bills no fee."""
        while invoice.kind == "correction" and invoice.original:
            replaced = self.invoices.get(uuid.UUID(invoice.original["invoice_id"]))
            if replaced is None:
                break
            invoice = replaced
        return next((line.tax_rate for line in invoice.lines
                     if line.kind in ("base_fee", "campaign_fee") and line.tax_rate is not None), None)

    def _in_force(self, invoice: Invoice) -> Invoice:
        while invoice.status == "corrected":
            key = str(invoice.invoice_id)
            correction = next((i for i in self.invoices.values()
                               if i.kind == "correction" and i.original and i.original["invoice_id"] == key), None)
            if correction is None:
                break
            invoice = correction
        return invoice

    def outstanding(self) -> int:
        return sum(i.outstanding for i in self.invoices.values())

    def late_interest(self, as_of: date, rate: Decimal) -> int:
        return sum(i.late_interest(as_of, rate) for i in self.invoices.values())


def invoices_referenced(event: Any) -> list[uuid.UUID]:
    """Earlier invoices a Contract event changes: the one paid, reversed, written off, voided or
    waived, and the originals of a correction, a credit note or billed late interest (``InvoiceIssued``)."""
    kind = _REFERENCING.kinds().get(type(event))
    if kind is None:
        return []
    if kind == _BY_ID:
        return [event.invoice_id]
    document = event.document
    refs = [uuid.UUID(document["original"]["invoice_id"])] if document.get("original") else []
    refs += [uuid.UUID(line["ref"]) for line in document["lines"] if line["kind"] == "late_interest"]
    return refs


_BY_ID, _ISSUED = "invoice_id", "issued"


class _Referencing:
    """Event class -> how it names earlier invoices (``invoices_referenced``), built on first use:
    the Contract aggregate imports this module, so its event classes exist only after it. One
    dict lookup per event instead of an import and ``isinstance`` of a union built per call
    (issue 21: ~3 % of a month start's projection CPU)."""

    def __init__(self) -> None:
        self._kinds: dict[type, str] | None = None

    def kinds(self) -> dict[type, str]:
        if self._kinds is None:
            from domain.contract import ContractEvents as c  # noqa: N813 - the aggregate imports this module

            kinds = dict.fromkeys((c.PaymentReceived, c.PaymentReversed, c.DebtWrittenOff, c.WriteOffReversed,
                                   c.InvoiceVoided, c.LateInterestWaived), _BY_ID)
            kinds[c.InvoiceIssued] = _ISSUED
            self._kinds = kinds
        return self._kinds


_REFERENCING = _Referencing()


def _ledger_handlers() -> tuple[dict[type, Handler[Ledger]], tuple[type, ...]]:
    from domain.contract import ContractEvents as c  # noqa: N813 - the aggregate imports this module

    return ({
        c.Applied: Ledger._on_Applied,
        c.Approved: Ledger._on_Approved,
        c.ServicePeriodStarted: Ledger._on_ServicePeriodStarted,
        c.Renewed: Ledger._on_Renewed,
        c.GradeChanged: Ledger._on_GradeChanged,
        c.UsersChanged: Ledger._on_UsersChanged,
        c.InvoiceIssued: Ledger._on_InvoiceIssued,
        c.InvoiceVoided: Ledger._on_InvoiceVoided,
        c.LateInterestWaived: Ledger._on_LateInterestWaived,
        c.PaymentReceived: Ledger._on_PaymentReceived,
        c.CreditGranted: Ledger._on_CreditGranted,
        c.PaymentReversed: Ledger._on_PaymentReversed,
        c.DebtWrittenOff: Ledger._on_DebtWrittenOff,
        c.WriteOffReversed: Ledger._on_WriteOffReversed,
        c.ContractorDataErased: Ledger._on_ContractorDataErased,
        c.DataDeleted: Ledger._on_DataDeleted,
    }, (c.Opened, c.TrialStarted, c.TrialExpired, c.Rejected, c.ChangeRequested, c.TerminationNoticed,
        c.PaymentOverdue, c.SuspensionNoticed, c.SuspensionLifted, c.Terminated, c.SlaBreachClaimed,
        c.CreditRejected, c.ContractorInfoChanged, c.StoredDataDeleted,
        c.PrivacyRequestAnswered, c.SuspensionStopMoved, c.PaymentReminded))


LEDGER_FOLD: Dispatch[Ledger] = Dispatch("billing Ledger", _ledger_handlers)
