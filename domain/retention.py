"""Retention (spec 10): when stored data is deleted and when contractor data is erased.

Two kinds of data, two rules, each in one place here:

* **Stored data** (保存データ, Art. 15.3; the cloud data policy's 入力データ): what the
  customer stored in the service. Deleted once POLICY ``retention_days`` have passed after
  the contract ended (termination, trial expiry, rejection): ``retention_deadline``.
* **Contractor data** (契約者情報等, Art. 2.2; personal data under Art. 13 and the privacy
  policy): kept while the contract lasts, while anything is owed, and until POLICY
  ``records_retention_years`` from the day after the tax return's filing deadline (POLICY
  ``records_filing_months`` = 2 after the end, as the law counts; rule book 10 counts from the end)
  of the fiscal year (POLICY ``fiscal_year_end``) that holds the contract's last invoice,
  because the invoice's recipient must be kept with the books (Corporate Tax Act: 7 years;
  Consumption Tax Act Art. 57-4(1)(6): the recipient's name is on every qualified invoice). A
  contract that never had an invoice has no records to keep: its contractor data goes with the
  stored data. ``contractor_data_erasure_on``.

Requests under the privacy policy (開示等の請求, section 7): what can be erased at once (the
contacts) and what must stay until the records period ends: ``RECORD_FIELDS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from domain.calendar import Month
from domain.errors import InvalidInput

if TYPE_CHECKING:  # domain.policy holds a FiscalYearEnd: imported for the annotation only
    from domain.policy import Policy

STORED_DATA_ARTICLE = "Art. 15.3"
CONTRACTOR_DATA_ARTICLE = "Art. 13"  # with the privacy policy (契約者情報等の利用) and the records rule
PRIVACY_REQUEST_ARTICLE = "privacy policy 7"  # 個人情報の開示等の請求
RECORDS_LAW = ("Corporate Tax Act (books and invoices kept 7 years from the return's filing deadline); "
               "Consumption Tax Act Art. 57-4(1)(6) (the recipient's name on a qualified invoice)")

RECORD_FIELDS = ("name", "address")
"""Contractor fields the legal records need (the recipient of qualified invoices): kept until the
records period ends even when the contractor asks for erasure. Every other contractor field
(person in charge, e-mail, phone, store administrator) is a contact, erased at once on request."""


CONTACTS_ERASED = "contacts"
ERASED_MARK = "[erased]"
"""A contractor document whose contacts were erased shows ``"contacts": "[erased]"`` beside the
record fields."""


def split_contractor(contractor: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(record fields, contact fields) of one contractor document (the erased mark is neither)."""
    records = {k: v for k, v in contractor.items() if k in RECORD_FIELDS}
    contacts = {k: v for k, v in contractor.items() if k not in RECORD_FIELDS and k != CONTACTS_ERASED}
    return records, contacts


@dataclass(frozen=True)
class FiscalYearEnd:
    """The last day of the provider's fiscal year, as month and day (POLICY ``fiscal_year_end``)."""

    month: int = 3
    day: int = 31

    @classmethod
    def parse(cls, text: str) -> FiscalYearEnd:
        try:
            month_text, day_text = text.strip().split("-")
            value = cls(int(month_text), int(day_text))
            date(2001, value.month, value.day)  # a day every year has (no 02-29)
        except ValueError:
            raise InvalidInput("rule book 10", "fiscal_year_end must be MM-DD, a day every year has (e.g. 03-31)",
                               "fiscal_year_end") from None
        return value

    def end_of_year_holding(self, day: date) -> date:
        """The fiscal year end on or after ``day``: 2026-06-01 -> 2027-03-31 with 03-31."""
        this_year = date(day.year, self.month, self.day)
        return this_year if this_year >= day else date(day.year + 1, self.month, self.day)

    def __str__(self) -> str:
        return f"{self.month:02d}-{self.day:02d}"


def retention_deadline(ended_on: date, policy: Policy) -> date:
    """Art. 15.3 / 15.5 retention date: stored data is kept ``policy.retention_days`` (POLICY,
    default 60) after the contract ends, the application is rejected or the trial expires, and
    deleted then (``StoredDataDeleted``). Terminated 2026-06-30 -> deleted from 2026-08-29."""
    return ended_on + timedelta(days=policy.retention_days)


