"""Journal entries per accounting contract and period: billing, cash, the net contract position, revenue."""

from __future__ import annotations

from array import array
from collections.abc import Callable
from decimal import Decimal

from pssync.money import minor_unit
from pssync.revenue.engine import AccountingContract, ContractOutcome, EngineRun
from pssync.revenue.result.fx import FxConverter
from pssync.revenue.result.models import JournalEntry, JournalLine
from pssync.revenue.result.rollforward import Balances, account_balances, accounting_contract_name
from pssync.revenue.result.support import Explained, cause, dec, explainer


def journal_entries(run: EngineRun, fx: FxConverter) -> list[JournalEntry]:
    entries = []
    for outcome in run.contracts:
        own_by_obligation = {oid: outcome.own_amounts(oid) for oid in outcome.obligation_order}
        explain = explainer(outcome)
        for account, rows in account_balances(run, outcome):
            for k, row in enumerate(rows):
                entry = _entry(run, fx, outcome, account, k, row, own_by_obligation, explain)
                if entry is not None:
                    entries.append(entry)
    return entries


# What one period's entry moved: (account, minor units; positive = debit) in the transaction currency, the
# functional currency, the same lines converted (None when it is the transaction currency; an fx_rounding
# line keeps them balanced), and the ids of what caused it.
EntryFigures = tuple[list[tuple[str, int]], str, list[tuple[str, int]] | None, list[str]]


def entry_figures(
    fx: FxConverter,
    outcome: ContractOutcome,
    account: AccountingContract,
    k: int,
    row: Balances,
    own_by_obligation: dict[str, array[int]],
    explain: Callable[[str, int], Explained | None],
) -> EntryFigures | None:
    """The period's entry in minor units, None when nothing moved (the models' path; the stream formats
    entry_lines / functional_lines itself with causes it already has)."""
    raw = entry_lines(row)
    if not raw:
        return None
    functional = fx.functional_currency(outcome)
    converted = functional_lines(fx, outcome, k, raw) if functional != outcome.currency else None
    return raw, functional, converted, _causes(outcome, account, k, own_by_obligation, explain)


def entry_lines(row: Balances) -> list[tuple[str, int]]:
    """(account, minor units; positive = debit) of the period's entry in the transaction currency, the lines
    that moved in this order: receivable (billed), cash and receivable (paid), contract asset, contract
    liability, revenue. Empty when nothing moved."""
    revenue, billed, paid = row[0], row[1], row[2]
    asset_change, liability_change = row[6] - row[5], row[8] - row[7]
    # billed + paid - paid + asset change - liability change - revenue: the rollforward's identity.
    assert billed + asset_change - liability_change == revenue, "journal must balance"
    raw: list[tuple[str, int]] = []  # positive = debit
    if billed:
        raw.append(("receivable", billed))
    if paid:
        raw.append(("cash", paid))
        raw.append(("receivable", -paid))
    if asset_change:
        raw.append(("contract_asset", asset_change))
    if liability_change:
        raw.append(("contract_liability", -liability_change))
    if revenue:
        raw.append(("revenue", -revenue))
    return raw


def functional_lines(
    fx: FxConverter, outcome: ContractOutcome, k: int, raw: list[tuple[str, int]]
) -> list[tuple[str, int]]:
    """The entry's lines converted into the functional currency (period k's rate), with an fx_rounding line
    when the converted lines do not balance."""
    converted = [(account, fx.convert(amount, outcome, k)[0]) for account, amount in raw]
    rounding = -sum(amount for _, amount in converted)
    if rounding:
        converted.append(("fx_rounding", rounding))
    return converted


def _entry(
    run: EngineRun,
    fx: FxConverter,
    outcome: ContractOutcome,
    account: AccountingContract,
    k: int,
    row: Balances,
    own_by_obligation: dict[str, array[int]],
    explain: Callable[[str, int], Explained | None],
) -> JournalEntry | None:
    """The period's entry in the transaction currency (and the functional one), None when nothing moved."""
    figures = entry_figures(fx, outcome, account, k, row, own_by_obligation, explain)
    if figures is None:
        return None
    raw, functional, converted, causes = figures
    e = outcome.exponent
    revenue, billed, paid = row[0], row[1], row[2]
    fe = minor_unit(functional)
    return JournalEntry(
        contract_id=outcome.contract_id,
        accounting_contract=accounting_contract_name(outcome, account),
        legal_entity=outcome.legal_entity,
        period=run.periods.periods[k].key,
        currency=outcome.currency,
        lines=[_line(a, v, e) for a, v in raw],
        functional_currency=functional,
        functional_lines=None if converted is None else [_line(a, v, fe) for a, v in converted],
        explanation=(
            f"revenue {dec(revenue, e)}, billed {dec(billed, e)}, paid {dec(paid, e)}; "
            f"net contract position {dec(row[6] - row[8], e)} "
            f"({'asset' if row[6] else 'liability' if row[8] else 'nil'})"
        ),
        causing_event_ids=causes,
    )


def _causes(
    outcome: ContractOutcome,
    account: AccountingContract,
    k: int,
    own_by_obligation: dict[str, array[int]],
    explain: Callable[[str, int], Explained | None],
) -> list[str]:
    """Invoice and payment ids of the period, then what caused each obligation's revenue, once each."""
    causes = list(account.billing_causes.get(k, []))
    for oid in account.obligations:
        if own_by_obligation[oid][k] or outcome.adjustment[oid][k]:
            explained = explain(oid, k)
            if explained:
                event_id = cause(explained)
                if event_id not in causes:
                    causes.append(event_id)
    return causes


def _line(account: str, amount: int, exponent: int) -> JournalLine:
    value = dec(abs(amount), exponent)
    zero = Decimal(0).scaleb(-exponent)
    return JournalLine(
        account=account,
        debit=value if amount > 0 else zero,
        credit=value if amount < 0 else zero,
    )
