"""Qualified invoices (rule book 6.1, Consumption Tax Act Art. 57-4): registration number, tax per
rate, issued documents and their numbers. Every expected value is worked out by hand in the comments."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from contract_kit import ANNUAL, CAL, ISSUER, POLICY, active, concluded, jst, numbers, odd_plan

from domain.billing import InvoiceLine
from domain.calendar import Month
from domain.errors import InvalidInput, RuleViolation
from domain.invoice_numbers import InvoiceSequence, NumberBook
from domain.invoicing import (
    Issuer,
    corporate_number_check_digit,
    document_hash,
    number_format,
    rate_totals,
    registration_number,
    tax_rate,
)


# --------------------------------------------------------------------------- Art. 57-4(1) item 1
def test_art_57_4_check_digit_of_the_library_facts_example() -> None:
    # 123456789012 from the right: 2x1 + 1x2 + 0x1 + 9x2 + 8x1 + 7x2 + 6x1 + 5x2 + 4x1 + 3x2 + 2x1 + 1x2
    # = 2 + 2 + 0 + 18 + 8 + 14 + 6 + 10 + 4 + 6 + 2 + 2 = 74; 74 mod 9 = 2; 9 - 2 = 7
    assert corporate_number_check_digit("123456789012") == 7
    assert registration_number("T7123456789012") == "T7123456789012"


def test_art_57_4_check_digit_of_a_real_corporate_number() -> None:
    # 国税庁 7000012050002: 000012050002 from the right: 2x1 + 0 + 0 + 0 + 5x1 + 0x2 + 2x1 + 1x2 = 11;
    # 11 mod 9 = 2; 9 - 2 = 7
    assert corporate_number_check_digit("000012050002") == 7
    assert registration_number("T7000012050002") == "T7000012050002"


@pytest.mark.parametrize("text", [
    "T8123456789012",  # wrong check digit (7 is right)
    "T6000012050002",  # wrong check digit (7 is right)
    "T712345678901",  # 12 digits
    "T71234567890123",  # 14 digits
    "7123456789012",  # missing T
    "t7123456789012",  # lower-case t
    "T712345678901A",  # not a digit
    "",
])
def test_art_57_4_registration_numbers_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        registration_number(text, "issuer_registration_number")
    assert refused.value.article.startswith("Consumption Tax Act Art. 57-4")
    assert refused.value.field == "issuer_registration_number"


def test_art_57_4_issuer_needs_every_field() -> None:
    with pytest.raises(InvalidInput) as refused:
        Issuer("", "T7123456789012", "東京都", "a@example.invalid")
    assert refused.value.field == "name"
    with pytest.raises(InvalidInput) as refused:
        Issuer("株式会社A", "T7123456789013", "東京都", "a@example.invalid")
    assert refused.value.field == "registration_number"


# --------------------------------------------------------------------------- rule book 6.1: rates
def test_rule_book_6_1_rates_are_10_and_8_percent_only() -> None:
    assert tax_rate("0.10") == Decimal("0.10") and tax_rate("0.08") == Decimal("0.08")
    for bad in ("0.05", "0.1000001", "ten", "-0.10"):
        with pytest.raises(InvalidInput):
            tax_rate(bad)


def test_rule_book_6_1_one_rounding_per_rate_per_invoice() -> None:
    # 10%: 1235 + 1235 = 2470 -> 247 (per line it would be 123 + 123 = 246)
    # 8%: 999 -> floor(79.92) = 79; late interest (None) is outside consumption tax
    totals = rate_totals([(Decimal("0.10"), 1235), (Decimal("0.08"), 999), (Decimal("0.10"), 1235), (None, 1310)])
    assert [(t.rate, t.taxable, t.tax) for t in totals] == [(Decimal("0.10"), 2470, 247), (Decimal("0.08"), 999, 79)]


def test_rule_book_6_every_line_has_quantity_times_unit_price_or_no_unit_price() -> None:
    InvoiceLine("base_fee", "Art. 9.1", "x", 3000, 2, 1500, Decimal("0.10"))
    InvoiceLine("tax", "Art. 57-4", "x", 300)  # no unit price
    with pytest.raises(ValueError):
        InvoiceLine("base_fee", "Art. 9.1", "x", 3001, 2, 1500, Decimal("0.10"))


def test_rule_book_6_1_invoice_carries_the_qualified_invoice_items() -> None:
    """odd plan, 1 user: 1235 base + 555 initial fee = 1790 at 10% -> tax floor(179.0) = 179; total 1969."""
    c = active(users=1, price_plan=odd_plan(), until=Month(2026, 4))
    (inv,) = c.ledger.invoices.values()
    assert inv.number == "INV-2026-000001"
    assert inv.issuer == ISSUER.to_dict()  # item 1
    assert (inv.issued_on, inv.period) == (date(2026, 4, 1), "2026-04")  # item 2 (transaction period)
    assert [(line.kind, line.quantity, line.unit_price, line.amount, line.tax_rate) for line in inv.lines] == [
        ("base_fee", 1, 1235, 1235, Decimal("0.10")),  # item 3
        ("initial_fee", 1, 555, 555, Decimal("0.10")),
        ("tax", None, None, 179, None),
    ]
    assert [(r.rate, r.taxable, r.tax) for r in inv.rate_totals] == [(Decimal("0.10"), 1790, 179)]  # items 4, 5
    assert inv.recipient == "Example Trading K.K."  # item 6
    assert (inv.total, inv.tax, inv.due_on) == (1969, 179, date(2026, 5, 31))


def test_rule_book_6_1_reduced_rate_item() -> None:
    """An 8% item: 1790 -> floor(143.2) = 143; the line is marked reduced (Art. 57-4(1) item 3)."""
    c = active(users=1, price_plan=replace(odd_plan(), tax_rate=Decimal("0.08")), until=Month(2026, 4))
    (inv,) = c.ledger.invoices.values()
    assert [(r.rate, r.taxable, r.tax) for r in inv.rate_totals] == [(Decimal("0.08"), 1790, 143)]
    assert inv.lines[0].to_dict()["reduced_rate"] is True
    assert inv.total == 1790 + 143


def test_rule_book_6_1_document_hash_covers_the_issued_document() -> None:
    c = concluded(users=1, price_plan=odd_plan())
    c.collect_events()
    c.advance_to(Month(2026, 4), POLICY, numbers())
    _, issued = c.collect_events()
    assert issued.document_hash == document_hash({**issued.document, "recipient": issued.recipient})
    assert issued.document_hash != document_hash({**issued.document, "recipient": "someone else"})


def test_rule_book_6_upgrade_invoice_period_is_its_month() -> None:
    """Annual 2026-04..2027-03, 10 users standard; +2 users from 2026-07 (9 months left): charge
    (18000 x 12 - 18000 x 10) x 9 // 12 = 36000 x 9 // 12 = 27000; tax 2700."""
    c = active(cycle=ANNUAL)
    c.request_change(None, 12, Month(2026, 7), jst(2026, 6, 1), CAL)
    c.advance_to(Month(2026, 7), POLICY, numbers())
    (upgrade,) = [i for i in c.ledger.invoices.values() if i.kind == "upgrade"]
    assert (upgrade.period, upgrade.issued_on) == ("2026-07", date(2026, 7, 1))
    assert [(line.quantity, line.unit_price, line.amount) for line in upgrade.lines[:1]] == [(1, 27000, 27000)]
    assert (upgrade.tax, upgrade.total) == (2700, 29700)


