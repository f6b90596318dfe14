"""Spec 1 (JST, business days) and Art. 10 (notice deadlines, effective months).

Expected dates are worked out by hand from a 2026/2027/2028 wall calendar and the spec.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.calendar import BusinessCalendar, Month, YearEndBreak, jst_date, jst_month
from domain.errors import InvalidInput
from domain.policy import Policy
from infrastructure.japanese_holidays import JapaneseHolidays, business_calendar

CAL = business_calendar(Policy())


# --------------------------------------------------------------------------- Art. 10.1 notice deadlines


def test_art_10_1_notice_deadline_april_2026_skips_showa_day() -> None:
    """Apr 30 (Thu) excluded; 28, 27, 24, 23, 22 count (29 is Showa Day) -> 2026-04-22."""
    assert CAL.notice_deadline(Month(2026, 4)) == date(2026, 4, 22)


def test_art_10_1_notice_deadline_may_2026() -> None:
    """May 31 (Sun) excluded; 29, 28, 27, 26, 25 -> 2026-05-25."""
    assert CAL.notice_deadline(Month(2026, 5)) == date(2026, 5, 25)


def test_art_10_1_notice_deadline_december_2026_skips_year_end_break() -> None:
    """Dec 31 excluded, Dec 30 and 29 are the year-end break; 28, 25, 24, 23, 22 -> 2026-12-22."""
    assert CAL.notice_deadline(Month(2026, 12)) == date(2026, 12, 22)


def test_art_10_1_notice_deadline_september_2026_silver_week() -> None:
    """Sep 30 (Wed) excluded; 29, 28, 25, 24 count; 23, 22 (citizens' holiday), 21 are holidays;
    19-20 weekend; 18 (Fri) is the 5th -> 2026-09-18."""
    assert JapaneseHolidays().is_holiday(date(2026, 9, 22))  # 国民の休日, not in any hand table
    assert CAL.notice_deadline(Month(2026, 9)) == date(2026, 9, 18)


def test_art_10_1_notice_deadline_leap_february_2028() -> None:
    """Feb 2028 has 29 days; Feb 29 (Tue) excluded; 28 (Mon), 25 (Fri), 24 count; 23 is the
    Emperor's Birthday; 22, 21 -> 2028-02-21."""
    assert Month(2028, 2).days == 29
    assert CAL.notice_deadline(Month(2028, 2)) == date(2028, 2, 21)


# --------------------------------------------------------------------------- Art. 10.2 effective months


@pytest.mark.parametrize(
    ("received", "effective"),
    [
        (date(2026, 4, 22), Month(2026, 5)),  # on the deadline: in time for M+1
        (date(2026, 4, 23), Month(2026, 6)),  # after it: M+2
        (date(2026, 12, 24), Month(2027, 2)),  # after Dec 22: across the year
    ],
)
def test_art_10_2_earliest_effective_month(received: date, effective: Month) -> None:
    assert CAL.earliest_effective_month(received) == effective


def test_art_10_2_later_requested_month_is_kept() -> None:
    assert CAL.effective_month(date(2026, 4, 23), Month(2026, 9)) == Month(2026, 9)


def test_art_10_2_earlier_requested_month_is_moved_to_earliest() -> None:
    assert CAL.effective_month(date(2026, 4, 23), Month(2026, 5)) == Month(2026, 6)
    assert CAL.effective_month(date(2026, 4, 23), None) == Month(2026, 6)


# --------------------------------------------------------------------------- spec 1 JST and business days


def test_spec_1_jst_date_of_utc_instant_crosses_into_april() -> None:
    instant = datetime(2026, 3, 31, 15, 30, tzinfo=UTC)  # 2026-04-01 00:30 JST
    assert jst_date(instant) == date(2026, 4, 1)
    assert jst_month(instant) == Month(2026, 4)
    assert jst_date(instant - timedelta(minutes=31)) == date(2026, 3, 31)  # 23:59 JST


def test_spec_1_naive_datetime_is_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        jst_date(datetime(2026, 4, 1, 0, 30))
    assert err.value.article == "rule book 1"


def test_spec_1_year_end_break_days_are_not_business_days() -> None:
    assert not CAL.is_business_day(date(2026, 1, 2))  # Friday, not a national holiday
    assert not CAL.is_business_day(date(2026, 12, 30))  # Wednesday
    assert CAL.is_business_day(date(2027, 1, 4))  # Monday after the break
    assert CAL.is_business_day(date(2027, 1, 5))


def test_spec_1_year_end_break_is_a_policy_value() -> None:
    no_break = BusinessCalendar(JapaneseHolidays(), YearEndBreak.parse(""))
    assert no_break.is_business_day(date(2026, 12, 30))
    assert no_break.notice_deadline(Month(2026, 12)) == date(2026, 12, 24)  # 30, 29, 28, 25, 24


def test_spec_1_substitute_holiday_is_not_a_business_day() -> None:
    assert not CAL.is_business_day(date(2026, 5, 6))  # 振替休日 for Constitution Day on a Sunday


def test_spec_1_month_arithmetic_across_years() -> None:
    assert Month(2026, 12).plus(1) == Month(2027, 1)
    assert Month(2026, 11).plus(14) == Month(2028, 1)
    assert Month(2027, 1).plus(-1) == Month(2026, 12)
    assert Month(2027, 2).minus(Month(2026, 4)) == 10
    assert str(Month.parse("2027-02")) == "2027-02"
    assert Month(2026, 12) < Month(2027, 1)


# --------------------------------------------------------------------------- property


@settings(max_examples=300, deadline=None)
@given(st.builds(Month, st.integers(1960, 2098), st.integers(1, 12)))
def test_art_10_1_deadline_is_the_fifth_business_day_back(month: Month) -> None:
    """The deadline is a business day of M, and exactly 4 business days lie strictly between
    it and the month's last day (the last day itself is never counted)."""
    deadline = CAL.notice_deadline(month)
    assert CAL.is_business_day(deadline)
    assert Month.of(deadline) == month
    between = [deadline + timedelta(days=n) for n in range(1, (month.last_day - deadline).days)]
    assert sum(CAL.is_business_day(d) for d in between) == 4
