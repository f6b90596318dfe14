"""JST calendar: months, business days, notice deadlines (spec 1 and 5, Art. 10).

Holidays are injected (``HolidayCalendar``) so the domain stays free of third-party
code; ``infrastructure.japanese_holidays`` supplies the maintained ``holidays`` data.
"""

from __future__ import annotations

import calendar as _stdcal
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

from domain.errors import InvalidInput

JST = ZoneInfo("Asia/Tokyo")


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month, e.g. ``Month(2026, 4)``; written ``2026-04``."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1 <= self.year <= 9998:
            raise InvalidInput("rule book 1", f"no such month {self.year}-{self.month}", "month")

    @classmethod
    def parse(cls, text: str) -> Month:
        """``"2026-04"`` -> ``Month(2026, 4)``; cached, as projections decode the same months often."""
        return _parse_month(text) if cls is Month else cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> Month:
        try:
            y, m = text.split("-")
            if len(y) != 4 or len(m) != 2:
                raise ValueError
            return cls(int(y), int(m))
        except ValueError:
            raise InvalidInput("rule book 1", "month must be YYYY-MM", "month") from None

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def plus(self, months: int) -> Month:
        index = self.year * 12 + (self.month - 1) + months
        return Month(index // 12, index % 12 + 1)

    def minus(self, other: Month) -> int:
        """Number of months from ``other`` to ``self`` (``self - other``)."""
        return (self.year - other.year) * 12 + (self.month - other.month)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def days(self) -> int:
        return _stdcal.monthrange(self.year, self.month)[1]

    @property
    def last_day(self) -> date:
        return date(self.year, self.month, self.days)


@lru_cache(maxsize=4096)
def _parse_month(text: str) -> Month:
    return Month._parse(text)


def require_aware(instant: datetime, field: str = "at") -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidInput("rule book 1", "instants must carry a timezone (ISO 8601 with offset)", field)
    return instant


def jst_date(instant: datetime) -> date:
    """The Tokyo calendar date of an instant (2026-03-31T15:30Z is 2026-04-01)."""
    return require_aware(instant).astimezone(JST).date()


def jst_start(day: date) -> datetime:
    """00:00 JST of ``day`` (the instant a business day begins), in UTC: 2026-07-01 -> 2026-06-30T15:00Z."""
    return datetime(day.year, day.month, day.day, tzinfo=JST).astimezone(UTC)


def jst_month(instant: datetime) -> Month:
    return Month.of(jst_date(instant))


class HolidayCalendar(Protocol):
    def is_holiday(self, day: date) -> bool: ...


@dataclass(frozen=True)
class YearEndBreak:
    """POLICY ``year_end_break``: an inclusive span that wraps the new year (Dec 29 - Jan 3)."""

    start_month: int = 12
    start_day: int = 29
    end_month: int = 1
    end_day: int = 3

    @classmethod
    def parse(cls, text: str) -> YearEndBreak:
        """``"12-29..01-03"``; an empty string means no break."""
        if not text:
            return cls(1, 1, 0, 0)
        try:
            a, b = text.split("..")
            sm, sd = (int(x) for x in a.split("-"))
            em, ed = (int(x) for x in b.split("-"))
            date(2024, sm, sd), date(2024, em, ed)
        except ValueError:
            raise InvalidInput("rule book 1", "year_end_break must look like 12-29..01-03", "year_end_break") from None
        return cls(sm, sd, em, ed)

    def contains(self, day: date) -> bool:
        if self.end_month == 0:
            return False
        key = (day.month, day.day)
        start, end = (self.start_month, self.start_day), (self.end_month, self.end_day)
        if start <= end:
            return start <= key <= end
        return key >= start or key <= end


@dataclass(frozen=True)
class BusinessCalendar:
    """Japanese business days (営業日): Mon-Fri, not a national holiday, not in the year-end break."""

    holidays: HolidayCalendar
    year_end_break: YearEndBreak = YearEndBreak()

    def is_business_day(self, day: date) -> bool:
        return (
            day.weekday() < 5
            and not self.holidays.is_holiday(day)
            and not self.year_end_break.contains(day)
        )

    def notice_deadline(self, month: Month) -> date:
        """Art. 10.1: the 5th business day counted back from the month's last day (exclusive)."""
        day, counted = month.last_day, 0
        while counted < 5:
            day -= timedelta(days=1)
            if self.is_business_day(day):
                counted += 1
        return day

    def earliest_effective_month(self, received_on: date) -> Month:
        """Art. 10.1 / 10.2: in time for M -> M+1, late -> M+2 (JST date of receipt)."""
        month = Month.of(received_on)
        return month.plus(1) if received_on <= self.notice_deadline(month) else month.plus(2)

    def effective_month(self, received_on: date, requested: Month | None) -> Month:
        """A later requested month is kept; an earlier (or missing) one moves to the earliest."""
        earliest = self.earliest_effective_month(received_on)
        if requested is None or requested < earliest:
            return earliest
        return requested