def records_kept_until(last_invoice_on: date | None, fiscal_year_end: FiscalYearEnd, years: int,
                       filing_months: int = 0) -> date | None:
    """The last day the invoice records (and the recipient on them) must be kept: ``years`` counted
    from the day after the end of the fiscal year holding the last invoice, or, with
    ``filing_months``, from the day after that year's tax-return filing deadline (the
    Corporate Tax Act's own start, 法人税法施行規則 59条: normally 2 months after the year end).
    Invoice 2026-06-01, 03-31, 7 years -> 2034-03-31 (filing_months 2 -> 2034-05-31).
    ``None`` when there never was an invoice: no records to keep."""
    if last_invoice_on is None:
        return None
    start = _plus_months(fiscal_year_end.end_of_year_holding(last_invoice_on) + timedelta(days=1), filing_months)
    return _plus_months(start, 12 * years) - timedelta(days=1)


def _plus_months(day: date, months: int) -> date:
    """The same day ``months`` later, or the last day of that month when it is shorter."""
    month = Month.of(day).plus(months)
    return date(month.year, month.month, min(day.day, month.days))


@dataclass(frozen=True)
class Owed:
    """What is still owed between the parties, as the contract's records know it.

    ``principal``: unpaid invoice amounts (late interest accrues on them while unpaid, Art. 9.4, so
    an unpaid principal also means interest owed); ``unapplied_credit``: SLA fee reductions granted
    but not yet set against an invoice (owed to the customer); ``refund``: refunds granted but not
    paid out (nothing records a payout yet, so this is 0 until one does); ``credit_balance``: the
    customer's credit balance (rule book 7: overpayments and credit notes' excess not yet applied
    to an invoice or refunded), owed to the customer by the provider, kept on the customer's account
    and so passed in by the caller; negative when the customer owes it (a reversed transfer whose
    credit was refunded). ``last_settled_on``: the latest day money was received on the
    contract (the keeping lasts at least through it)."""

    principal: int = 0
    unapplied_credit: int = 0
    refund: int = 0
    last_settled_on: date | None = None
    credit_balance: int = 0

    @property
    def anything(self) -> bool:
        return self.principal > 0 or self.unapplied_credit > 0 or self.refund > 0 or self.credit_balance != 0

    def describe(self) -> str:
        parts = [f"{label} {amount} yen" for label, amount in
                 (("unpaid invoices", self.principal), ("unapplied credit", self.unapplied_credit),
                  ("refund", self.refund), ("credit balance owed to the customer", self.credit_balance),
                  ("refunded credit of a reversed transfer, owed by the customer", -self.credit_balance))
                 if amount > 0]
        return ", ".join(parts) or "nothing"


def contractor_data_erasure_on(stored_data_deletion: date | None, last_invoice_on: date | None, owed: Owed,
                               fiscal_year_end: FiscalYearEnd, records_years: int,
                               filing_months: int = 0) -> date | None:
    """The day contractor data is erased (``ContractorDataErased``), or ``None`` while it must be
    kept with no date known yet: the contract lasts (no ``stored_data_deletion`` date yet, the one
    recorded when it ended) or something is owed.

    Kept while the contract lasts and while anything is owed; then until the records period of the
    last invoice ends (erased the day after); never before the stored-data deadline. Without any
    invoice: at the stored-data deadline. Settled late: the day after the settling payment at the
    earliest, then the same rule (terminated 2026-06-30, invoices to 2026-06 -> 2034-04-01, or with
    the law's ``filing_months`` 2, the default POLICY, 2034-06-01)."""
    if stored_data_deletion is None or owed.anything:
        return None
    candidates = [stored_data_deletion]
    kept_until = records_kept_until(last_invoice_on, fiscal_year_end, records_years, filing_months)
    if kept_until is not None:
        candidates.append(kept_until + timedelta(days=1))
        if owed.last_settled_on is not None:
            candidates.append(owed.last_settled_on + timedelta(days=1))
    return max(candidates)


def last_invoice_on(issued_on: list[date] | tuple[date, ...]) -> date | None:
    """"The contract's last invoice" for the records period: the latest issue date among the
    documents the contract issued (``InvoiceIssued``, rule book 6.1: invoices, corrected invoices,
    interest invoices and credit notes, void ones too: each is a record the law asks to keep)."""
    return max(issued_on) if issued_on else None
