"""Spec 8 / Art. 17, 20, 21: outage claims assessed by the contract, credits and the liability cap.

Reference contract: kintone premium x 12 monthly approved 2026-03-24: 2500 x 12 = 30000 yen a month
from April 2026 (premium has no campaign).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import pytest
from contract_kit import (
    ANNUAL,
    CAL,
    POLICY,
    active,
    assert_refused,
    invoice,
    jst,
    lines,
    names,
    numbers,
    outage,
    trial,
    utc,
)

from domain.calendar import Month
from domain.contract import Contract
from domain.errors import InvalidInput, RuleViolation
from domain.sla import ClaimAssessment, OutageCause, Remedy

JUNE_2026 = Month(2026, 6)


def _premium(until: Month = JUNE_2026) -> Contract:
    c = active(grade="premium", users=12, until=until)
    c.collect_events()
    return c


def _claim(c: Contract, start: datetime, end: datetime, received: datetime,
           cause: OutageCause = OutageCause.PROVIDER_NETWORK, payment: bool = True, breach: bool = True,
           service: str | None = None) -> tuple[uuid.UUID, ClaimAssessment]:
    claim_id = uuid.uuid4()
    facts = outage(service or c.service, start, end, cause)
    return claim_id, c.claim_sla(claim_id, facts, received, payment, breach, "ticket #1", POLICY)


# the spec's reference outage: 2026-06-10 09:00 JST .. 06-12 11:00 JST = 50 hours
START, END_50H = jst(2026, 6, 10, 9), jst(2026, 6, 12, 11)


def test_art_20_1_fifty_hour_outage_credit_days_minimum_maximum() -> None:
    """50h -> floor(50 / 24) = 2 credit days. Breach at start + 24h = 06-11 09:00 JST (June, 30 days).
    minimum = floor(30000 x 2 / 30) = 2000; maximum = one month's fee = 30000; cap (Art. 21.1) 30000."""
    c = _premium()
    _, a = _claim(c, START, END_50H, jst(2026, 6, 20))
    assert names(c.collect_events()) == ["SlaBreachClaimed"]
    assert (a.eligible, a.reason) == (True, None)
    assert (a.breach_date, a.breach_month) == (date(2026, 6, 11), Month(2026, 6))
    assert (a.credit_days, a.minimum, a.maximum, a.liability_cap) == (2, 2000, 30000, 30000)


def test_art_20_1_exactly_24_hours_is_too_short() -> None:
    c = _premium()
    _, a = _claim(c, START, START + timedelta(hours=24), jst(2026, 6, 20))
    assert not a.eligible
    assert a.reason is not None and a.reason.startswith("Art. 20.1")
    assert (a.credit_days, a.minimum, a.maximum) == (0, 0, 0)


def test_art_20_1_one_minute_over_24_hours_breaches_for_one_day() -> None:
    """24h01m -> 1 credit day; minimum floor(30000 x 1 / 30) = 1000."""
    c = _premium()
    _, a = _claim(c, START, START + timedelta(hours=24, minutes=1), jst(2026, 6, 20))
    assert (a.eligible, a.credit_days, a.minimum) == (True, 1, 1000)


@pytest.mark.parametrize("cause", [c for c in OutageCause if c is not OutageCause.PROVIDER_NETWORK])
def test_art_20_2_and_art_17_excluded_causes_never_breach(cause) -> None:
    c = _premium()
    _, a = _claim(c, START, END_50H, jst(2026, 6, 20), cause=cause)
    assert not a.eligible
    assert a.reason is not None and a.reason.startswith("Art. 20.2 / Art. 17")


def test_art_20_3_claim_on_day_60_is_valid_day_61_is_late() -> None:
    """Breach date 06-11; + 60 days = 08-10 (06-30 is +19, 07-31 is +50)."""
    _, on_time = _claim(_premium(), START, END_50H, jst(2026, 8, 10, 23, 59))
    assert on_time.eligible
    _, late = _claim(_premium(), START, END_50H, jst(2026, 8, 11, 0, 0))
    assert not late.eligible
    assert late.reason is not None and late.reason.startswith("Art. 20.3")
    # the receipt day is the JST day: 2026-08-10T15:00Z is already 08-11 in Tokyo
    _, late_utc = _claim(_premium(), START, END_50H, utc(2026, 8, 10, 15, 0))
    assert not late_utc.eligible