# --------------------------------------------------------------------------- rule book 6.1: numbers
def test_rule_book_6_1_numbers_are_sequential_across_contracts_and_give_back_on_rollback() -> None:
    sequences: dict[str, InvoiceSequence] = {}

    def book() -> NumberBook:
        return NumberBook(POLICY.invoice_number_format, ISSUER.registration_number,
                          lambda scope: sequences.setdefault(scope, InvoiceSequence.start(ISSUER.registration_number,
                                                                                          scope)))
    first = book()
    assert [first.allocate(date(2026, 4, 1)) for _ in range(2)] == ["INV-2026-000001", "INV-2026-000002"]
    mark = first.mark()
    assert first.allocate(date(2026, 4, 1)) == "INV-2026-000003"
    first.rollback(mark)  # that contract was not saved: 3 goes to the next one
    assert first.allocate(date(2026, 4, 1)) == "INV-2026-000003"
    (seq,) = first.close(None)
    assert seq.last == 3
    second = book()
    assert second.allocate(date(2026, 5, 1)) == "INV-2026-000004"
    assert second.allocate(date(2027, 1, 1)) == "INV-2027-000001"  # {year} in the format: per-year sequence
    with pytest.raises(RuleViolation):
        seq.allocate(7, 8, None)  # a gap is refused


def test_rule_book_6_1_number_format_setting() -> None:
    assert number_format("INV-{year}-{seq:06d}") == "INV-{year}-{seq:06d}"
    assert number_format("{seq}") == "{seq}"
    for bad in ("INV-{year}", "INV-{month}-{seq}", "INV-{seq", "INV-{seq:x"):
        with pytest.raises(InvalidInput):
            number_format(bad)
