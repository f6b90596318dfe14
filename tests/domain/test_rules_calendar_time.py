"""Spec 1 (JST months, business days, notice deadlines) and spec 5 / Art. 10 (effective months),
as the Contract aggregate applies them. Dates are worked out by hand on a wall calendar."""

from __future__ import annotations

from datetime import date

import pytest
from contract_kit import ANNUAL, CAL, active, jst, names, utc

from domain.calendar import Month, jst_date, jst_month
from domain.errors import InvalidInput


# --------------------------------------------------------------------------- spec 1: JST decides the month
@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (utc(2026, 3, 31, 15, 30), Month(2026, 4)),  # 2026-04-01 00:30 JST: April (spec 1 example)
        (utc(2026, 3, 31, 15, 0), Month(2026, 4)),  # exactly midnight JST
        (utc(2026, 3, 31, 14, 59), Month(2026, 3)),  # 23:59 JST on March 31
        (utc(2026, 12, 31, 15, 0), Month(2027, 1)),  # new year in Tokyo, still Dec 31 in UTC
    ],
)
def test_spec_1_jst_date_of_an_instant_decides_the_month(instant, expected) -> None:
    assert jst_month(instant) == expected


def test_spec_1_naive_timestamps_are_refused() -> None:
    from datetime import datetime

    with pytest.raises(InvalidInput) as info:
        jst_date(datetime(2026, 4, 1, 10))
    assert info.value.article == "rule book 1"


# --------------------------------------------------------------------------- spec 1: business days
@pytest.mark.parametrize(
    ("day", "business"),
    [
        (date(2026, 4, 28), True),  # Tuesday
        (date(2026, 4, 29), False),  # Wednesday, Showa Day
        (date(2026, 5, 6), False),  # Wednesday, substitute holiday for Constitution Day (Sun May 3)
        (date(2026, 9, 22), False),  # Tuesday, citizens' holiday between Sep 21 and Sep 23
        (date(2026, 12, 28), True),  # Monday before the year-end break
        (date(2026, 12, 29), False),  # Tuesday, year-end break (POLICY)
        (date(2026, 12, 30), False),  # Wednesday, year-end break
        (date(2027, 1, 4), True),  # Monday after the break
        (date(2028, 2, 23), False),  # Wednesday, Emperor's Birthday
        (date(2026, 5, 30), False),  # Saturday
    ],
)
def test_spec_1_business_days(day, business) -> None:
    assert CAL.is_business_day(day) is business


# --------------------------------------------------------------------------- Art. 10.1: notice deadlines
@pytest.mark.parametrize(
    ("month", "deadline"),
    [
        # Apr 30 (Thu) is the last day, not counted; 28, 27, 24, 23, 22 (29 = Showa Day) -> 04-22
        (Month(2026, 4), date(2026, 4, 22)),
        # May 31 (Sun) not counted; 29, 28, 27, 26, 25 -> 05-25
        (Month(2026, 5), date(2026, 5, 25)),
        # Dec 31 not counted, 29/30 year-end break; 28, 25, 24, 23, 22 -> 12-22
        (Month(2026, 12), date(2026, 12, 22)),
        # leap February: Feb 29 (Tue) not counted; 28, 25, 24, (23 holiday), 22, 21 -> 02-21
        (Month(2028, 2), date(2028, 2, 21)),
        # March 2027: Mar 31 (Wed) not counted; 30, 29, 26, 25, 24 -> 03-24
        (Month(2027, 3), date(2027, 3, 24)),
    ],
)
def test_art_10_1_notice_deadline_is_5th_business_day_before_month_end(month, deadline) -> None:
    assert CAL.notice_deadline(month) == deadline


@pytest.mark.parametrize(
    ("received", "effective"),
    [
        (date(2026, 4, 22), Month(2026, 5)),  # on the deadline: in time for M+1 (spec 5 example)
        (date(2026, 4, 23), Month(2026, 6)),  # after it: M+2 (Art. 10.2, spec 5 example)
        (date(2026, 12, 22), Month(2027, 1)),  # December deadline
        (date(2026, 12, 24), Month(2027, 2)),  # spec 5 example: late in December -> February next year
        (date(2028, 2, 21), Month(2028, 3)),  # leap February deadline
        (date(2028, 2, 22), Month(2028, 4)),
    ],
)
def test_art_10_2_earliest_effective_month(received, effective) -> None:
    assert CAL.earliest_effective_month(received) == effective


# --------------------------------------------------------------------------- the aggregate uses JST receipt dates
@pytest.mark.parametrize(
    ("at", "last_month"),
    [
        (utc(2026, 4, 22, 14, 59), Month(2026, 5)),  # 2026-04-22 23:59 JST: in time -> May
        (utc(2026, 4, 22, 15, 0), Month(2026, 6)),  # 2026-04-23 00:00 JST: late -> June
    ],
)
def test_art_10_1_notice_receipt_day_is_the_jst_day(at, last_month) -> None:
    c = active(until=Month(2026, 4))
    assert c.notice_termination(None, at, CAL) == last_month
    assert c.termination_month == last_month


def test_art_10_2_earlier_requested_month_is_moved_and_both_recorded() -> None:
    """Notice 2026-04-23 naming May: the earliest is June; the event keeps May as requested."""
    c = active(until=Month(2026, 4))
    c.collect_events()
    c.notice_termination(Month(2026, 5), jst(2026, 4, 23), CAL)
    (e,) = c.collect_events()
    assert names([e]) == ["TerminationNoticed"]
    assert e.requested_month == Month(2026, 5)
    assert e.effective_month == Month(2026, 6)
    assert e.received_on == date(2026, 4, 23)


def test_art_10_1_later_requested_month_is_kept() -> None:
    c = active(until=Month(2026, 4))
    c.collect_events()
    c.notice_termination(Month(2026, 9), jst(2026, 4, 10), CAL)
    (e,) = c.collect_events()
    assert (e.requested_month, e.effective_month) == (Month(2026, 9), Month(2026, 9))


def test_art_10_year_end_break_change_notice_on_dec_23_takes_february() -> None:
    """Dec 23 2026 is after the Dec 22 deadline (year-end break counts as non-business): Feb 2027."""
    c = active(until=Month(2026, 12))
    change = c.request_change(None, 12, None, jst(2026, 12, 23), CAL)
    assert change.effective_month == Month(2027, 2)


def test_art_10_annual_notice_in_leap_february() -> None:
    """Annual term 2027-04..2028-03 (approved 2027-03-10): a notice on 2028-02-21 is in time for
    March 2028, which is the term's last month, so the contract ends 2028-03-31."""
    c = active(service="garoon", grade="standard", cycle=ANNUAL, approved_at=jst(2027, 3, 10), until=Month(2027, 4))
    assert c.notice_termination(None, jst(2028, 2, 21), CAL) == Month(2028, 3)
