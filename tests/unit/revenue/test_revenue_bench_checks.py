"""The revenue benchmark's correctness checks fail on wrong figures: a wrong engine posts no timings."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bench.revenue import (
    BenchCheckFailed,
    expected_prices,
    lifetime_revenue_mismatches,
    portfolio,
    unbalanced_journals,
    verify,
)
from pssync.revenue import parse_scenario, run_scenario
from pssync.revenue.result import JournalEntry, JournalLine


def test_lifetime_revenue_check_passes_on_the_reference_portfolio_and_fails_on_a_wrong_price() -> None:
    scenario = parse_scenario(portfolio(3))
    result = run_scenario(scenario)
    prices = expected_prices(scenario)

    assert lifetime_revenue_mismatches(result, prices) == []
    assert unbalanced_journals(result.journals()) == []

    wrong = {**prices, "C000001": prices["C000001"] + Decimal("0.01")}
    [mismatch] = lifetime_revenue_mismatches(result, wrong)
    assert mismatch.startswith("C000001: lifetime revenue ")
    assert lifetime_revenue_mismatches(result, {**prices, "C999999": Decimal(1)}) == ["C999999: no result"]


def test_an_unbalanced_journal_entry_is_reported() -> None:
    entry = JournalEntry(
        contract_id="C1",
        legal_entity="LE-US",
        period="2024-01",
        currency="USD",
        lines=[
            JournalLine(account="receivable", debit=Decimal("100.00"), credit=Decimal("0.00")),
            JournalLine(account="revenue", debit=Decimal("0.00"), credit=Decimal("99.99")),
        ],
        functional_currency="USD",
        functional_lines=None,
        explanation="",
        causing_event_ids=[],
    )

    assert unbalanced_journals([entry]) == ["C1 2024-01: debits 100.00 != credits 99.99 USD"]


def test_verify_raises_when_a_size_reports_a_failed_check() -> None:
    verify([{"n": 1000, "lifetime_revenue_mismatches": 0, "unbalanced_journal_entries": 0}])

    with pytest.raises(BenchCheckFailed, match="n=10000: 1 lifetime revenue mismatch"):
        verify(
            [
                {"n": 1000, "lifetime_revenue_mismatches": 0},
                {"n": 10000, "lifetime_revenue_mismatches": 1, "check_failures": ["C000042: ..."]},
            ]
        )
    with pytest.raises(BenchCheckFailed, match="2 unbalanced journal"):
        verify([{"n": 1000, "lifetime_revenue_mismatches": 0, "unbalanced_journal_entries": 2}])
