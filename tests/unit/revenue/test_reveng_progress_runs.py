"""Stepping and point-in-time measures are built one run of days at a time; these hold them to the day-by-day
definition (the last step on or before each day; control from the transfer day on)."""

from __future__ import annotations

import bisect
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from pssync.revenue.models import (
    CalendarSpec,
    ObligationSatisfied,
    PointInTimePattern,
    ProgressReport,
    ProgressRounding,
    SurveyedProgressPattern,
)
from pssync.revenue.periods import PeriodIndex, periods_covering
from pssync.revenue.progress import _step_runs, measure

START = date(2024, 1, 1)
PERIODS = PeriodIndex(periods_covering(CalendarSpec(kind="calendar_month"), START, date(2026, 12, 31)))
offsets = st.integers(min_value=-40, max_value=1200)
sorted_days = st.lists(offsets, max_size=40).map(lambda xs: sorted(START.toordinal() + x for x in xs))


@given(st.lists(offsets, max_size=12).map(lambda xs: sorted(START.toordinal() + x for x in xs)), sorted_days)
def test_step_runs_give_each_day_the_number_of_steps_on_or_before_it(step_days: list[int], days: list[int]):
    expanded = [index for index, count in _step_runs(step_days, days) for _ in range(count)]
    assert expanded == [bisect.bisect_right(step_days, d) for d in days]
    assert all(count > 0 for _, count in _step_runs(step_days, days))


@given(
    st.lists(st.tuples(offsets, st.integers(min_value=0, max_value=100)), max_size=8),
    sorted_days,
    st.booleans(),
)
def test_surveyed_progress_is_the_last_report_on_or_before_each_day(
    reports: list[tuple[int, int]], days: list[int], explain: bool
):
    events = sorted(
        (
            ProgressReport(
                id=f"r{n}",
                on=START + timedelta(days=offset),
                contract_id="K",
                obligation_id="O",
                percent_complete=Decimal(percent),
            )
            for n, (offset, percent) in enumerate(reports)
        ),
        key=lambda e: (e.on, e.id),
    )
    policy = ProgressRounding(round_to_percent_decimals=None)
    m = measure(SurveyedProgressPattern(), events, days, policy, PERIODS, 2, 0, explain=explain, cache={})
    for position, day in enumerate(days):
        known = [e for e in events if e.on.toordinal() <= day]
        expected = (known[-1].percent_complete, Decimal(100)) if known else (Decimal(0), Decimal(1))
        assert Decimal(m.nums[position]) / m.dens[position] == min(expected[0] / expected[1], Decimal(1))
        if explain:
            assert m.causes[position] == (known[-1].id if known else None)
            assert m.inputs[position].startswith(
                f"surveyed {known[-1].percent_complete} %" if known else "no"
            )
    assert len(m.nums) == len(m.dens) == len(days)
    assert (len(m.causes), len(m.inputs)) == ((len(days), len(days)) if explain else (0, 0))


@given(
    st.one_of(st.none(), offsets),
    st.one_of(st.none(), offsets),
    sorted_days,
)
def test_point_in_time_transfers_from_the_earlier_of_the_stated_day_and_the_satisfied_event(
    stated: int | None, event_offset: int | None, days: list[int]
):
    stated_on = None if stated is None else START + timedelta(days=stated)
    events = (
        []
        if event_offset is None
        else [
            ObligationSatisfied(
                id="s", on=START + timedelta(days=event_offset), contract_id="K", obligation_id="O"
            )
        ]
    )
    m = measure(PointInTimePattern(satisfied_on=stated_on), events, days, ProgressRounding(), PERIODS, 2, 0)
    candidates = [d for d in (stated_on, events[0].on if events else None) if d is not None]
    transfer = min(candidates) if candidates else None
    from_event = bool(events) and (stated_on is None or events[0].on <= stated_on)
    for position, day in enumerate(days):
        done = transfer is not None and day >= transfer.toordinal()
        assert (m.nums[position], m.dens[position]) == ((1, 1) if done else (0, 1))
        assert m.causes[position] == ("s" if done and from_event else None)
    assert m.description == (
        f"point in time, control transferred {transfer}" if transfer else "point in time (not yet satisfied)"
    )
