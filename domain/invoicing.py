"""Qualified invoices (適格請求書, Consumption Tax Act Art. 57-4; rule book 6.1): the pure rules.

* the issuer's registration number: ``T`` + the 13-digit corporate number whose first digit
  is a check digit (``registration_number``);
* the tax rates that exist (10% standard, 8% reduced) and the tax per rate, one rounding down
  per rate per invoice (``rate_totals``);
* the invoice number format (``format_number``) and the hash of an issued document
  (``document_hash``).
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from domain.errors import InvalidInput
from domain.money import floor_yen

QUALIFIED_INVOICE = "Consumption Tax Act Art. 57-4(1)"
RETURN_INVOICE = "Consumption Tax Act Art. 57-4(3)"
STANDARD_RATE = Decimal("0.10")
REDUCED_RATE = Decimal("0.08")
TAX_RATES: dict[Decimal, str] = {STANDARD_RATE: "standard", REDUCED_RATE: "reduced"}
"""The consumption tax rates in force (rule book 6.1): every taxable item names one of them."""

_DIGITS13 = re.compile(r"[0-9]{13}\Z")


def corporate_number_check_digit(twelve: str) -> int:
    """法人番号 check digit of the 12 base digits: with P_n the n-th digit counted from the right
    and Q_n = 1 for odd n, 2 for even n, check = 9 - (sum P_n x Q_n mod 9)."""
    total = sum(int(d) * (1 if n % 2 else 2) for n, d in enumerate(reversed(twelve), start=1))
    return 9 - total % 9


def registration_number(text: str, field: str = "registration_number") -> str:
    """Validate a qualified-invoice issuer registration number (Art. 57-4(1) item 1): ``T`` and the
    13-digit corporate number with a valid check digit. Returns it unchanged; raises naming ``field``."""
    if not isinstance(text, str) or not text.startswith("T"):
        raise InvalidInput(QUALIFIED_INVOICE, "must be T followed by 13 digits (e.g. T7123456789012)", field)
    digits = text[1:]
    if not _DIGITS13.match(digits):
        raise InvalidInput(QUALIFIED_INVOICE, "must be T followed by exactly 13 digits", field)
    if int(digits[0]) != corporate_number_check_digit(digits[1:]):
        raise InvalidInput(QUALIFIED_INVOICE, "the check digit (the first of the 13 digits) is wrong", field)
    return text


def tax_rate(value: Decimal | str, field: str = "tax_rate") -> Decimal:
    """One of the rates in force (10% standard, 8% reduced), as a Decimal with two places."""
    try:
        rate = Decimal(str(value)).quantize(Decimal("0.01"))
    except ArithmeticError:
        raise InvalidInput(QUALIFIED_INVOICE, "must be 0.10 (standard) or 0.08 (reduced)", field) from None
    if rate not in TAX_RATES or Decimal(str(value)) != rate:
        raise InvalidInput(QUALIFIED_INVOICE, "must be 0.10 (standard) or 0.08 (reduced)", field)
    return rate


@dataclass(frozen=True)
class Issuer:
    """The operator as issuer of qualified invoices (Art. 57-4(1) item 1; POLICY settings)."""

    name: str
    registration_number: str
    address: str
    contact: str

    def __post_init__(self) -> None:
        for name in ("name", "address", "contact"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip() or len(value) > 200:
                raise InvalidInput(QUALIFIED_INVOICE, "is required (at most 200 characters)", name)
        registration_number(self.registration_number)

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "registration_number": self.registration_number, "address": self.address,
                "contact": self.contact}

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> Issuer:
        return cls(data["name"], data["registration_number"], data["address"], data["contact"])


@dataclass(frozen=True)
class RateTotal:
    """Art. 57-4(1) items 4 and 5: the total of one tax rate and its consumption tax."""

    rate: Decimal
    taxable: int  # tax-exclusive total of the lines at this rate
    tax: int

    def to_dict(self) -> dict[str, Any]:
        return {"rate": str(self.rate), "rate_kind": TAX_RATES.get(self.rate, "other"), "taxable": self.taxable,
                "tax": self.tax}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RateTotal:
        return cls(Decimal(str(data["rate"])), int(data["taxable"]), int(data["tax"]))


def rate_totals(taxable_lines: Iterable[tuple[Decimal | None, int]]) -> list[RateTotal]:
    """Art. 57-4(1) items 4-5: group (rate, amount) pairs by rate and tax each group once, rounded down
    (rule book 1 and 6.1: one rounding per rate per invoice). ``None`` is a line outside consumption tax
    (late interest);
    a negative group total (credits beyond the fees) is taxed 0. Highest rate first."""
    sums: dict[Decimal, int] = {}
    for rate, amount in taxable_lines:
        if rate is not None:
            sums[rate] = sums.get(rate, 0) + amount
    return [RateTotal(rate, total, floor_yen(Decimal(total) * rate) if total > 0 else 0)
            for rate, total in sorted(sums.items(), reverse=True)]


def number_format(fmt: str, field: str = "invoice_number_format") -> str:
    """An invoice number format: ``{seq}`` (with an optional ``:0Nd`` spec) is required, ``{year}``
    optional (the sequence then starts again each year), nothing else."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(fmt) if name is not None}
        sample = format_number(fmt, 2026, 1)
    except (ValueError, KeyError, IndexError):
        raise InvalidInput("rule book 6.1", "must use only {year} and {seq} (e.g. INV-{year}-{seq:06d})",
                           field) from None
    if "seq" not in names or not names <= {"seq", "year"} or not sample.strip() or len(sample) > 40:
        raise InvalidInput("rule book 6.1", "must contain {seq} and may contain {year} (e.g. INV-{year}-{seq:06d})",
                           field)
    return fmt


def format_number(fmt: str, year: int, seq: int) -> str:
    return fmt.format(year=year, seq=seq)


def number_scope(fmt: str, year: int) -> str:
    """Which sequence a number is drawn from: one per year when the format shows the year."""
    return str(year) if "{year" in fmt else "all"


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
"""What ``json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` builds on
every call (the same text); one encoder, since each document hash encodes a document."""


def canonical_json(data: Any) -> str:
    return _CANONICAL.encode(data)


def document_hash(document: Mapping[str, Any]) -> str:
    """SHA-256 of the issued document's canonical JSON (every field but the hash itself)."""
    body = {k: v for k, v in document.items() if k != "document_hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()
