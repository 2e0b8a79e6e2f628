"""Outputs of a run: schedule, journals, waterfall, RPO, contract balance rollforward, allocations, FX.

The engine keeps integer arrays; the pydantic models here are built on demand, so a portfolio run does not pay
for one object per schedule cell unless a caller asks for the lines. Every line carries what explains it:
obligation, method, inputs, contract version and causing event.

`RevenueResult` is the facade; each report is built in its own module: schedule.py, journals.py,
rollforward.py, waterfall_rpo.py, fx.py (conversion and entity totals), allocations.py; the line models
are in models.py.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pssync.revenue.engine import ContractOutcome, EngineRun
from pssync.revenue.result.allocations import allocation_lines, modification_lines
from pssync.revenue.result.contract_costs import ContractCostLine, contract_cost_lines
from pssync.revenue.result.fx import FxConverter, entity_totals
from pssync.revenue.result.journals import journal_entries
from pssync.revenue.result.models import (
    AllocationLine,
    EntityPeriodTotal,
    JournalEntry,
    JournalLine,
    ModificationLine,
    PeriodInfo,
    PeriodStatus,
    RevenueReport,
    RollforwardLine,
    RpoLine,
    ScheduleLine,
    WaterfallRow,
)
from pssync.revenue.result.rollforward import contract_total_lines, rollforward_lines
from pssync.revenue.result.schedule import period_infos, schedule_lines
from pssync.revenue.result.support import collector_paused, dec, period_revenue, period_status
from pssync.revenue.result.termination import TerminationLine, termination_lines
from pssync.revenue.result.waterfall_rpo import rpo_lines, waterfall_rows


class RevenueResult:
    """The outcome of `run_scenario`, with accessors in exact minor units and report builders."""

    def __init__(self, run: EngineRun) -> None:
        self.run = run
        self.as_of = run.as_of
        self.periods = run.periods.periods
        self._by_id = {c.contract_id: c for c in run.contracts}
        self._fx = FxConverter(run)

    # -- small accessors (exact figures, handy for callers and tests)

    @property
    def contract_ids(self) -> list[str]:
        return list(self._by_id)

    def contract(self, contract_id: str) -> ContractOutcome:
        return self._by_id[contract_id]

    def period_index(self, period: str) -> int:
        return self.run.periods.position[period]

    def status(self, k: int) -> PeriodStatus:
        return period_status(self.run, k)

    def period_revenue(self, contract_id: str, obligation_id: str | None = None) -> dict[str, Decimal]:
        """Revenue booked per period (own + adjustment; forecast after as_of), one obligation or all."""
        return period_revenue(self._by_id[contract_id], self.periods, obligation_id)

    def revenue_between(
        self, contract_id: str, start: date, end: date, obligation_id: str | None = None
    ) -> Decimal:
        per_period = self.period_revenue(contract_id, obligation_id)
        return sum((per_period[p.key] for p in self.periods if start <= p.start and p.end <= end), Decimal(0))

    def allocated(self, contract_id: str, obligation_id: str) -> Decimal:
        """The obligation's price at as_of (allocated, plus revenue before a prospective modification)."""
        outcome = self._by_id[contract_id]
        return dec(outcome.tracks[obligation_id].expected_total[self.run.as_of_index], outcome.exponent)

    def recognised_to_date(self, contract_id: str, obligation_id: str | None = None) -> Decimal:
        outcome = self._by_id[contract_id]
        ids = [obligation_id] if obligation_id else outcome.obligation_order
        k = self.run.as_of_index
        return dec(sum(outcome.reported[o][k] for o in ids), outcome.exponent)

    # -- FX

    def functional_currency(self, outcome: ContractOutcome) -> str:
        return self._fx.functional_currency(outcome)

    def rate(self, base: str, quote: str, k: int) -> Decimal:
        return self._fx.rate(base, quote, k)

    # -- reports

    def period_infos(self) -> list[PeriodInfo]:
        return period_infos(self.run)

    @collector_paused
    def schedule(self, include_zero: bool = False) -> list[ScheduleLine]:
        return schedule_lines(self.run, self._fx, include_zero)

    @collector_paused
    def rollforward(self) -> list[RollforwardLine]:
        return rollforward_lines(self.run)

    @collector_paused
    def rollforward_totals(self) -> list[RollforwardLine]:
        """Per contract id: the accounting contracts' balances summed, assets and liabilities gross."""
        return contract_total_lines(self.run)

    @collector_paused
    def journals(self) -> list[JournalEntry]:
        return journal_entries(self.run, self._fx)

    @collector_paused
    def waterfall(self) -> list[WaterfallRow]:
        return waterfall_rows(self.run)

    @collector_paused
    def rpo(self) -> list[RpoLine]:
        return rpo_lines(self.run)

    @collector_paused
    def allocations(self) -> list[AllocationLine]:
        return allocation_lines(self.run)

    @collector_paused
    def modifications(self) -> list[ModificationLine]:
        return modification_lines(self.run)

    @collector_paused
    def contract_costs(self) -> list[ContractCostLine]:
        """Contract cost assets per cost and period (result/contract_costs.py), a separate asset."""
        return contract_cost_lines(self.run)

    @collector_paused
    def terminations(self) -> list[TerminationLine]:
        """How the balances of each terminated contract settle at as_of (result/termination.py)."""
        return termination_lines(self.run)

    @collector_paused
    def entity_totals(self) -> list[EntityPeriodTotal]:
        return entity_totals(self.run, self._fx)

    @collector_paused
    def report(self) -> RevenueReport:
        return RevenueReport(
            as_of=self.as_of,
            periods=self.period_infos(),
            allocations=self.allocations(),
            modifications=self.modifications(),
            schedule=self.schedule(),
            journals=self.journals(),
            waterfall=self.waterfall(),
            rpo=self.rpo(),
            rollforward=self.rollforward(),
            entity_totals=self.entity_totals(),
        )


__all__ = [
    "AllocationLine",
    "ContractCostLine",
    "EntityPeriodTotal",
    "JournalEntry",
    "JournalLine",
    "ModificationLine",
    "PeriodInfo",
    "PeriodStatus",
    "RevenueReport",
    "RevenueResult",
    "RollforwardLine",
    "RpoLine",
    "ScheduleLine",
    "TerminationLine",
    "WaterfallRow",
]
