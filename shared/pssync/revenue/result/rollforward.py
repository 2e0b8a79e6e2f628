"""Contract balances: receivable, contract asset and contract liability rolled forward period by period."""

from __future__ import annotations

from collections.abc import Sequence

from pssync.revenue.engine import AccountingContract, ContractOutcome, EngineRun
from pssync.revenue.result.models import RollforwardLine
from pssync.revenue.result.support import dec

# revenue, billed, paid, opening / closing receivable, opening / closing contract asset,
# opening / closing contract liability (minor units)
Balances = tuple[int, int, int, int, int, int, int, int, int]


def booked(outcome: ContractOutcome, obligations: Sequence[str] | None = None) -> list[int]:
    """Revenue booked per period (own + adjustment) over the contract's obligations, or over `obligations`."""
    totals = [0] * len(outcome.billed)
    for oid in outcome.obligation_order if obligations is None else obligations:
        for k, (own, adjustment) in enumerate(
            zip(outcome.own_amounts(oid), outcome.adjustment[oid], strict=True)
        ):
            totals[k] += own + adjustment
    return totals


def balances(
    run: EngineRun, outcome: ContractOutcome, revenue_per_period: list[int] | None = None
) -> list[Balances]:
    """Per period up to as_of, for the whole contract netted as one: revenue, billed, paid; opening/closing
    receivable, asset, liability. `revenue_per_period`: `booked(outcome)` when the caller has it already.
    The contract's totals; what is reported nets per accounting contract (`account_balances`)."""
    if revenue_per_period is None:
        revenue_per_period = booked(outcome)
    return rolled(run, revenue_per_period, outcome.billed, outcome.paid)


def account_balances(
    run: EngineRun, outcome: ContractOutcome, revenue_per_period: list[int] | None = None
) -> list[tuple[AccountingContract, list[Balances]]]:
    """The balances of each accounting contract of the contract (IFRS 15.105 nets within one contract only).
    `revenue_per_period`: the whole contract's booked revenue, used when it is one accounting contract."""
    if len(outcome.accounting) == 1:
        only = outcome.accounting[0]
        return [(only, balances(run, outcome, revenue_per_period))]
    return [
        (account, rolled(run, booked(outcome, account.obligations), account.billed, account.paid))
        for account in outcome.accounting
    ]


def rolled(
    run: EngineRun, revenue_per_period: Sequence[int], billed_per_period: Sequence[int], paid: Sequence[int]
) -> list[Balances]:
    rows = []
    receivable = net = 0
    # Opening figures are the previous period's closing ones (conditionals rather than max(): no call).
    asset = liability = 0
    for k in range(run.as_of_index + 1):
        revenue = revenue_per_period[k]
        billed, paid_here = billed_per_period[k], paid[k]
        opening_receivable, opening_asset, opening_liability = receivable, asset, liability
        receivable += billed - paid_here
        # Net contract position per contract: revenue ahead of billing is a contract asset, billing ahead
        # of revenue a contract liability (IFRS 15.105-107), never both for one contract.
        net += revenue - billed
        asset, liability = (net, 0) if net > 0 else (0, -net)
        rows.append(
            (
                revenue,
                billed,
                paid_here,
                opening_receivable,
                receivable,
                opening_asset,
                asset,
                opening_liability,
                liability,
            )
        )
    return rows


def accounting_contract_name(outcome: ContractOutcome, account: AccountingContract) -> str | None:
    """The accounting contract named in outputs: None when the contract is one (outputs stay as they were)."""
    return None if len(outcome.accounting) == 1 else account.id


def rollforward_lines(run: EngineRun) -> list[RollforwardLine]:
    lines = []
    for outcome in run.contracts:
        for account, rows in account_balances(run, outcome):
            name = accounting_contract_name(outcome, account)
            for k, row in enumerate(rows):
                if not any(row):
                    continue
                lines.append(_line(run, outcome, name, k, row))
    return lines


def _line(
    run: EngineRun, outcome: ContractOutcome, name: str | None, k: int, row: Balances
) -> RollforwardLine:
    e = outcome.exponent
    return RollforwardLine(
        contract_id=outcome.contract_id,
        accounting_contract=name,
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


def contract_total_lines(run: EngineRun) -> list[RollforwardLine]:
    """One line per contract id and period: each figure summed over the contract's accounting contracts
    (assets and liabilities gross, as the balance sheet shows them); the rollforward itself for a contract
    that is one accounting contract."""
    lines = []
    for outcome in run.contracts:
        accounts = account_balances(run, outcome)
        for k in range(run.as_of_index + 1):
            row = tuple(sum(column) for column in zip(*(rows[k] for _, rows in accounts), strict=True))
            if any(row):
                lines.append(_line(run, outcome, None, k, row))
    return lines
