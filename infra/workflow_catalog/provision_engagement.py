"""Provision an engagement: a booked contract becomes a PSA project, an ERP billing schedule and a
revenue schedule."""

from infra.constructs.workflows import Needs, Step, WorkflowSpec

SPEC = WorkflowSpec(
    name="provision-engagement",
    construct_id="ProvisionEngagement",
    asl_file="provision_engagement.asl.json",
    starter_id="StartProvisionEngagement",
    starts_on=("ContractBooked",),
    steps=(
        Step("ValidateMasterData", "validate_master_data"),
        Step("RecordContractVersion", "record_contract_version", (Needs.BUSINESS_TABLE,)),
        Step("ProvisionPsaProject", "provision_psa_project", (Needs.PSA,)),
        Step("PublishErpBillingSchedule", "publish_erp_billing_schedule", (Needs.ERP,)),
        Step("BuildRevenueSchedule", "build_revenue_schedule", (Needs.BUSINESS_TABLE,)),
        Step("EmitEngagementActivated", "emit_engagement_activated", (Needs.BUS,)),
    ),
)
