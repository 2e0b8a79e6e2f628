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


def _fiscal_year_start_445(anchor: date, day: date, long_years: frozenset[int]) -> tuple[date, int]:
    """Start and label of the fiscal year containing `day`: 52-week years from the anchor in both
    directions, 53 weeks in the years listed. The anchor's year is named by the calendar year of its 52nd
    week's last day, and the years around it count on from there (so a 53-week year never renames the
    next one)."""
    label = (anchor + timedelta(days=363)).year
    if not long_years:
        years = (day - anchor).days // 364
        start = anchor + timedelta(days=364 * years)
        return start, (start + timedelta(days=363)).year
    start = anchor
    while day < start:
        label -= 1
        start -= timedelta(days=7 * _weeks(label, long_years))
    while day >= start + timedelta(days=7 * _weeks(label, long_years)):
        start += timedelta(days=7 * _weeks(label, long_years))
        label += 1
    return start, label


def _weeks(label: int, long_years: frozenset[int]) -> int:
    return 53 if label in long_years else 52


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
    long_years = frozenset(calendar.week_53_years)
    year_start, fiscal_year = _fiscal_year_start_445(calendar.fiscal_year_start, first, long_years)
    while year_start <= last:
        if not long_years:  # as before 53-week years existed: named by the year's last day
            fiscal_year = (year_start + timedelta(days=363)).year
        extra_week = _weeks(fiscal_year, long_years) - 52
        cursor = year_start
        for number, weeks in enumerate(_WEEKS_445, start=1):
            # the 53rd week, when the year has one, closes the last period
            end = cursor + timedelta(days=7 * (weeks + (extra_week if number == 12 else 0)) - 1)
            if end >= first and cursor <= last:
                periods.append(Period(f"FY{fiscal_year}-P{number:02d}", cursor, end))
            cursor = end + timedelta(days=1)
        year_start = cursor
        fiscal_year += 1
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
