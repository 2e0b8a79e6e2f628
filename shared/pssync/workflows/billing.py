"""The ERP billing schedule derived from a contract version's billing terms."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict

from pssync.model.contract import (
    ContractTerms,
    ExpenseBilling,
    FixedFee,
    MilestoneBilling,
    RecurringFee,
    TimeAndMaterialsBilling,
)
from pssync.money import Money


class BillingLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    line_id: str
    kind: str
    description: str
    amount: Money | None  # None: billed from approved time at the rate card
    due_on: date | None  # None: due when its trigger (milestone acceptance, time approval) happens
    obligation_id: str | None
    trigger: str


def _month_starts(start: date, end: date) -> list[date]:
    months, current = [], date(start.year, start.month, 1)
    while current <= end:
        months.append(current)
        current = date(current.year + current.month // 12, current.month % 12 + 1, 1)
    return months


def billing_schedule(terms: ContractTerms) -> list[BillingLine]:
    lines: list[BillingLine] = []
    for index, term in enumerate(terms.billing, start=1):
        match term:
            case FixedFee(instalments=instalments):
                for n, instalment in enumerate(instalments, start=1):
                    lines.append(
                        BillingLine(
                            line_id=f"B{index}-I{n}",
                            kind="instalment",
                            description=f"Instalment {n}",
                            amount=instalment.amount,
                            due_on=instalment.due_on,
                            obligation_id=instalment.obligation_id,
                            trigger="date",
                        )
                    )
            case MilestoneBilling(milestones=milestones):
                for milestone in milestones:
                    lines.append(
                        BillingLine(
                            line_id=f"B{index}-{milestone.milestone_id}",
                            kind="milestone",
                            description=milestone.name,
                            amount=milestone.amount,
                            due_on=None,
                            obligation_id=milestone.obligation_id,
                            trigger=f"milestone_accepted:{milestone.milestone_id}",
                        )
                    )
            case RecurringFee(kind=kind, monthly_fee=fee, start=start, end=end, obligation_id=obligation_id):
                for month in _month_starts(start, end):
                    lines.append(
                        BillingLine(
                            line_id=f"B{index}-{month:%Y-%m}",
                            kind=kind,
                            description=f"{kind.replace('_', ' ').title()} {month:%B %Y}",
                            amount=fee,
                            due_on=month,
                            obligation_id=obligation_id,
                            trigger="date",
                        )
                    )
            case TimeAndMaterialsBilling(obligation_id=obligation_id):
                lines.append(
                    BillingLine(
                        line_id=f"B{index}-TM",
                        kind="time_and_materials",
                        description="Approved time at the rate card",
                        amount=None,
                        due_on=None,
                        obligation_id=obligation_id,
                        trigger="time_approved",
                    )
                )
            case ExpenseBilling(obligation_id=obligation_id, markup_percent=markup):
                lines.append(
                    BillingLine(
                        line_id=f"B{index}-EXP",
                        kind="expenses",
                        description=f"Approved rebillable expenses at cost plus {markup} %",
                        amount=None,
                        due_on=None,
                        obligation_id=obligation_id,
                        trigger="expense_approved",
                    )
                )
    return lines
