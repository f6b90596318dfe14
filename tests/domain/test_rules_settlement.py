"""Rule book section 7: the allocation rule (消込) as a pure function, by hand."""

from __future__ import annotations

import uuid
from datetime import date

from domain.settlement import RULE_FEE_TOLERANCE, RULE_NAMED, RULE_OLDEST_FIRST, OpenInvoice, allocate

C = uuid.UUID(int=1)
APRIL = OpenInvoice(date(2026, 5, 31), date(2026, 4, 1), uuid.UUID(int=10), C, 24_200)
MAY = OpenInvoice(date(2026, 6, 30), date(2026, 5, 1), uuid.UUID(int=11), C, 24_200)


def test_rule_7_oldest_first_then_credit() -> None:
    plan = allocate(50_000, [MAY, APRIL])
    assert [(a.invoice_id, a.amount, a.rule) for a in plan.allocations] == [
        (APRIL.invoice_id, 24_200, RULE_OLDEST_FIRST), (MAY.invoice_id, 24_200, RULE_OLDEST_FIRST)]
    assert plan.credit == 50_000 - 48_400 and plan.written_off == ()


def test_rule_7_fee_shortfall_within_tolerance_is_written_off_on_the_last_invoice_reached() -> None:
    plan = allocate(24_200 - 440, [APRIL, MAY], tolerance=440)
    assert [(a.amount) for a in plan.allocations] == [23_760]
    assert [(w.invoice_id, w.amount, w.rule) for w in plan.written_off] == [(APRIL.invoice_id, 440, RULE_FEE_TOLERANCE)]
    assert plan.credit == 0
    beyond = allocate(24_200 - 441, [APRIL, MAY], tolerance=440)
    assert beyond.written_off == () and beyond.allocated == 23_759


def test_rule_7_named_invoices_only_and_in_their_order() -> None:
    plan = allocate(30_000, [APRIL, MAY], named=[MAY.invoice_id])
    assert [(a.invoice_id, a.amount, a.rule) for a in plan.allocations] == [(MAY.invoice_id, 24_200, RULE_NAMED)]
    assert plan.credit == 5_800  # April is not touched: the payer said what they paid


def test_rule_7_nothing_open_is_all_credit() -> None:
    assert allocate(1_000, []).credit == 1_000
