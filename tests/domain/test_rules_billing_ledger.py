"""Spec 6 / Art. 9 billing as computed by the Contract aggregate's ledger, and spec 1 money rules.

Sample catalog prices used (yen per user): kintone standard 1500 monthly / 18000 annual, campaign
1200 monthly for 3 months / 16000 annual, initial fee 10000; kintone premium 2500 / 30000, initial
fee 10000; kintone light 800 / 9000; garoon standard 1000 / 11400, no initial fee.
"""

from __future__ import annotations

from datetime import date

from contract_kit import (
    ANNUAL,
    CAL,
    POLICY,
    active,
    assert_refused,
    invoice,
    jst,
    lines,
    numbers,
    odd_plan,
    plan,
    replay,
    summary,
    upgrade_invoices,
)

from domain.calendar import Month
from domain.contract import Contract
from domain.errors import RuleViolation

RATE = POLICY.late_interest_rate  # 14.5 % a year (Art. 9.4)


# --------------------------------------------------------------------------- monthly invoices
def test_art_9_2_campaign_price_then_normal_price_and_initial_fee_on_first_invoice_only() -> None:
    """kintone standard x 10, approved 2026-03-24 -> first month April (Art. 8.1).
    Campaign 1200 for 3 months: April, May, June; normal 1500 from July (Art. 9.2)."""
    c = active(until=Month(2026, 7))
    april = invoice(c, "2026-04")
    # 1200 x 10 = 12000 campaign + 10000 initial fee = 22000; tax floor(2200) = 2200; total 24200
    assert lines(april) == {"campaign_fee": 12000, "initial_fee": 10000, "tax": 2200}
    assert april.total == 24200
    for month in ("2026-05", "2026-06"):
        # 1200 x 10 = 12000, tax 1200, no initial fee again
        assert lines(invoice(c, month)) == {"campaign_fee": 12000, "tax": 1200}
    # July: normal price 1500 x 10 = 15000, tax 1500
    assert lines(invoice(c, "2026-07")) == {"base_fee": 15000, "tax": 1500}
    assert len(c.ledger.invoices) == 4  # one invoice per service month


def test_spec_6_invoice_issued_on_the_first_day_due_last_day_of_following_month() -> None:
    c = active(until=Month(2027, 2))
    assert invoice(c, "2026-04").issued_on == date(2026, 4, 1)
    assert invoice(c, "2026-04").due_on == date(2026, 5, 31)
    assert invoice(c, "2026-05").due_on == date(2026, 6, 30)
    assert invoice(c, "2026-12").due_on == date(2027, 1, 31)  # across the year end
    assert invoice(c, "2027-01").due_on == date(2027, 2, 28)


def test_spec_6_due_date_in_leap_february() -> None:
    """Invoice of January 2028 is due on the last day of February 2028 = the 29th."""
    c = active(service="garoon", grade="standard", approved_at=jst(2027, 12, 10), until=Month(2028, 1))
    assert invoice(c, "2028-01").due_on == date(2028, 2, 29)


def test_spec_6_every_invoice_line_names_its_rule() -> None:
    c = active(until=Month(2026, 7))
    expected_article = {"campaign_fee": "Art. 9.2", "base_fee": "Art. 9.1", "initial_fee": "Art. 9.1",
                        "tax": "Consumption Tax Act Art. 57-4(1)"}
    for inv in c.ledger.invoices.values():
        for line in inv.lines:
            assert line.rule.startswith(expected_article[line.kind]), line


# --------------------------------------------------------------------------- spec 1: consumption tax
def test_spec_1_tax_once_per_invoice_on_the_subtotal_rounded_down() -> None:
    """testsvc/odd: 1235 yen x 3 users = 3705, initial fee 555 -> subtotal 4260.
    One rounding per invoice: floor(4260 x 0.10) = 426 (per line it would be 370 + 55 = 425)."""
    c = active(price_plan=odd_plan(), users=3, until=Month(2026, 5))
    april = invoice(c, "2026-04")
    assert lines(april) == {"base_fee": 3705, "initial_fee": 555, "tax": 426}
    assert april.total == 4686  # 4260 + 426
    # May: 3705 -> tax floor(370.5) = 370 (rounded down, not half up)
    assert lines(invoice(c, "2026-05")) == {"base_fee": 3705, "tax": 370}


