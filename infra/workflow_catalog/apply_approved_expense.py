"""Apply approved expense: an approved expense reaches billing (rebilled at its markup) and cost-to-cost
progress of the revenue schedule."""

from infra.constructs.workflows import Needs, Step, WorkflowSpec

SPEC = WorkflowSpec(
    name="apply-approved-expense",
    construct_id="ApplyApprovedExpense",
    asl_file="apply_approved_expense.asl.json",
    starter_id="StartApplyApprovedExpense",
    starts_on=("ExpenseApproved",),
    steps=(
        Step("MatchExpense", "match_expense", (Needs.BUSINESS_TABLE,)),
        Step("RecordExpense", "record_expense", (Needs.BUSINESS_TABLE,)),
        # Sends the rebilled line to the ERP, then records in the ledger that it was sent (invoiced).
        Step("SendRebillableExpense", "send_rebillable_expense", (Needs.ERP, Needs.BUSINESS_TABLE)),
        Step("RemeasureExpenseRevenue", "remeasure_expense_revenue", (Needs.BUSINESS_TABLE,)),
        Step("EmitExpenseSynced", "emit_expense_synced", (Needs.BUS,)),
    ),
)
