"""How a terminated contract's balances settle: what the customer still owes and what is owed back.

At as_of, from revenue recognised (which a termination freezes), billed and paid to date:
- refund liability: consideration received beyond revenue, owed back to the customer (IFRS 15.55,
  ASC 606-10-32-10); never netted into a contract liability, since no goods remain to transfer for it;
- still to invoice: revenue recognised but neither billed nor paid (work performed the customer pays for);
- invoices to credit: billed beyond both revenue and payments (nothing is owed for it);
- receivable kept: billed, unpaid and earned.
They reconcile: revenue - paid = receivable kept + still to invoice - refund liability, and the open
receivable (billed - paid, when positive) = receivable kept + invoices to credit.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict

from pssync.money import ExactDecimal
from pssync.revenue.engine import ContractOutcome, EngineRun
from pssync.revenue.models import ModificationTreatment
from pssync.revenue.result.support import dec


class TerminationLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    contract_id: str
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
        revenue, billed, paid = _to_date(run, outcome)
        receivable, still_to_invoice, to_credit, refund = settlement(revenue, billed, paid)
        e = outcome.exponent
        lines.append(
            TerminationLine(
                contract_id=outcome.contract_id,
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
        )
    return lines


def _to_date(run: EngineRun, outcome: ContractOutcome) -> tuple[int, int, int]:
    k = run.as_of_index
    revenue = sum(outcome.reported[o][k] for o in outcome.obligation_order)
    return revenue, sum(outcome.billed[: k + 1]), sum(outcome.paid[: k + 1])


__all__ = ["TerminationLine", "settlement", "termination_lines"]
