"""Any partition of a portfolio into shards gives the whole run's schedule, journals and balances.

The period close's Distributed Map runs the portfolio in shards; it is only right if every contract's
figures depend on nothing but its own versions and events and the portfolio frame (periods, as_of, closes,
FX). Each shard is run against the frame of the whole scenario (`frame_for`); the union of the shards' rows
must be the whole run's rows, line for line.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_revenue_stream_portfolios import as_text, portfolios

from bench.revenue import portfolio_json
from pssync.revenue import RevenueRuleError, Scenario, parse_scenario, run_scenario
from pssync.revenue.engine import EngineRun
from pssync.revenue.models import PeriodClose
from pssync.revenue.output import (
    balance_rows,
    balance_rows_of,
    journal_rows,
    journal_rows_of,
    schedule_rows,
    schedule_rows_of,
)
from pssync.revenue.result.fx import FxConverter
from pssync.revenue.streaming import PortfolioFrame, frame_for, run_shard

Rows = dict[str, list[tuple[str, ...]]]


def _whole(scenario: Scenario) -> Rows:
    result = run_scenario(scenario)
    return {
        "schedule": list(schedule_rows_of(result.schedule(include_zero=True))),
        "journals": list(journal_rows_of(result.journals())),
        "balances": list(balance_rows_of(result.rollforward())),
    }


def _shard(scenario: Scenario, contract_ids: set[str]) -> Scenario:
    """The shard's versions and events; the header (calendar, FX) comes from the frame when it runs."""
    return scenario.model_copy(
        update={
            "contracts": [c for c in scenario.contracts if c.contract_id in contract_ids],
            "events": [
                e for e in scenario.events if not isinstance(e, PeriodClose) and e.contract_id in contract_ids
            ],
        }
    )


def _rows(run: EngineRun) -> Rows:
    fx = FxConverter(run)
    return {
        "schedule": list(schedule_rows(run, fx)),
        "journals": list(journal_rows(run, fx)),
        "balances": list(balance_rows(run)),
    }


def _sharded(scenario: Scenario, frame: PortfolioFrame, shard_of: dict[str, int]) -> Rows:
    union: Rows = {"schedule": [], "journals": [], "balances": []}
    for shard in sorted(set(shard_of.values())):
        ids = {cid for cid, s in shard_of.items() if s == shard}
        for kind, rows in _rows(run_shard(frame, _shard(scenario, ids))).items():
            union[kind].extend(rows)
    return union


@st.composite
def sharded_portfolios(draw: st.DrawFn) -> tuple[Scenario, dict[str, int]]:
    document: dict[str, Any] = draw(portfolios(max_contracts=8))
    scenario = parse_scenario(as_text(document))
    contract_ids = sorted({c.contract_id for c in scenario.contracts})
    shards = draw(st.integers(1, len(contract_ids)))
    shard_of = {cid: draw(st.integers(0, shards - 1)) for cid in contract_ids}
    return scenario, shard_of


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=sharded_portfolios())
def test_any_sharding_gives_the_whole_runs_schedule_journals_and_balances(
    case: tuple[Scenario, dict[str, int]],
) -> None:
    scenario, shard_of = case
    try:
        whole = _whole(scenario)
    except RevenueRuleError as refused:
        with pytest.raises(RevenueRuleError) as sharded:
            _sharded(scenario, frame_for(scenario), shard_of)
        assert sharded.value.reason == refused.reason
        return

    sharded_rows = _sharded(scenario, frame_for(scenario), shard_of)

    for kind in ("schedule", "journals", "balances"):
        assert sorted(sharded_rows[kind]) == sorted(whole[kind]), kind


def test_shards_of_the_reference_portfolio_in_id_order_concatenate_to_the_whole_run() -> None:
    scenario = parse_scenario(portfolio_json(30))
    contract_ids = sorted({c.contract_id for c in scenario.contracts})
    shard_of = {cid: position // 7 for position, cid in enumerate(contract_ids)}  # contiguous, uneven

    sharded_rows = _sharded(scenario, frame_for(scenario), shard_of)

    assert sharded_rows == _whole(scenario)


def test_a_shard_needs_the_portfolios_frame_its_own_horizon_would_drop_lines() -> None:
    """The horizon is the one cross-contract input: a contract ending early still has (zero) lines up to the
    portfolio's last period, so a shard run on its own scenario would write fewer lines than the whole run."""

    def ratable_contract(contract_id: str, end: str) -> dict[str, Any]:
        pattern = {"kind": "ratable", "start": "2024-01-01", "end": end, "basis": "period"}
        return {
            "contract_id": contract_id,
            "version": 1,
            "legal_entity": "LE-US",
            "currency": "USD",
            "effective_date": "2024-01-01",
            "causing_event_id": f"{contract_id}-won",
            "fixed_price": "1200.00",
            "obligations": [{"id": "service", "ssp": "1200.00", "pattern": pattern}],
        }

    scenario = parse_scenario(
        {
            "as_of": "2024-03-31",
            "contracts": [ratable_contract("LONG", "2026-12-31"), ratable_contract("SHORT", "2024-12-31")],
        }
    )
    short = _shard(scenario, {"SHORT"})

    on_its_own = _rows(run_scenario(short).run)["schedule"]
    in_the_portfolio_frame = _rows(run_shard(frame_for(scenario), short))["schedule"]

    assert len(on_its_own) == 12
    assert len(in_the_portfolio_frame) == 36
    assert in_the_portfolio_frame == [row for row in _whole(scenario)["schedule"] if row[0] == "SHORT"]
