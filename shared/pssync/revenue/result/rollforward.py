"""Contract balances: receivable, contract asset and contract liability rolled forward period by period."""

from __future__ import annotations

from pssync.revenue.engine import ContractOutcome, EngineRun
from pssync.revenue.result.models import RollforwardLine
from pssync.revenue.result.support import dec

# revenue, billed, paid, opening / closing receivable, opening / closing contract asset,
# opening / closing contract liability (minor units)
Balances = tuple[int, int, int, int, int, int, int, int, int]


def booked(outcome: ContractOutcome) -> list[int]:
    """Revenue booked per period for the whole contract (own + adjustment over obligations)."""
    totals = [0] * len(outcome.billed)
    for oid in outcome.obligation_order:
        for k, (own, adjustment) in enumerate(
            zip(outcome.own_amounts(oid), outcome.adjustment[oid], strict=True)
        ):
            totals[k] += own + adjustment
    return totals


def balances(
    run: EngineRun, outcome: ContractOutcome, revenue_per_period: list[int] | None = None
) -> list[Balances]:
    """Per period up to as_of: revenue, billed, paid; opening/closing receivable, asset, liability.
    `revenue_per_period`: `booked(outcome)` when the caller has it already."""
    rows = []
    receivable = net = 0
    if revenue_per_period is None:
        revenue_per_period = booked(outcome)
    for k in range(run.as_of_index + 1):
        revenue = revenue_per_period[k]
        billed, paid = outcome.billed[k], outcome.paid[k]
        opening_receivable, opening_net = receivable, net
        receivable += billed - paid
        # Net contract position per contract: revenue ahead of billing is a contract asset, billing ahead
        # of revenue a contract liability (IFRS 15.105-107), never both for one contract.
        net += revenue - billed
        rows.append(
            (
                revenue,
                billed,
                paid,
                opening_receivable,
                receivable,
                max(opening_net, 0),
                max(net, 0),
                max(-opening_net, 0),
                max(-net, 0),
            )
        )
    return rows


def rollforward_lines(run: EngineRun) -> list[RollforwardLine]:
    lines = []
    for outcome in run.contracts:
        e = outcome.exponent
        for k, row in enumerate(balances(run, outcome)):
            if not any(row):
                continue
            lines.append(
                RollforwardLine(
                    contract_id=outcome.contract_id,
                    period=run.periods.periods[k].key,
                    currency=outcome.currency,
                    revenue=dec(row[0], e),
                    billed=dec(row[1], e),
                    paid=dec(row[2], e),
                    opening_receivable=dec(row[3], e),
                    closing_receivable=dec(row[4], e),
                    opening_contract_asset=dec(row[5], e),
                    closing_contract_asset=dec(row[6], e),
                    opening_contract_liability=dec(row[7], e),
                    closing_contract_liability=dec(row[8], e),
                )
            )
    return lines
