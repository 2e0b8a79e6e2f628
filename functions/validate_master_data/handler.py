"""Step: cross-field master data rules; a violation goes to the exceptions queue."""

from pssync.handlers.steps import StepPayload, workflow_step
from pssync.workflows import provision


@workflow_step
def handler(payload: StepPayload) -> provision.ValidationReport:
    return provision.validate_master_data(payload.event)
