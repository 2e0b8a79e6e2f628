"""How a terminated contract's balances settle: what the customer still owes and what is owed back.

At as_of, from revenue recognised (which a termination freezes), billed and paid to date:
- refund liability: consideration received beyond revenue, owed back to the customer (IFRS 15.55,
  ASC 606-10-32-10); never netted into a contract liability, since no goods remain to transfer for it;
- still to invoice: revenue recognised but neither billed nor paid (work performed the customer pays for);
- invoices to credit: billed beyond both revenue and payments (nothing is owed for it);
- receivable kept: billed, unpaid and earned.
They reconcile: revenue - paid = receivable kept + still to invoice - refund liability, and the open
receivable (billed - paid, when positive) = receivable kept + invoices to credit.

Per accounting contract. The termination ends every accounting contract of the contract (the contract and
each separate contract a modification created, IFRS 15.20). Each settles on its own revenue, bills and
payments: IFRS 15.105 nets contract balances within one contract only, and a refund owed under one is not
offset against revenue still to invoice under another without a right of set-off (IAS 32.42, ASC
210-20-45-1). A termination whose scenario states `net_settlement` (the right and the intent to settle net)
gets one line for the whole contract instead. A bill or payment that names no accounting contract is the
contract's own, in a settlement as everywhere, and a credit given on termination lands on the obligations it
names (default: in proportion to their revenue), so on their accounting contracts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, ConfigDict

from pssync.money import ExactDecimal
from pssync.revenue.engine import ContractOutcome, EngineRun
from pssync.revenue.models import ModificationTreatment
from pssync.revenue.modification import ModificationRecord
from pssync.revenue.result.models import AccountingContractName
from pssync.revenue.result.support import dec


class TerminationLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    contract_id: str
    # None when the contract is one accounting contract, or settles net (then `net_settlement_basis` says why)
    accounting_contract: AccountingContractName = None
    net_settlement_basis: AccountingContractName = None
    legal_entity: str
    currency: str
    contract_version: int
    terminated_on: date
    reason: str
    causing_event_id: str
    as_of: date
    revenue_recognised: ExactDecimal
    billed: ExactDecimal
    paid: ExactDecimal
    receivable_kept: ExactDecimal
    still_to_invoice: ExactDecimal
    invoices_to_credit: ExactDecimal
    refund_liability: ExactDecimal


def settlement(revenue: int, billed: int, paid: int) -> tuple[int, int, int, int]:
    """(receivable kept, still to invoice, invoices to credit, refund liability) in minor units."""
    refund = max(paid - revenue, 0)
    still_to_invoice = max(revenue - max(billed, paid), 0)  # a payment on account covers revenue unbilled
    to_credit = max(billed - max(revenue, paid), 0)
    receivable = max(min(billed, revenue) - paid, 0)
    return receivable, still_to_invoice, to_credit, refund


def termination_lines(run: EngineRun) -> list[TerminationLine]:
    lines = []
    for outcome in run.contracts:
        ended = [m for m in outcome.modifications if m.treatment is ModificationTreatment.TERMINATION]
        if not ended:
            continue
        record = ended[-1]
        termination = outcome.latest.contract.termination  # no version may follow a termination
        net = termination.net_settlement if termination is not None else None
        if len(outcome.accounting) == 1 or net is not None:
            basis = None if net is None else net.basis
            figures = _to_date(run, outcome, outcome.obligation_order, outcome.billed, outcome.paid)
            lines.append(_line(run, outcome, record, None, basis, figures))
            continue
        for account in outcome.accounting:
            figures = _to_date(run, outcome, account.obligations, account.billed, account.paid)
            lines.append(_line(run, outcome, record, account.id, None, figures))
    return lines


def _line(
    run: EngineRun,
    outcome: ContractOutcome,
    record: ModificationRecord,
    accounting_contract: str | None,
    net_settlement_basis: str | None,
    figures: tuple[int, int, int],
) -> TerminationLine:
    revenue, billed, paid = figures
    receivable, still_to_invoice, to_credit, refund = settlement(revenue, billed, paid)
    e = outcome.exponent
    return TerminationLine(
        contract_id=outcome.contract_id,
        accounting_contract=accounting_contract,
        net_settlement_basis=net_settlement_basis,
        legal_entity=outcome.legal_entity,
        currency=outcome.currency,
        contract_version=record.version,
        terminated_on=record.effective_date,
        reason=record.rationale,
        causing_event_id=record.causing_event_id,
        as_of=run.as_of,
        revenue_recognised=dec(revenue, e),
        billed=dec(billed, e),
        paid=dec(paid, e),
        receivable_kept=dec(receivable, e),
        still_to_invoice=dec(still_to_invoice, e),
        invoices_to_credit=dec(to_credit, e),
        refund_liability=dec(refund, e),
    )


def _to_date(
    run: EngineRun,
    outcome: ContractOutcome,
    obligations: Sequence[str],
    billed: Sequence[int],
    paid: Sequence[int],
) -> tuple[int, int, int]:
    """Revenue recognised, billed and paid up to as_of over `obligations` and their bills."""
    k = run.as_of_index
    revenue = sum(outcome.reported[o][k] for o in obligations)
    return revenue, sum(billed[: k + 1]), sum(paid[: k + 1])


__all__ = ["TerminationLine", "settlement", "termination_lines"]
