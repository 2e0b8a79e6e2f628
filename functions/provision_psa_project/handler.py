"""Step: upsert the project (WBS, billing model, entity, currency) in the PSA."""

from pssync.handlers.steps import StepPayload, workflow_step
from pssync.wiring import deliver
from pssync.workflows import provision


@workflow_step
def handler(payload: StepPayload) -> provision.CommandReceipt:
    version = payload.require_contract().version
    return deliver(provision.provision_project_command(payload.event, payload.event.data.contract, version))
