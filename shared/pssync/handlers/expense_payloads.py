"""What the apply-approved-expense step handlers receive (with `handlers.steps.workflow_step`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from pssync.model.events import ExpenseApproved
from pssync.workflows.expenses import ExpenseCommandReceipt, ExpenseMatch, RecordedExpense
from pssync.workflows.provision import RevenueReceipt


class ExpensePayload(BaseModel):
    """The state an apply-approved-expense step receives (see apply_approved_expense.asl.json)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event: ExpenseApproved
    match: ExpenseMatch | None = None
    recorded: RecordedExpense | None = None
    erp: ExpenseCommandReceipt | None = None
    revenue: RevenueReceipt | None = None

    def require_match(self) -> ExpenseMatch:
        if self.match is None:
            raise ValueError("this step runs after MatchExpense; 'match' is missing")
        return self.match

    def require_recorded(self) -> RecordedExpense:
        if self.recorded is None:
            raise ValueError("this step runs after RecordExpense; 'recorded' is missing")
        return self.recorded