@pytest.mark.parametrize(("payment", "breach", "missing"),
                         [(False, True, "payment"), (True, False, "breach"), (False, False, "payment and breach")])
def test_art_20_3_missing_proof(payment, breach, missing) -> None:
    c = _premium()
    claim_id, a = _claim(c, START, END_50H, jst(2026, 6, 20), payment=payment, breach=breach)
    assert not a.eligible
    assert a.reason == f"Art. 20.3: missing proof of {missing}"
    (e,) = c.collect_events()
    assert (e.proof_of_payment, e.proof_of_breach) == (payment, breach)  # what was supplied is recorded


def test_art_20_2_1_trial_not_covered_and_no_liability() -> None:
    c = trial(at=jst(2026, 6, 1))
    _, a = _claim(c, START, END_50H, jst(2026, 6, 20))
    assert not a.eligible
    assert a.reason is not None and a.reason.startswith("Art. 20.2.1") and "trial" in a.reason
    assert a.liability_cap == 0  # Art. 21.1


def test_art_20_2_1_beta_not_covered_and_no_liability() -> None:
    c = active(service="mailwise-beta", grade="standard", users=5, until=Month(2026, 6))
    _, a = _claim(c, START, END_50H, jst(2026, 6, 20))
    assert not a.eligible
    assert a.reason is not None and a.reason.startswith("Art. 20.2.1") and "beta" in a.reason
    assert a.liability_cap == 0


def test_art_20_2_1_store_not_covered_and_no_liability() -> None:
    c = active(service="store", grade="free", users=1, until=Month(2026, 6))
    _, a = _claim(c, START, END_50H, jst(2026, 6, 20))
    assert not a.eligible
    assert a.reason is not None and a.reason.startswith("Art. 20.2.1") and "store" in a.reason
    assert a.liability_cap == 0


def test_art_20_breach_month_is_the_jst_month_of_start_plus_24h() -> None:
    """Start 2026-06-29T16:00Z (06-30 01:00 JST), 50h: breach 07-01 01:00 JST -> July (31 days).
    minimum = floor(30000 x 2 / 31) = floor(1935.48) = 1935."""
    c = _premium(until=Month(2026, 7))
    _, a = _claim(c, utc(2026, 6, 29, 16), utc(2026, 6, 29, 16) + timedelta(hours=50), jst(2026, 7, 5))
    assert (a.breach_date, a.breach_month, a.minimum) == (date(2026, 7, 1), Month(2026, 7), 1935)


def test_art_20_leap_february_has_29_days() -> None:
    """72h outage breaching in February 2028: 3 days; minimum = floor(30000 x 3 / 29) = floor(3103.45) = 3103."""
    c = _premium(until=Month(2028, 2))
    _, a = _claim(c, jst(2028, 2, 10, 9), jst(2028, 2, 13, 9), jst(2028, 2, 20))
    assert (a.breach_month, a.credit_days, a.minimum, a.maximum) == (Month(2028, 2), 3, 3103, 30000)


def test_art_20_minimum_never_exceeds_one_month() -> None:
    """40-day outage: 40 x 30000 / 30 = 40000 > one month, so minimum = maximum = 30000."""
    c = _premium()
    _, a = _claim(c, jst(2026, 5, 1, 9), jst(2026, 6, 10, 9), jst(2026, 6, 12))
    assert (a.credit_days, a.minimum, a.maximum) == (40, 30000, 30000)


def test_art_20_annual_contract_maximum_is_annual_total_over_12() -> None:
    """garoon standard x 10 annual: 11400 x 10 = 114000 / 12 = 9500 a month;
    minimum = floor(9500 x 2 / 30) = floor(633.3) = 633."""
    c = active(service="garoon", grade="standard", cycle=ANNUAL, until=Month(2026, 6))
    _, a = _claim(c, START, END_50H, jst(2026, 6, 20))
    assert (a.eligible, a.credit_days, a.minimum, a.maximum, a.liability_cap) == (True, 2, 633, 9500, 9500)


def test_art_20_1_breach_before_paid_service_not_covered() -> None:
    """A concluded contract whose first month is April has no paid service in March."""
    c = _premium(until=Month(2026, 6))
    _, a = _claim(c, jst(2026, 3, 10, 9), jst(2026, 3, 12, 11), jst(2026, 3, 20))
    assert not a.eligible


