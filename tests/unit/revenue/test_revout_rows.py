"""The stream's cheaper row building (output.RunRows) gives the report models' rows exactly.

RunRows builds schedule references from one measure per track piece, journal causes from those references,
and formats each distinct amount of a contract once; the in-memory reports explain every period and build a
model per line. These hold the two equal on generated portfolios (several states of knowledge, adjustments,
a functional currency) without the stream around them, and the helpers to their plain definitions.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_revenue_stream_portfolios import as_text, portfolios

from pssync.revenue import RevenueRuleError, parse_scenario, run_scenario
from pssync.revenue.engine import run as run_engine
from pssync.revenue.output import (
    amount_text,
    amount_texts,
    balance_rows,
    balance_rows_of,
    journal_rows,
    journal_rows_of,
    schedule_rows,
    schedule_rows_of,
)
from pssync.revenue.result.fx import FxConverter
from pssync.revenue.result.journals import entry_lines
from pssync.revenue.result.rollforward import rolled


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(document=portfolios(), as_of=st.sampled_from([None, "2024-06-30", "2025-03-15"]))
def test_run_rows_equal_the_report_models_rows(document: dict[str, Any], as_of: str | None) -> None:
    from datetime import date

    scenario = parse_scenario(as_text(document))
    as_of_day = date.fromisoformat(as_of) if as_of else None
    try:
        result = run_scenario(scenario, as_of=as_of_day)
    except RevenueRuleError:
        return  # refusals are the stream tests' concern
    run = run_engine(scenario, as_of_day)
    fx = FxConverter(run)
    assert list(schedule_rows(run, fx)) == list(schedule_rows_of(result.schedule(include_zero=True)))
    assert list(journal_rows(run, fx)) == list(journal_rows_of(result.journals()))
    assert list(balance_rows(run)) == list(balance_rows_of(result.rollforward()))


@given(
    values=st.lists(
        st.one_of(st.sampled_from([0, 1, -1, 99, 100, 12_345, -12_345]), st.integers(-(10**15), 10**15)),
        max_size=80,
    ),
    exponent=st.sampled_from([0, 2, 3]),
)
def test_amount_texts_are_each_amounts_text_with_or_without_repeats(values: list[int], exponent: int) -> None:
    text = amount_text(exponent)
    assert amount_texts(exponent, values) == [text(units) for units in values]
    repeated = values * 3  # fewer than half distinct: the path that formats each distinct value once
    assert amount_texts(exponent, repeated) == [text(units) for units in repeated]


def _entry_by_definition(row: tuple[int, ...]) -> list[tuple[str, int]]:
    """The journal entry as first written: every candidate line, those that moved kept in order."""
    revenue, billed, paid = row[0], row[1], row[2]
    candidates = [
        ("receivable", billed),
        ("cash", paid),
        ("receivable", -paid),
        ("contract_asset", row[6] - row[5]),
        ("contract_liability", -(row[8] - row[7])),
        ("revenue", -revenue),
    ]
    return [(account, amount) for account, amount in candidates if amount]


amounts = st.integers(-(10**9), 10**9)


@given(periods=st.lists(st.tuples(amounts, amounts, amounts), min_size=1, max_size=24))
def test_entry_lines_are_the_moved_lines_of_the_rollforward_and_balance(
    periods: list[tuple[int, int, int]],
) -> None:
    revenue, billed, paid = (list(column) for column in zip(*periods, strict=True))
    frame: Any = SimpleNamespace(as_of_index=len(periods) - 1)
    for row in rolled(frame, revenue, billed, paid):
        lines = entry_lines(row)
        assert lines == _entry_by_definition(row)
        assert sum(units for _, units in lines) == 0
