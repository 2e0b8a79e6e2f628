"""Reporting periods (calendar months or 4-4-5 fiscal periods) as plain ordinal-day ranges."""

from __future__ import annotations

import bisect
from calendar import monthrange
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pssync.revenue.models import CalendarSpec

_WEEKS_445 = (4, 4, 5) * 4


@dataclass(frozen=True, slots=True)
class Period:
    key: str
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def _fiscal_year_start_445(anchor: date, day: date) -> date:
    # 52-week years from the anchor, in both directions.
    years = (day - anchor).days // 364
    return anchor + timedelta(days=364 * years)


def periods_covering(calendar: CalendarSpec, first: date, last: date) -> list[Period]:
    """Consecutive periods from the one containing `first` to the one containing `last`."""
    periods: list[Period] = []
    if calendar.kind == "calendar_month":
        cursor = _month_start(first)
        while cursor <= last:
            following = _next_month(cursor)
            periods.append(
                Period(f"{cursor.year:04d}-{cursor.month:02d}", cursor, following - timedelta(days=1))
            )
            cursor = following
        return periods
    assert calendar.fiscal_year_start is not None
    year_start = _fiscal_year_start_445(calendar.fiscal_year_start, first)
    while year_start <= last:
        fiscal_year = (year_start + timedelta(days=363)).year
        cursor = year_start
        for number, weeks in enumerate(_WEEKS_445, start=1):
            end = cursor + timedelta(days=7 * weeks - 1)
            if end >= first and cursor <= last:
                periods.append(Period(f"FY{fiscal_year}-P{number:02d}", cursor, end))
            cursor = end + timedelta(days=1)
        year_start = cursor
    return periods


class PeriodIndex:
    """Looks up which period a day falls into (ordinals, bisect)."""

    def __init__(self, periods: list[Period]) -> None:
        self.periods = periods
        self.end_ordinals = [p.end.toordinal() for p in periods]
        self.end_position = {ordinal: i for i, ordinal in enumerate(self.end_ordinals)}
        # (start, end) ordinals of a ratable term -> (first period, last period, aligned on period bounds)
        self.term_cache: dict[tuple[int, int], tuple[int, int, bool, list[int]]] = {}
        # Shared time-elapsed measures keyed by term and evaluated days (see progress._ratable).
        self.measure_cache: dict[tuple[object, ...], Any] = {}
        self.start_ordinals = [p.start.toordinal() for p in periods]
        self.position = {p.key: i for i, p in enumerate(periods)}

    def index_of(self, day: date) -> int:
        """Index of the period containing `day`; days after the horizon map past the last index."""
        return bisect.bisect_left(self.end_ordinals, day.toordinal())


def add_months(day: date, months: int) -> date:
    """The same day `months` calendar months later (earlier when negative), or the last day of that month
    when it is shorter: Mar 31 + 1 month = Apr 30, Jan 31 + 1 month = Feb 28 (Feb 29 in a leap year)."""
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(year, month + 1, min(day.day, monthrange(year, month + 1)[1]))