# --------------------------------------------------------------------------- annual invoices
def test_spec_6_annual_one_invoice_per_term_issued_on_its_first_day() -> None:
    """garoon standard x 10 annual, approved 2026-03-24: term 2026-04..2027-03.
    11400 x 10 = 114000, tax 11400, total 125400; renewed 2027-04 with the same amount."""
    c = active(service="garoon", grade="standard", cycle=ANNUAL, until=Month(2027, 4))
    first = invoice(c, "2026-04..2027-03")
    assert lines(first) == {"base_fee": 114000, "tax": 11400}
    assert (first.issued_on, first.due_on, first.total) == (date(2026, 4, 1), date(2026, 5, 31), 125400)
    second = invoice(c, "2027-04..2028-03")
    assert (second.issued_on, second.due_on, second.total) == (date(2027, 4, 1), date(2027, 5, 31), 125400)
    assert len(c.ledger.invoices) == 2  # nothing billed for the months in between


def test_art_9_2_annual_campaign_price_for_the_first_term_then_normal() -> None:
    """kintone standard x 10 annual, approved 2026-04-10: term 2026-05..2027-04.
    First term: campaign 16000 x 10 = 160000 + initial 10000 = 170000, tax 17000 -> 187000.
    Renewal 2027-05: normal 18000 x 10 = 180000, tax 18000 -> 198000, no initial fee."""
    c = active(cycle=ANNUAL, approved_at=jst(2026, 4, 10), until=Month(2027, 5))
    assert lines(invoice(c, "2026-05..2027-04")) == {"campaign_fee": 160000, "initial_fee": 10000, "tax": 17000}
    assert invoice(c, "2026-05..2027-04").total == 187000
    assert lines(invoice(c, "2027-05..2028-04")) == {"base_fee": 180000, "tax": 18000}
    assert invoice(c, "2027-05..2028-04").total == 198000


def test_art_10_1_2_upgrade_invoice_for_remaining_months() -> None:
    """kintone standard x 10 annual, term 2026-05..2027-04. Upgrade to premium noticed 2026-06-10
    (June deadline 06-23) -> effective July. Remaining months July..April = 10.
    floor((30000 x 10 - 18000 x 10) x 10 / 12) = floor(1200000 / 12) = 100000; tax 10000."""
    c = active(cycle=ANNUAL, approved_at=jst(2026, 4, 10), until=Month(2026, 6))
    change = c.request_change(plan("kintone", "premium"), None, None, jst(2026, 6, 10), CAL)
    assert (change.effective_month, change.remaining_months, change.upgrade_charge) == (Month(2026, 7), 10, 100000)
    c.advance_to(Month(2026, 7), POLICY, numbers())
    (up,) = upgrade_invoices(c)
    assert lines(up) == {"upgrade_difference": 100000, "tax": 10000}
    assert (up.issued_on, up.due_on, up.total) == (date(2026, 7, 1), date(2026, 8, 31), 110000)
    assert up.lines[0].rule.startswith("Art. 10.1.2")
    # and late interest on it, paid 2026-10-01: Sep 1..Sep 30 = 30 days
    # floor(110000 x 0.145 x 30 / 365) = floor(478500 / 365) = floor(1310.96) = 1310
    c.receive_payment(up.invoice_id, 110000, date(2026, 10, 1), jst(2026, 10, 1))
    assert c.ledger.invoices[up.invoice_id].late_interest(date(2026, 10, 1), RATE) == 1310


