"""Contract versions compiled for computation: amounts in integer minor units, days as ordinals."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pssync.money import minor_unit
from pssync.revenue.errors import RevenueRuleError
from pssync.revenue.models import PerformanceObligation, RevenueContract


def to_minor_units(amount: Decimal, exponent: int) -> int:
    scaled = amount.scaleb(exponent)
    try:
        units = int(scaled)  # truncates: equal to `scaled` only when it is a whole number of minor units
    except ValueError:  # NaN
        units = None
    if units is None or units != scaled:
        raise RevenueRuleError(f"{amount} has more precision than the currency's minor unit allows")
    return units


@dataclass(slots=True)
class CompiledVersion:
    contract: RevenueContract
    index: int  # position in Scenario.contracts, for error field paths
    exponent: int
    fixed: int
    obligations: dict[str, PerformanceObligation]
    order: tuple[str, ...]
    effective: int
    ssp_minor: dict[str, int | None]

    @property
    def number(self) -> int:
        return self.contract.version

    def ssp(self, obligation_id: str) -> int | None:
        return self.ssp_minor[obligation_id]

    def field(self, obligation_id: str | None = None) -> str:
        if obligation_id is None:
            return f"contracts[{self.index}]"
        return f"contracts[{self.index}].obligations[{self.order.index(obligation_id)}]"


def compile_version(contract: RevenueContract, index: int) -> CompiledVersion:
    exponent = minor_unit(contract.currency)
    try:
        fixed = to_minor_units(contract.fixed_price, exponent)
    except RevenueRuleError as error:
        raise RevenueRuleError(error.reason, f"contracts[{index}].fixed_price") from None
    return CompiledVersion(
        contract=contract,
        index=index,
        exponent=exponent,
        fixed=fixed,
        obligations={o.id: o for o in contract.obligations},
        order=tuple(o.id for o in contract.obligations),
        effective=contract.effective_date.toordinal(),
        ssp_minor={
            o.id: None if o.ssp is None else to_minor_units(o.ssp, exponent) for o in contract.obligations
        },
    )
