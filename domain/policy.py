"""POLICY values of the spec: settings, never constants in code. Defaults match the spec."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.calendar import YearEndBreak
from domain.invoicing import Issuer
from domain.retention import FiscalYearEnd


@dataclass(frozen=True)
class Policy:
    tax_rate: Decimal = Decimal("0.10")  # spec 1
    late_interest_rate: Decimal = Decimal("0.145")  # Art. 9.4 (fixed by the terms)
    due_months_after: int = 1  # spec 6: due on the last day of the month after the invoice's
    suspension_notice_after_days: int = 14  # spec 7
    suspension_grace_days: int = 14  # spec 7
    retention_days: int = 60  # spec 10, Art. 15.3: stored data kept after the contract ended
    records_retention_years: int = 7  # spec 10: contractor data kept with the invoice records
    fiscal_year_end: FiscalYearEnd = FiscalYearEnd(3, 31)  # spec 10: the records period counts from it
    records_filing_months: int = 2  # the law counts from the filing deadline, 2 months after the year end
    transfer_fee_tolerance: int = 0  # rule book 7: shortfall (振込手数料) written off by rule, in yen
    payment_reminder_days_before: int = 7  # rule book 7: reminder this many days before the due date (0: none)
    payment_reminder_days_after: int = 7  # rule book 7: reminder this many days after the due date (0: none)
    annual_auto_renew: bool = True  # spec 4
    sla_claim_window_days: int = 60  # Art. 20.3 (fixed by the terms)
    discontinuation_notice_months: int = 3  # Art. 18 (fixed by the terms)
    year_end_break: YearEndBreak = YearEndBreak()
    issuer: Issuer | None = None  # rule book 6.1: the operator as qualified-invoice issuer (settings)
    invoice_number_format: str = "INV-{year}-{seq:06d}"  # rule book 6.1
