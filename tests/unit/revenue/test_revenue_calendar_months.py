"""Month arithmetic follows the calendar: the same day N months later, else the last day of that month."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from pssync.revenue.periods import add_months


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2023, 3, 31), 1, date(2023, 4, 30)),  # not Apr 28
        (date(2023, 8, 31), 1, date(2023, 9, 30)),
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),  # leap year
        (date(2024, 1, 30), 1, date(2024, 2, 29)),
        (date(2023, 1, 29), 1, date(2023, 2, 28)),
        (date(2023, 5, 31), 9, date(2024, 2, 29)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2024, 2, 29), 48, date(2028, 2, 29)),
        (date(2023, 12, 31), 2, date(2024, 2, 29)),
        (date(2023, 12, 15), 1, date(2024, 1, 15)),
        (date(2023, 3, 31), -1, date(2023, 2, 28)),
        (date(2024, 1, 31), -2, date(2023, 11, 30)),
        (date(2023, 6, 30), 0, date(2023, 6, 30)),
    ],
)
def test_add_months_keeps_the_day_or_takes_the_last_day_of_the_month(
    day: date, months: int, expected: date
) -> None:
    assert add_months(day, months) == expected


def test_the_31st_lands_on_the_last_day_of_each_following_month() -> None:
    start = date(2023, 1, 31)
    for months in range(1, 25):
        shifted = add_months(start, months)
        assert (shifted.year - start.year) * 12 + shifted.month - start.month == months
        assert (shifted + timedelta(days=1)).day == 1, shifted  # the last day of its month
