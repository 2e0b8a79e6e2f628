"""Propagate an amendment: a new contract version reaches the PSA, the ERP and the revenue schedule."""

from infra.constructs.workflows import Needs, Step, WorkflowSpec

SPEC = WorkflowSpec(
    name="propagate-amendment",
    construct_id="PropagateAmendment",
    asl_file="propagate_amendment.asl.json",
    starter_id="StartPropagateAmendment",
    starts_on=("ContractAmended",),
    steps=(
        Step("GuardContractVersion", "guard_contract_version", (Needs.BUSINESS_TABLE,)),
        Step("RecordAmendedVersion", "record_amended_version", (Needs.BUSINESS_TABLE,)),
        Step("ClassifyModification", "classify_modification", (Needs.BUSINESS_TABLE,)),
        Step("UpdatePsaProject", "update_psa_project", (Needs.PSA,)),
        Step("UpdateErpBillingSchedule", "update_erp_billing_schedule", (Needs.ERP,)),
        Step("RemeasureRevenue", "remeasure_revenue", (Needs.BUSINESS_TABLE,)),
        Step("EmitAmendmentPropagated", "emit_amendment_propagated", (Needs.BUS,)),
    ),
)
