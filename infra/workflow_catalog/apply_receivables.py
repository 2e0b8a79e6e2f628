"""Apply receivables: invoices and payments from the ERP reach each contract's balances (ASC 606-10-45)."""

from infra.constructs.workflows import Needs, Step, WorkflowSpec

SPEC = WorkflowSpec(
    name="apply-receivables",
    construct_id="ApplyReceivables",
    asl_file="apply_receivables.asl.json",
    starter_id="StartApplyReceivables",
    starts_on=("InvoicePosted", "PaymentReceived"),
    steps=(
        Step("MatchReceivable", "match_receivable", (Needs.BUSINESS_TABLE,)),
        Step("RecordReceivable", "record_receivable", (Needs.BUSINESS_TABLE,)),
        Step("UpdateContractBalances", "update_contract_balances", (Needs.BUSINESS_TABLE,)),
        Step("EmitContractBalances", "emit_contract_balances", (Needs.BUS,)),
        # Invoices only, after the balances: a mismatch is an exception finance reads next to them.
        Step("CheckInvoiceAgainstSchedule", "check_invoice_against_schedule", (Needs.BUSINESS_TABLE,)),
    ),
)
