"""Accept a milestone: explicit or passive acceptance (a durable timer) releases the milestone's invoice to
the ERP and recognises its output-method revenue."""

from infra.constructs.workflows import Needs, Step, WorkflowSpec

SPEC = WorkflowSpec(
    name="accept-milestone",
    construct_id="AcceptMilestone",
    asl_file="accept_milestone.asl.json",
    starter_id="StartAcceptMilestone",
    starts_on=("MilestoneCompleted",),
    steps=(
        Step("RecordMilestone", "record_milestone", (Needs.BUSINESS_TABLE,)),
        # Runs after the Wait state: the execution itself is the passive acceptance timer.
        Step("DecideAcceptance", "decide_acceptance", (Needs.BUSINESS_TABLE,)),
        # Sends the release to the ERP, then records it in the milestone ledger.
        Step("ReleaseMilestoneInvoice", "release_milestone_invoice", (Needs.ERP, Needs.BUSINESS_TABLE)),
        Step("RecogniseMilestoneRevenue", "recognise_milestone_revenue", (Needs.BUSINESS_TABLE,)),
        Step("EmitMilestoneInvoiced", "emit_milestone_invoiced", (Needs.BUS,)),
    ),
)
