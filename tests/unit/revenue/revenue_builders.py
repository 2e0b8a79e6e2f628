"""Small builders so the conformance tests read like the standard's examples."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from pssync.revenue import (
    Invoice,
    Payment,
    PerformanceObligation,
    RatablePattern,
    RevenueContract,
)


def D(value: str | int) -> Decimal:
    return Decimal(value)


def contract(
    contract_id: str,
    obligations: list[PerformanceObligation],
    price: str | int,
    *,
    version: int = 1,
    effective: date = date(2024, 1, 1),
    currency: str = "USD",
    legal_entity: str = "LE-US",
    **extra: Any,
) -> RevenueContract:
    return RevenueContract(
        contract_id=contract_id,
        version=version,
        legal_entity=legal_entity,
        currency=currency,
        effective_date=effective,
        causing_event_id=f"{contract_id}-v{version}",
        fixed_price=D(price),
        obligations=obligations,
        **extra,
    )


def ratable(
    obligation_id: str, ssp: str | int | None, start: date, end: date, basis: str = "period"
) -> PerformanceObligation:
    return PerformanceObligation(
        id=obligation_id,
        ssp=None if ssp is None else D(ssp),
        pattern=RatablePattern(start=start, end=end, basis=basis),  # type: ignore[arg-type]
    )


def obligation(
    obligation_id: str, ssp: str | int | None, pattern: Any, **extra: Any
) -> PerformanceObligation:
    return PerformanceObligation(
        id=obligation_id, ssp=None if ssp is None else D(ssp), pattern=pattern, **extra
    )


def yearly(result: Any, contract_id: str, obligation_id: str | None = None) -> dict[int, Decimal]:
    """Revenue per calendar year from a monthly result."""
    totals: dict[int, Decimal] = {}
    for period, amount in result.period_revenue(contract_id, obligation_id).items():
        year = int(period[:4])
        totals[year] = totals.get(year, Decimal(0)) + amount
    return {year: amount for year, amount in totals.items() if amount}


# IFRS 15 IE Example 5 case A: the original (`GOODS`) billed 5,000 in February and unpaid; the 30 products
# added on 1 March at their SSP are a separate contract, billed 2,850 in advance and paid in March.
EXAMPLE_5_SEPARATE = "GOODS/m2"
EXAMPLE_5_BILLING: list[Invoice | Payment] = [
    Invoice(id="inv-feb", contract_id="GOODS", on=date(2024, 2, 28), amount=D(5_000)),
    Invoice(
        id="inv-more",
        contract_id="GOODS",
        accounting_contract=EXAMPLE_5_SEPARATE,
        on=date(2024, 3, 1),
        amount=D(2_850),
    ),
    Payment(
        id="pay-more",
        contract_id="GOODS",
        accounting_contract=EXAMPLE_5_SEPARATE,
        on=date(2024, 3, 10),
        amount=D(2_850),
    ),
]
