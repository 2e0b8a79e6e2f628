"""4-4-5 calendars with 53-week years: the 53rd week closes the year's last period."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from revenue_builders import D, contract, ratable

from pssync.revenue import CalendarSpec, schedule_for
from pssync.revenue.periods import periods_covering

FAST = settings(max_examples=60, deadline=None)
# Fiscal years ending on the Saturday nearest 31 December: FY2026 ends on 2 January 2027, so it has 53 weeks.
RETAIL = CalendarSpec(kind="4-4-5", fiscal_year_start=date(2024, 12, 29), week_53_years=[2026])


def test_the_53rd_week_is_added_to_the_last_period_and_the_next_year_starts_after_it() -> None:
    periods = {p.key: p for p in periods_covering(RETAIL, date(2025, 1, 1), date(2027, 2, 1))}

    assert periods["FY2025-P12"].end == date(2025, 12, 27)
    assert periods["FY2025-P12"].days == 35
    assert periods["FY2026-P01"].start == date(2025, 12, 28)
    assert periods["FY2026-P12"].days == 42
    assert periods["FY2026-P12"].end == date(2027, 1, 2)
    assert periods["FY2027-P01"].start == date(2027, 1, 3)
    assert sum(p.days for key, p in periods.items() if key.startswith("FY2026")) == 371


def test_ratable_service_over_a_53_week_year() -> None:
    """1,200 over FY2026: by period, 100 each (the 6-week P12 too); by day, P12 earns 1,200 x 42 / 371."""
    start, end = date(2025, 12, 28), date(2027, 1, 2)
    by_period = schedule_for(
        contract("F", [ratable("s", 1200, start, end)], 1200, effective=start), calendar=RETAIL
    )
    by_day = schedule_for(
        contract("F", [ratable("s", 1200, start, end, basis="daily")], 1200, effective=start),
        calendar=RETAIL,
    )

    assert set(by_period.period_revenue("F").values()) == {D("100.00")}
    assert by_day.period_revenue("F")["FY2026-P12"] == D("135.85")
    assert sum(by_day.period_revenue("F").values()) == D("1200.00")


def test_years_before_the_anchor_follow_the_list_too() -> None:
    """The anchor's year is named by the calendar year of its 52nd week's last day (3 January 2027 + 363
    days = 1 January 2028: FY2028); the years before it count down from there."""
    calendar = CalendarSpec(kind="4-4-5", fiscal_year_start=date(2027, 1, 3), week_53_years=[2027])
    periods = {p.key: p for p in periods_covering(calendar, date(2026, 1, 1), date(2027, 1, 10))}

    assert periods["FY2027-P01"].start == date(2025, 12, 28)
    assert periods["FY2027-P12"].end == date(2027, 1, 2)
    assert periods["FY2028-P01"].start == date(2027, 1, 3)


def test_week_53_years_need_a_4_4_5_calendar() -> None:
    with pytest.raises(ValidationError, match="4-4-5 calendar only"):
        CalendarSpec(week_53_years=[2026])


@FAST
@given(
    anchor_offset=st.integers(min_value=-3000, max_value=3000),
    long_years=st.sets(st.integers(min_value=2010, max_value=2040), max_size=6),
    first_offset=st.integers(min_value=-2500, max_value=2500),
    span=st.integers(min_value=0, max_value=1500),
)
def test_periods_are_contiguous_and_years_have_52_or_53_weeks_as_listed(
    anchor_offset: int, long_years: set[int], first_offset: int, span: int
) -> None:
    anchor = date(2025, 1, 1) + timedelta(days=anchor_offset)
    calendar = CalendarSpec(kind="4-4-5", fiscal_year_start=anchor, week_53_years=sorted(long_years))
    first = date(2025, 1, 1) + timedelta(days=first_offset)
    periods = periods_covering(calendar, first, first + timedelta(days=span))

    assert periods[0].start <= first <= periods[0].end
    assert all(b.start == a.end + timedelta(days=1) for a, b in pairwise(periods))
    for period in periods:
        number = int(period.key[-2:])
        weeks = (4, 4, 5)[(number - 1) % 3] + (
            1 if number == 12 and int(period.key[2:6]) in long_years else 0
        )
        assert period.days == 7 * weeks
