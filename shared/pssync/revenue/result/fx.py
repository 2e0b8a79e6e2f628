"""Functional currency: exchange rates, conversion of minor units, revenue per entity and period."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property

from pssync.money import minor_unit
from pssync.revenue.engine import ContractOutcome, EngineRun
from pssync.revenue.errors import RevenueRuleError
from pssync.revenue.models import FxPolicy
from pssync.revenue.result.models import EntityPeriodTotal
from pssync.revenue.result.support import dec, period_revenue


class FxConverter:
    """Converts a contract's amounts into its legal entity's functional currency, period by period."""

    def __init__(self, run: EngineRun) -> None:
        self.scenario = run.scenario
        self.periods = run.periods.periods

    def functional_currency(self, outcome: ContractOutcome) -> str:
        return self.scenario.functional_currency.get(outcome.legal_entity, outcome.currency)

    @cached_property
    def _rates(self) -> dict[tuple[str, str], list[tuple[date, Decimal]]]:
        table: dict[tuple[str, str], list[tuple[date, Decimal]]] = {}
        for rate in self.scenario.fx_rates:
            table.setdefault((rate.base, rate.quote), []).append((rate.on, rate.rate))
            table.setdefault((rate.quote, rate.base), []).append((rate.on, Decimal(1) / rate.rate))
        for entries in table.values():
            entries.sort()
        return table

    def rate(self, base: str, quote: str, k: int) -> Decimal:
        """Units of `quote` per unit of `base` for period k under the scenario's FX policy."""
        if base == quote:
            return Decimal(1)
        entries = self._rates.get((base, quote), [])
        period = self.periods[k]
        if self.scenario.fx_policy is FxPolicy.PERIOD_AVERAGE:
            inside = [r for d, r in entries if period.start <= d <= period.end]
            if inside:
                return sum(inside, Decimal(0)) / len(inside)
        applicable = [r for d, r in entries if d <= period.end]
        if not applicable:
            raise RevenueRuleError(f"no {base}/{quote} rate on or before {period.end}", "fx_rates")
        return applicable[-1]

    def convert(self, units: int, outcome: ContractOutcome, k: int) -> tuple[int, str]:
        """(minor units in the functional currency, that currency) of `units` booked in period k."""
        functional = self.functional_currency(outcome)
        if functional == outcome.currency:
            return units, functional
        rate = self.rate(outcome.currency, functional, k)
        amount = (dec(units, outcome.exponent) * rate).scaleb(minor_unit(functional))
        return int(amount.to_integral_value(rounding=ROUND_HALF_UP)), functional


def entity_totals(run: EngineRun, fx: FxConverter) -> list[EntityPeriodTotal]:
    """Revenue per legal entity and period in the functional currency, converted contract by contract."""
    periods = run.periods.periods
    totals: dict[tuple[str, str, str], int] = {}
    order: list[tuple[str, str, str]] = []
    for outcome in run.contracts:
        revenue = period_revenue(outcome, periods)
        for k, period in enumerate(periods):
            units = int(revenue[period.key].scaleb(outcome.exponent))
            if not units:
                continue
            converted, functional = fx.convert(units, outcome, k)
            key = (outcome.legal_entity, period.key, functional)
            if key not in totals:
                order.append(key)
            totals[key] = totals.get(key, 0) + converted
    return [
        EntityPeriodTotal(
            legal_entity=entity,
            period=period,
            functional_currency=currency,
            revenue=dec(totals[(entity, period, currency)], minor_unit(currency)),
        )
        for entity, period, currency in sorted(order)
    ]
