"""Spec 10 retention, as the terms and the law say (issue 15): stored data after Art. 15.3's
retention period, contractor data after the records period, privacy-policy requests.

The worked example, by hand: monthly from April 2026, termination noticed for June, so the
contract ends 2026-06-30 with invoices for 2026-04, 05 and 06 (issued on the 1st of each month).
- Stored data (Art. 15.3, POLICY retention_days 60): 2026-06-30 + 60 days = 2026-08-29
  (July has 31 days: 07-31 is +31, 08-29 is +60).
- Contractor data (Art. 13 with the records rule: Corporate Tax Act 7 years, Consumption Tax Act
  Art. 57-4(1)(6)): the last invoice, 2026-06-01, lies in the fiscal year ending 2027-03-31
  (POLICY fiscal_year_end 03-31). The law counts the 7 years (POLICY records_retention_years) from
  the day after the return's filing deadline, 2 months after the year end (POLICY
  records_filing_months 2; 法人税法施行規則 59条, 法人税法 74条; rule book 10 counts from the year end,
  and the law wins): deadline 2027-05-31, kept until 2034-05-31, erased on 2034-06-01.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from contract_kit import CAL, CONTRACTOR, POLICY, active, assert_refused, invoice, jst, names, numbers, replay, trial

from domain.calendar import Month
from domain.contract import Contract
from domain.errors import InvalidInput, RuleViolation
from domain.retention import FiscalYearEnd, Owed, contractor_data_erasure_on, records_kept_until
from domain.settlement import CustomerAccount

PHONE = {**CONTRACTOR, "contact_name": "Hanako Sample", "contact_phone": "03-0000-0000"}


def ended_2026_06_30(pay: bool = True) -> Contract:
    c = active(until=Month(2026, 6))
    c.notice_termination(Month(2026, 6), jst(2026, 5, 1), CAL)
    c.advance_to(Month(2026, 7), POLICY, numbers())
    assert c.ended_on == date(2026, 6, 30)
    assert sorted(i.period for i in c.ledger.invoices.values()) == ["2026-04", "2026-05", "2026-06"]
    if pay:
        for i in c.ledger.invoices.values():
            c.receive_payment(i.invoice_id, i.total, date(2026, 7, 20), jst(2026, 7, 20))
    c.collect_events()
    return c


# --------------------------------------------------------------------------- the rule functions
def test_spec_10_fiscal_year_holding_an_invoice() -> None:
    fye = FiscalYearEnd.parse("03-31")
    assert fye.end_of_year_holding(date(2026, 6, 1)) == date(2027, 3, 31)
    assert fye.end_of_year_holding(date(2027, 3, 31)) == date(2027, 3, 31)  # the last day is in the year
    assert fye.end_of_year_holding(date(2027, 4, 1)) == date(2028, 3, 31)
    assert FiscalYearEnd.parse("12-31").end_of_year_holding(date(2026, 6, 1)) == date(2026, 12, 31)
    for bad in ("02-29", "13-01", "0331", "x"):
        with pytest.raises(InvalidInput):
            FiscalYearEnd.parse(bad)


def test_spec_10_corporate_tax_act_records_period() -> None:
    """Invoice 2026-06-01 -> fiscal year ends 2027-03-31 -> + 7 years = 2034-03-31. Counted as the
    law counts (from the day after the filing deadline, 2 months after the year end: 2027-06-01):
    kept until 2034-05-31. Year end 12-31, 2 months: deadline 2027-02-28, kept until 2034-02-28."""
    assert records_kept_until(date(2026, 6, 1), FiscalYearEnd(3, 31), 7) == date(2034, 3, 31)
    assert records_kept_until(date(2026, 6, 1), FiscalYearEnd(3, 31), 7, filing_months=2) == date(2034, 5, 31)
    assert records_kept_until(date(2026, 6, 1), FiscalYearEnd(12, 31), 7, filing_months=2) == date(2034, 2, 28)
    assert records_kept_until(date(2026, 6, 1), FiscalYearEnd(12, 31), 7) == date(2033, 12, 31)
    assert records_kept_until(None, FiscalYearEnd(3, 31), 7) is None  # no invoice, no records


def test_spec_10_erasure_date_rule() -> None:
    fye = FiscalYearEnd(3, 31)
    deletion = date(2026, 8, 29)
    assert contractor_data_erasure_on(deletion, date(2026, 6, 1), Owed(), fye, 7) == date(2034, 4, 1)
    assert contractor_data_erasure_on(deletion, None, Owed(), fye, 7) == deletion  # no invoice ever
    assert contractor_data_erasure_on(None, date(2026, 6, 1), Owed(), fye, 7) is None  # contract lasts
    assert contractor_data_erasure_on(deletion, date(2026, 6, 1), Owed(principal=13200), fye, 7) is None
    assert contractor_data_erasure_on(deletion, date(2026, 6, 1), Owed(unapplied_credit=2000), fye, 7) is None
    late = Owed(last_settled_on=date(2034, 5, 10))
    assert contractor_data_erasure_on(deletion, date(2026, 6, 1), late, fye, 7) == date(2034, 5, 11)


# --------------------------------------------------------------------------- Art. 15.3 stored data
def test_art_15_3_stored_data_deleted_on_day_60_and_contractor_data_untouched() -> None:
    c = ended_2026_06_30()
    assert c.retention_until == date(2026, 8, 29)
    assert_refused(c, lambda: c.delete_stored_data(date(2026, 8, 28)), RuleViolation, "Art. 15.3")
    c.delete_stored_data(date(2026, 8, 29))
    [e] = c.collect_events()
    assert type(e).__name__ == "StoredDataDeleted"
    assert (e.originator_id, e.service, e.deleted_on) == (c.id, "kintone", date(2026, 8, 29))
    assert c.stored_data_deleted_on == date(2026, 8, 29)
    assert not c.data_deleted and c.contractor == CONTRACTOR  # contractor data is not stored data
    assert_refused(c, lambda: c.delete_stored_data(date(2026, 9, 1)), RuleViolation, "Art. 15.3")


def test_art_15_3_no_stored_data_deletion_while_in_service() -> None:
    c = active()
    assert_refused(c, lambda: c.delete_stored_data(date(2030, 1, 1)), RuleViolation, "Art. 15.3")


# --------------------------------------------------------------------------- Art. 13 contractor data
def test_art_13_contractor_data_kept_until_2034_05_31_erased_2034_06_01() -> None:
    c = ended_2026_06_30()
    assert c.last_invoice_on() == date(2026, 6, 1)
    assert c.records_kept_until(POLICY) == date(2034, 5, 31)
    assert c.contractor_data_erasure_on(POLICY) == date(2034, 6, 1)
    totals = sorted(i.total for i in c.ledger.invoices.values())
    assert {i.recipient for i in c.ledger.invoices.values()} == {CONTRACTOR["name"]}
    assert_refused(c, lambda: c.erase_contractor_data(date(2034, 5, 31), POLICY), RuleViolation,
                   "Art. 13")
    c.erase_contractor_data(date(2034, 6, 1), POLICY)
    # Art. 57-4(1)(6) names the recipient; once its key is destroyed the live state reads as a replay does
    assert {i.recipient for i in c.ledger.invoices.values()} == {"[erased]"}
    [e] = c.collect_events()
    assert (type(e).__name__, e.erased_on) == ("ContractorDataErased", date(2034, 6, 1))
    assert "2034-05-31" in e.reason
    assert c.data_deleted and c.contractor == {} and c.contractor_erased_on == date(2034, 6, 1)
    assert sorted(i.total for i in c.ledger.invoices.values()) == totals  # every amount stays
    assert_refused(c, lambda: c.erase_contractor_data(date(2034, 6, 2), POLICY), RuleViolation, "Art. 13")
    assert_refused(c, lambda: c.change_contractor({"name": "x"}, jst(2034, 6, 2)), RuleViolation, "Art. 12.1")


def test_art_13_not_erased_while_an_invoice_is_unpaid_then_per_the_rule() -> None:
    """June's invoice (13,200 yen) unpaid: nothing is erased on 2034-06-01; paid 2034-07-10, so
    the data goes the day after, 2034-07-11. Paid before the records period ends: 2034-06-01."""
    c = ended_2026_06_30(pay=False)
    for period in ("2026-04", "2026-05"):
        i = invoice(c, period)
        c.receive_payment(i.invoice_id, i.total, date(2026, 7, 20), jst(2026, 7, 20))
    june = invoice(c, "2026-06")
    assert june.outstanding == 13200
    assert c.contractor_data_erasure_on(POLICY) is None
    assert_refused(c, lambda: c.erase_contractor_data(date(2034, 6, 1), POLICY), RuleViolation,
                   "Art. 13")
    paid_early = ended_2026_06_30(pay=False)
    for i in paid_early.ledger.invoices.values():
        paid_early.receive_payment(i.invoice_id, i.total, date(2027, 1, 15), jst(2027, 1, 15))
    assert paid_early.contractor_data_erasure_on(POLICY) == date(2034, 6, 1)
    c.receive_payment(june.invoice_id, 13200, date(2034, 7, 10), jst(2034, 7, 10))
    assert c.contractor_data_erasure_on(POLICY) == date(2034, 7, 11)
    assert_refused(c, lambda: c.erase_contractor_data(date(2034, 7, 10), POLICY), RuleViolation,
                   "Art. 13")
    c.erase_contractor_data(date(2034, 7, 11), POLICY)
    assert c.data_deleted


def test_art_13_unapplied_credit_is_owed() -> None:
    c = ended_2026_06_30()
    c.ledger.pending_credits.append(("claim", 2000))  # a fee reduction granted, no invoice left to take it
    assert c.owed().describe() == "unapplied credit 2000 yen"
    assert c.contractor_data_erasure_on(POLICY) is None


def test_rule_book_10_and_7_a_credit_balance_owed_to_the_customer_holds_the_erasure() -> None:
    """Rule book 10 keeps contractor data "while anything is owed": the customer's credit balance
    (rule book 7, here 5,000 yen of an overpayment) is owed by the provider to the customer. Ended
    2026-06-30, invoices paid: without credit erased on 2034-06-01; with 5,000 credit nothing goes
    on 2034-06-01 (refused, pointing at the customer's account) and no date is known; refunded on
    2034-06-15 (credit 0), the rule gives 2034-06-01 again, so the data goes on the next run."""
    c = ended_2026_06_30()
    assert c.owed(5_000).describe() == "credit balance owed to the customer 5000 yen"
    assert c.contractor_data_erasure_on(POLICY, 5_000) is None
    with pytest.raises(RuleViolation) as refused:
        c.erase_contractor_data(date(2034, 6, 1), POLICY, customer_credit=5_000)
    assert refused.value.article == "Art. 13" and "refund it to the customer (rule book 7)" in str(refused.value)
    assert refused.value.refers_to == {"customer_account": str(CustomerAccount.create_id(c.customer_number))}
    assert c.collect_events() == [] and not c.data_deleted
    answer = c.answer_privacy_request("erase", jst(2034, 6, 2), POLICY, customer_credit=5_000)
    assert answer["kept_until"] is None and "credit balance owed to the customer 5000 yen" in answer["kept_because"]
    c.collect_events()
    assert c.contractor_data_erasure_on(POLICY, 0) == date(2034, 6, 1)
    c.erase_contractor_data(date(2034, 6, 15), POLICY, customer_credit=0)
    assert c.data_deleted


def test_rule_book_10_and_7_no_invoice_but_credit_owed_is_not_erased_at_once() -> None:
    """An expired trial has no records to keep, but a customer credit balance of 3,000 yen (money
    received, owed back) keeps the name for the refund: an erase request erases the contacts only."""
    c = trial(at=jst(2026, 3, 2))
    c.expire_trial(date(2026, 4, 1), POLICY)
    answer = c.answer_privacy_request("erase", jst(2026, 4, 5), POLICY, customer_credit=3_000)
    assert answer["erased_fields"] == ["contact_email"] and answer["kept_fields"] == ["address", "name"]
    assert not c.data_deleted
    assert_refused(c, lambda: c.erase_contractor_data(date(2026, 5, 31), POLICY, 3_000), RuleViolation, "Art. 13")


def test_art_13_no_invoice_ever_goes_with_the_stored_data() -> None:
    """Trial from 2026-03-02 expires 04-01: stored data and contractor data both go on 05-31."""
    c = trial(at=jst(2026, 3, 2))
    c.expire_trial(date(2026, 4, 1), POLICY)
    assert c.retention_until == date(2026, 5, 31)
    assert c.contractor_data_erasure_on(POLICY) == date(2026, 5, 31)
    assert_refused(c, lambda: c.erase_contractor_data(date(2026, 5, 30), POLICY), RuleViolation, "Art. 13")
    c.erase_contractor_data(date(2026, 5, 31), POLICY)
    assert c.data_deleted and "no invoice" in c.collect_events()[-1].reason


def test_art_13_contract_in_force_is_never_erased() -> None:
    c = active()
    assert c.contractor_data_erasure_on(POLICY) is None
    assert_refused(c, lambda: c.erase_contractor_data(date(2040, 1, 1), POLICY), RuleViolation, "Art. 13")


def test_spec_10_records_period_is_policy() -> None:
    c = ended_2026_06_30()
    policy = replace(POLICY, records_retention_years=10, fiscal_year_end=FiscalYearEnd(12, 31))
    # FY 2026-12-31, filing deadline 2027-02-28, + 10 years = 2037-02-28, erased the next day
    assert c.contractor_data_erasure_on(policy) == date(2037, 3, 1)
    from_year_end = replace(policy, records_filing_months=0)  # rule book 10's count, from the year end
    assert c.contractor_data_erasure_on(from_year_end) == date(2037, 1, 1)
    assert c.contractor_data_erasure_on(replace(POLICY, records_filing_months=0)) == date(2034, 4, 1)
    assert c.contractor_data_erasure_on(POLICY) == date(2034, 6, 1)  # the law's count is the default


# --------------------------------------------------------------------------- privacy policy 7 requests
def test_privacy_policy_7_erasure_request_erases_contacts_keeps_the_invoice_recipient() -> None:
    c = ended_2026_06_30()
    c.change_contractor(PHONE, jst(2026, 7, 21))
    answer = c.answer_privacy_request("erase", jst(2026, 8, 1), POLICY)
    assert answer["erased_fields"] == ["contact_email", "contact_name", "contact_phone"]
    assert answer["kept_fields"] == ["address", "name"]
    assert answer["kept_until"] == date(2034, 5, 31)
    assert "Corporate Tax Act" in answer["kept_because"] and "Art. 57-4" in answer["kept_because"]
    events = c.collect_events()
    assert names(events)[-1] == "PrivacyRequestAnswered"
    assert events[-1].request == "erase" and events[-1].kept_until == date(2034, 5, 31)
    assert c.contractor == {"name": CONTRACTOR["name"], "address": CONTRACTOR["address"], "contacts": "[erased]"}
    assert c.contacts_erased_on == date(2026, 8, 1) and not c.data_deleted
    # the contacts cannot come back; the record fields can still be corrected (Art. 12.1)
    assert_refused(c, lambda: c.change_contractor(PHONE, jst(2026, 8, 2)), RuleViolation, "privacy policy 7")
    c.change_contractor({"name": "Example Trading Co., Ltd."}, jst(2026, 8, 2))


def test_privacy_policy_7_while_owed_or_in_force_says_why_without_a_date() -> None:
    c = active(until=Month(2026, 6))
    answer = c.answer_privacy_request("stop_use", jst(2026, 6, 10), POLICY)
    assert answer["kept_until"] is None and "still in force" in answer["kept_because"]
    assert answer["erased_fields"] == ["contact_email"]


def test_privacy_policy_7_without_records_everything_goes_at_once() -> None:
    c = trial(at=jst(2026, 3, 2))
    c.expire_trial(date(2026, 4, 1), POLICY)
    answer = c.answer_privacy_request("erase", jst(2026, 4, 5), POLICY)
    assert answer["erased_fields"] == ["address", "contact_email", "name"] and answer["kept_fields"] == []
    assert names(c.collect_events())[-2:] == ["PrivacyRequestAnswered", "ContractorDataErased"]
    assert c.data_deleted and c.contractor_erased_on == date(2026, 4, 5)


def test_privacy_policy_7_refusals() -> None:
    c = active()
    assert_refused(c, lambda: c.answer_privacy_request("forget", jst(2026, 4, 5), POLICY), InvalidInput,
                   "privacy policy 7")


def test_privacy_policy_7_replay_equals_live_state() -> None:
    c = active(until=Month(2026, 6))
    c.answer_privacy_request("erase", jst(2026, 6, 10), POLICY)
    c.change_contractor({"name": "New Name K.K."}, jst(2026, 6, 11))
    replayed = replay(c.collect_events())
    assert replayed.contractor == c.contractor == {"name": "New Name K.K."}
    assert replayed.contacts_erased_on == c.contacts_erased_on == date(2026, 6, 10)


def test_rule_book_10_and_7_refunded_credit_owed_back_by_the_customer_holds_the_erasure() -> None:
    """A reversed transfer whose 4,000 yen credit had been refunded leaves the customer owing it (credit
    balance -4,000): owed the other way round, so the contractor data is kept too."""
    c = ended_2026_06_30()
    assert c.owed(-4_000).describe() == "refunded credit of a reversed transfer, owed by the customer 4000 yen"
    assert c.contractor_data_erasure_on(POLICY, -4_000) is None
    assert_refused(c, lambda: c.erase_contractor_data(date(2034, 6, 1), POLICY, -4_000), RuleViolation, "Art. 13")