def test_art_10_1_2_upgrade_charge_is_rounded_down() -> None:
    """testsvc/odd annual 10001 per user, 10 -> 11 users named for December 2026 in the term
    2026-05..2027-04: remaining Dec..Apr = 5 months.
    floor((10001 x 11 - 10001 x 10) x 5 / 12) = floor(50005 / 12) = floor(4167.08) = 4167;
    tax floor(416.7) = 416; total 4583."""
    c = active(price_plan=odd_plan(), users=10, cycle=ANNUAL, approved_at=jst(2026, 4, 10), until=Month(2026, 5))
    change = c.request_change(None, 11, Month(2026, 12), jst(2026, 6, 10), CAL)
    assert (change.remaining_months, change.upgrade_charge) == (5, 4167)
    c.advance_to(Month(2026, 12), POLICY, numbers())
    (up,) = upgrade_invoices(c)
    assert lines(up) == {"upgrade_difference": 4167, "tax": 416}
    assert (up.issued_on, up.due_on) == (date(2026, 12, 1), date(2027, 1, 31))


def test_art_10_1_2_upgrade_in_the_last_month_of_the_term_counts_one_month() -> None:
    """Named for April 2027, the last month of 2026-05..2027-04: remaining = 1;
    floor((300000 - 180000) x 1 / 12) = 10000."""
    c = active(cycle=ANNUAL, approved_at=jst(2026, 4, 10), until=Month(2026, 5))
    change = c.request_change(plan("kintone", "premium"), None, Month(2027, 4), jst(2026, 6, 10), CAL)
    assert (change.remaining_months, change.upgrade_charge) == (1, 10000)


# --------------------------------------------------------------------------- Art. 9.4 late interest
def _garoon_100() -> Contract:
    """garoon standard x 100 monthly, approved 2026-03-24: April invoice 1000 x 100 = 100000 + tax 10000
    = 110000, due 2026-05-31 (the spec's example invoice)."""
    return active(service="garoon", grade="standard", users=100, until=Month(2026, 4))


def test_art_9_4_late_interest_spec_example_1310_yen() -> None:
    """110,000 due 2026-05-31 paid 2026-07-01: Jun 1..Jun 30 = 30 days ->
    floor(110000 x 0.145 x 30 / 365) = floor(1310.96) = 1310."""
    c = _garoon_100()
    april = invoice(c, "2026-04")
    assert (april.total, april.due_on) == (110000, date(2026, 5, 31))
    c.receive_payment(april.invoice_id, 110000, date(2026, 7, 1), jst(2026, 7, 1))
    assert c.ledger.invoices[april.invoice_id].late_interest(date(2026, 7, 1), RATE) == 1310
    # interest is not taxed and not added to the invoice: the invoice is settled
    assert c.ledger.invoices[april.invoice_id].outstanding == 0


def test_art_9_4_partial_payments_reduce_the_unpaid_amount_from_their_day() -> None:
    """50,000 paid 06-11, 60,000 paid 07-01.
    Jun 1..Jun 10: 10 days x 110000 = 1,100,000; Jun 11..Jun 30: 20 days x 60000 = 1,200,000.
    floor(2,300,000 x 0.145 / 365) = floor(333500 / 365) = floor(913.70) = 913."""
    c = _garoon_100()
    april = invoice(c, "2026-04")
    c.receive_payment(april.invoice_id, 50000, date(2026, 6, 11), jst(2026, 6, 11))
    c.receive_payment(april.invoice_id, 60000, date(2026, 7, 1), jst(2026, 7, 1))
    assert c.ledger.invoices[april.invoice_id].late_interest(date(2026, 7, 1), RATE) == 913


def test_art_9_4_interest_as_of_a_date_while_unpaid() -> None:
    """Unpaid, as of 2026-06-16: Jun 1..Jun 15 = 15 days -> floor(110000 x 0.145 x 15 / 365)
    = floor(239250 / 365) = floor(655.48) = 655. As of 06-01 (day after due): 0 days -> 0."""
    inv = invoice(_garoon_100(), "2026-04")
    assert inv.late_interest(date(2026, 6, 16), RATE) == 655
    assert inv.late_interest(date(2026, 6, 1), RATE) == 0
    assert inv.late_interest(date(2026, 5, 31), RATE) == 0


