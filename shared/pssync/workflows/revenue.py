"""The provision workflow's revenue step: the schedule a newly booked contract implies.

Interim (walking skeleton): relative-SSP allocation and straight-line ratable schedules. The revenue
engine (pssync.revenue) replaces this module's internals; its output shape stays.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from pssync.model.contract import ContractTerms, PointInTime, Ratable
from pssync.money import Money, from_minor, to_minor


class ScheduleLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    obligation_id: str
    period: str  # YYYY-MM
    amount: Money
    method: str
    contract_version: int
    caused_by_event_id: str


class RevenueSchedule(BaseModel):
    model_config = ConfigDict(frozen=True)

    contract_id: str
    currency: str
    allocations: dict[str, Money]
    lines: list[ScheduleLine]
    unscheduled: dict[str, Money]  # allocated, awaiting delivery events (progress, milestones, time)

    def periods(self) -> list[str]:
        return sorted({line.period for line in self.lines})

    def total(self) -> Decimal:
        return sum((line.amount.amount for line in self.lines), Decimal(0))


def split_largest_remainder(total: int, weights: list[int]) -> list[int]:
    """Integer shares proportional to weights that sum exactly to total (ties: earliest first)."""
    weight_sum = sum(weights)
    if weight_sum <= 0:
        raise ValueError("weights must sum to a positive number")
    floors = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    shortfall = total - sum(floors)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:shortfall]:
        floors[index] += 1
    return floors


def _months(start: date, end: date) -> list[str]:
    months, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def revenue_schedule_for(
    terms: ContractTerms, *, contract_version: int, caused_by_event_id: str
) -> RevenueSchedule:
    currency = terms.currency
    ssps = [to_minor(o.standalone_selling_price.amount, currency) for o in terms.obligations]
    allocated = split_largest_remainder(to_minor(terms.transaction_price.amount, currency), ssps)
    lines: list[ScheduleLine] = []
    unscheduled: dict[str, Money] = {}
    for obligation, amount in zip(terms.obligations, allocated, strict=True):
        pattern = obligation.recognition
        if isinstance(pattern, Ratable):
            months = _months(pattern.start, pattern.end)
            for period, share in zip(months, split_largest_remainder(amount, [1] * len(months)), strict=True):
                lines.append(
                    ScheduleLine(
                        obligation_id=obligation.obligation_id,
                        period=period,
                        amount=Money(amount=from_minor(share, currency), currency=currency),
                        method="ratable_straight_line",
                        contract_version=contract_version,
                        caused_by_event_id=caused_by_event_id,
                    )
                )
        elif isinstance(pattern, PointInTime) and pattern.expected_on is not None:
            lines.append(
                ScheduleLine(
                    obligation_id=obligation.obligation_id,
                    period=f"{pattern.expected_on:%Y-%m}",
                    amount=Money(amount=from_minor(amount, currency), currency=currency),
                    method="point_in_time_expected",
                    contract_version=contract_version,
                    caused_by_event_id=caused_by_event_id,
                )
            )
        else:
            unscheduled[obligation.obligation_id] = Money(
                amount=from_minor(amount, currency), currency=currency
            )
    return RevenueSchedule(
        contract_id=terms.contract_id,
        currency=currency,
        allocations={
            o.obligation_id: Money(amount=from_minor(a, currency), currency=currency)
            for o, a in zip(terms.obligations, allocated, strict=True)
        },
        lines=lines,
        unscheduled=unscheduled,
    )