# --------------------------------------------------------------------------- remedies (Art. 20.1)
def test_art_20_1_default_remedy_is_the_minimum_as_fee_reduction_on_the_next_invoice() -> None:
    """2000 credited on the July invoice: 30000 - 2000 = 28000, tax 2800, total 30800."""
    c = _premium()
    claim_id, _ = _claim(c, START, END_50H, jst(2026, 6, 20))
    c.decide_claim(claim_id, None, None, jst(2026, 6, 22), POLICY)
    (_, granted) = c.collect_events()
    assert names([granted]) == ["CreditGranted"]
    assert (granted.remedy, granted.amount, granted.credit_days) == ("fee_reduction", 2000, 2)
    c.advance_to(Month(2026, 7), POLICY, numbers())
    july = invoice(c, "2026-07")
    assert lines(july) == {"base_fee": 30000, "sla_credit": -2000, "tax": 2800}
    assert july.total == 30800
    assert next(line for line in july.lines if line.kind == "sla_credit").rule.startswith("Art. 20.1")


def test_art_20_1_provider_may_grant_up_to_one_month() -> None:
    c = _premium()
    claim_id, _ = _claim(c, START, END_50H, jst(2026, 6, 20))
    assert_refused(c, lambda: c.decide_claim(claim_id, Remedy.FEE_REDUCTION, 1999, jst(2026, 6, 22), POLICY),
                   InvalidInput, "Art. 20.1")
    assert_refused(c, lambda: c.decide_claim(claim_id, Remedy.FEE_REDUCTION, 30001, jst(2026, 6, 22), POLICY),
                   InvalidInput, "Art. 20.1")
    c.decide_claim(claim_id, Remedy.REFUND, 30000, jst(2026, 6, 22), POLICY, numbers())
    # refund of the breach month's fee with its consumption tax: 30,000 + 3,000, by a credit note (rule book 8)
    assert invoice(c, "2026-06").refunded == 33000
    (note,) = [i for i in c.ledger.invoices.values() if i.document_type == "credit_note"]
    assert (note.kind, note.total, note.issued_on) == ("sla_refund", 33000, date(2026, 6, 22))
    assert note.original is not None and note.original["number"] == invoice(c, "2026-06").number
    assert_refused(c, lambda: c.decide_claim(claim_id, None, None, jst(2026, 6, 23), POLICY),
                   RuleViolation, "Art. 20.1")


def test_art_20_1_extension_remedy_extends_the_end_of_service() -> None:
    """Extension by 2 credit days: noticed end 2026-08-31 becomes 09-02; retention 09-02 + 60 = 11-01."""
    c = _premium()
    claim_id, _ = _claim(c, START, END_50H, jst(2026, 6, 20))
    c.decide_claim(claim_id, Remedy.EXTENSION, 2000, jst(2026, 6, 22), POLICY)
    c.notice_termination(None, jst(2026, 7, 10), CAL)
    c.advance_to(Month(2026, 9), POLICY, numbers())
    assert (c.ended_on, c.retention_until) == (date(2026, 9, 2), date(2026, 11, 1))


def test_art_20_ineligible_claim_is_rejected_with_its_reason_and_cannot_be_granted() -> None:
    c = _premium()
    claim_id, _ = _claim(c, START, START + timedelta(hours=24), jst(2026, 6, 20))
    assert_refused(c, lambda: c.decide_claim(claim_id, Remedy.REFUND, 0, jst(2026, 6, 22), POLICY),
                   RuleViolation, "Art. 20.1")
    c.decide_claim(claim_id, None, None, jst(2026, 6, 22), POLICY)
    (e,) = c.collect_events()
    assert names([e]) == ["CreditRejected"]
    assert e.reason.startswith("Art. 20.1")


def test_art_20_claim_refusals() -> None:
    c = _premium()
    claim_id, _ = _claim(c, START, END_50H, jst(2026, 6, 20))
    facts = c.claims[claim_id].outage
    # the same outage twice
    assert_refused(c, lambda: c.claim_sla(uuid.uuid4(), facts, jst(2026, 6, 21), True, True, "", POLICY),
                   RuleViolation, "Art. 20.3")
    # an outage of another service
    other = outage("garoon", START, END_50H)
    assert_refused(c, lambda: c.claim_sla(uuid.uuid4(), other, jst(2026, 6, 21), True, True, "", POLICY),
                   RuleViolation, "Art. 20.1")
    # unknown claim
    assert_refused(c, lambda: c.decide_claim(uuid.uuid4(), None, None, jst(2026, 6, 22), POLICY),
                   InvalidInput, "Art. 20.3")