def test_art_9_4_payment_on_the_due_date_or_the_day_after_costs_nothing() -> None:
    c = _garoon_100()
    april = invoice(c, "2026-04")
    c.receive_payment(april.invoice_id, 110000, date(2026, 5, 31), jst(2026, 5, 31))
    assert c.ledger.invoices[april.invoice_id].late_interest(date(2026, 8, 1), RATE) == 0
    c2 = _garoon_100()
    april2 = invoice(c2, "2026-04")
    # paid 06-01: from the day after the due date (06-01) to the day before payment (05-31): no day
    c2.receive_payment(april2.invoice_id, 110000, date(2026, 6, 1), jst(2026, 6, 1))
    assert c2.ledger.invoices[april2.invoice_id].late_interest(date(2026, 8, 1), RATE) == 0


def test_art_9_4_one_day_late() -> None:
    """Paid 06-02: one day (06-01) -> floor(110000 x 0.145 / 365) = floor(43.70) = 43."""
    c = _garoon_100()
    april = invoice(c, "2026-04")
    c.receive_payment(april.invoice_id, 110000, date(2026, 6, 2), jst(2026, 6, 2))
    assert c.ledger.invoices[april.invoice_id].late_interest(date(2026, 6, 2), RATE) == 43


def test_art_9_4_365_day_year_even_across_feb_29_2028() -> None:
    """garoon x 100 approved 2027-11-10: December 2027 invoice 110,000 due 2028-01-31, paid 2028-03-01.
    Feb 1..Feb 29 = 29 days; floor(110000 x 0.145 x 29 / 365) = floor(462550 / 365) = floor(1267.26)
    = 1267 (a 366-day year would give 1263)."""
    c = active(service="garoon", grade="standard", users=100, approved_at=jst(2027, 11, 10), until=Month(2027, 12))
    dec = invoice(c, "2027-12")
    assert (dec.total, dec.due_on) == (110000, date(2028, 1, 31))
    c.receive_payment(dec.invoice_id, 110000, date(2028, 3, 1), jst(2028, 3, 1))
    assert c.ledger.invoices[dec.invoice_id].late_interest(date(2028, 3, 1), RATE) == 1267


def test_art_9_4_interest_rounded_down_per_invoice() -> None:
    """April (due 05-31) and May (due 06-30), both 110,000 and unpaid, as of 2026-07-02:
    April Jun 1..Jul 1 = 31 days: 110000 x 0.145 x 31 / 365 = 1354.66 -> 1354;
    May Jul 1 = 1 day: 43.70 -> 43. Per-invoice floors sum to 1397 (one floor would give 1398)."""
    c = active(service="garoon", grade="standard", users=100, until=Month(2026, 5))
    assert c.ledger.late_interest(date(2026, 7, 2), RATE) == 1397


# --------------------------------------------------------------------------- Art. 9.5: no proration, no refund
def test_art_9_5_no_refund_overpayment_refused() -> None:
    c = _garoon_100()
    april = invoice(c, "2026-04")
    assert_refused(c, lambda: c.receive_payment(april.invoice_id, 110001, date(2026, 5, 1), jst(2026, 5, 1)),
                   RuleViolation, "Art. 9.5")


def test_spec_6_invoice_ids_derive_from_contract_and_period() -> None:
    """Replaying the events gives the same invoice ids; another contract's invoices of the same
    months have other ids."""
    c = active(until=Month(2026, 6))
    events = c.collect_events()
    again = replay(events)
    assert sorted(again.ledger.invoices) == sorted(c.ledger.invoices)
    assert summary(again) == summary(c)
    other = active(until=Month(2026, 6))
    assert not set(other.ledger.invoices) & set(c.ledger.invoices)
    assert [i.period for i in sorted(c.ledger.invoices.values(), key=lambda i: i.issued_on)] == [
        "2026-04", "2026-05", "2026-06"]
