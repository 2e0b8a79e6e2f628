"""Apply approved time: an approved time entry reaches billing (T&M lines) and the revenue schedule."""

from infra.constructs.workflows import Needs, Step, WorkflowSpec

SPEC = WorkflowSpec(
    name="apply-approved-time",
    construct_id="ApplyApprovedTime",
    asl_file="apply_approved_time.asl.json",
    starter_id="StartApplyApprovedTime",
    starts_on=("TimeApproved",),
    steps=(
        Step("MatchTimeEntry", "match_time_entry", (Needs.BUSINESS_TABLE,)),
        Step("RecordBillableTime", "record_billable_time", (Needs.BUSINESS_TABLE,)),
        # Sends the line to the ERP, then records in the ledger that it was sent (invoiced).
        Step("SendBillableTime", "send_billable_time", (Needs.ERP, Needs.BUSINESS_TABLE)),
        Step("RemeasureTimeRevenue", "remeasure_time_revenue", (Needs.BUSINESS_TABLE,)),
        Step("EmitTimeSynced", "emit_time_synced", (Needs.BUS,)),
    ),
)
