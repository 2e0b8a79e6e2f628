"""What the finance report shows, as frozen pydantic models (stable JSON with `model_dump(mode="json")`).

Amounts are Money per currency: the report never converts between currencies, so a portfolio booked in EUR
and USD has one section per currency. Every figure is the revenue engine's (per contract, as known at the
cut-off) added up per currency and period; the renderer only lays them out.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from pssync.money import Money, RoundingPolicy


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True)


class PeriodColumn(_Part):
    key: str
    start: date
    end: date
    status: str  # closed | open | forecast (after the cut-off: the engine's expectation)


class WaterfallSeries(_Part):
    """Revenue of one obligation (or the obligations grouped as "other") per period, over the portfolio."""

    label: str
    amounts: dict[str, Money]  # period key -> revenue booked in it (own + adjustment)
    total: Money


class WaterfallLine(_Part):
    """One contract obligation's revenue per period: the engine's waterfall row."""

    contract_id: str
    customer: str
    obligation_id: str
    description: str
    amounts: dict[str, Money]
    total: Money


class RollforwardRow(_Part):
    """One period of the contract balances, summed over the contracts of a currency.

    Identities (per contract, hence for the sum): receivable opening + billed - collected = closing; net
    contract position (asset - liability) opening + revenue - billed = closing.
    """

    period: str
    revenue: Money
    billed: Money
    collected: Money
    opening_receivable: Money
    closing_receivable: Money
    opening_contract_asset: Money
    closing_contract_asset: Money
    opening_contract_liability: Money
    closing_contract_liability: Money

    def receivable_moves(self) -> Money:
        return self.opening_receivable + self.billed - self.collected

    def net_position_moves(self) -> Money:
        """Opening net contract position (asset - liability) moved by the period's revenue and billing."""
        return self.opening_contract_asset - self.opening_contract_liability + self.revenue - self.billed

    def closing_net_position(self) -> Money:
        return self.closing_contract_asset - self.closing_contract_liability


class RpoSummary(_Part):
    """Remaining performance obligations at the cut-off by when the schedules expect them (ASC 606-10-50-13
    / IFRS 15.120). Right-to-invoice obligations use the practical expedient and are counted apart."""

    remaining: Money
    within_12_months: Money
    months_13_to_24: Money
    after_24_months: Money
    timing_not_scheduled: Money
    exempt_obligations: int  # time-and-materials obligations of the contracts measured


class Balances(_Part):
    recognised_to_date: Money
    billed_to_date: Money
    collected_to_date: Money
    receivable: Money
    contract_asset: Money
    contract_liability: Money


class CurrencySection(_Part):
    currency: str
    contracts: int
    periods: list[PeriodColumn]
    waterfall: list[WaterfallSeries]  # the chart: the largest obligations and the rest as one series
    waterfall_lines: list[WaterfallLine]  # the table: every contract obligation
    waterfall_total: Money  # every period, forecast included: the lifetime revenue the schedules expect
    balances: Balances
    rollforward: list[RollforwardRow]
    rpo: RpoSummary

    def period_total(self, period: str) -> Money:
        nothing = Money.zero(self.currency).rounded(RoundingPolicy.HALF_EVEN)  # exact: a zero at scale
        return sum((s.amounts[period] for s in self.waterfall if period in s.amounts), nothing)


class OpenException(_Part):
    """A message parked in the exceptions queue or a dead-letter queue, and how long it has waited."""

    store: str
    message_id: str
    event_id: str | None
    event_type: str | None
    contract_id: str | None
    stage: str  # the failed workflow step, or the queue's consumer; "(not recorded)" when neither is known
    cause: str
    parked_at: datetime | None
    age_seconds: float | None


class ExceptionAging(_Part):
    """Open exceptions grouped by stage and cause: how many, and how old the oldest is."""

    stage: str
    cause: str
    count: int
    oldest_seconds: float | None


class Metric(_Part):
    """A business metric computed from what the stores hold (not from CloudWatch)."""

    name: str
    value: str
    unit: str
    samples: int
    basis: str


class NotMeasured(_Part):
    """A contract the engine could not measure at the cut-off (its terms refused), shown, never dropped."""

    contract_id: str
    reason: str


class FinanceReport(_Part):
    as_of: datetime
    measured_on: date
    generated_at: datetime
    decided_by: str
    sections: list[CurrencySection]
    not_measured: list[NotMeasured]
    not_in_force: int  # contracts recorded but starting after the cut-off date: nothing to measure yet
    exceptions: list[OpenException]
    exception_aging: list[ExceptionAging]
    metrics: list[Metric]
    reconciliation: list[dict[str, Any]] | None  # rows from pssync.ops.reconcile, when connected
