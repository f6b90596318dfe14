"""Japanese national holidays from the maintained ``holidays`` package (spec 1).

``holidays.Japan`` includes substitute holidays (振替休日) and citizens' holidays (国民の休日),
e.g. 2026-09-22 between Respect for the Aged Day and the Autumnal Equinox Day.
"""

from __future__ import annotations

import threading
from datetime import date

from holidays.countries.japan import Japan

from domain.calendar import BusinessCalendar
from domain.errors import InvalidInput
from domain.policy import Policy


class JapaneseHolidays:
    """``domain.calendar.HolidayCalendar`` backed by ``holidays.Japan``, cached per year."""

    def __init__(self) -> None:
        self._years: dict[int, frozenset[date]] = {}
        self._lock = threading.Lock()

    def is_holiday(self, day: date) -> bool:
        return day in self._holidays_of(day.year)

    def _holidays_of(self, year: int) -> frozenset[date]:
        cached = self._years.get(year)
        if cached is None:
            self._check_year(year)
            with self._lock:
                cached = self._years.setdefault(year, frozenset(Japan(years=year)))
        return cached

    @staticmethod
    def _check_year(year: int) -> None:
        first, last = Japan.start_year, Japan.end_year
        if not first <= year <= last:
            # Outside its range the library silently returns no holidays: refuse instead.
            raise InvalidInput("rule book 1", f"no Japanese holiday data for {year} (have {first}-{last})", "date")


_SHARED = JapaneseHolidays()


def business_calendar(policy: Policy) -> BusinessCalendar:
    """The business calendar of spec 1: Japanese holidays plus the POLICY year-end break."""
    return BusinessCalendar(holidays=_SHARED, year_end_break=policy.year_end_break)
