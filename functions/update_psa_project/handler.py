"""Step: upsert the project for the amended contract version in the PSA."""

from pssync.handlers.steps import AmendmentPayload, workflow_step
from pssync.wiring import deliver
from pssync.workflows import provision


@workflow_step
def handler(payload: AmendmentPayload) -> provision.CommandReceipt:
    version = payload.require_contract().version
    return deliver(provision.provision_project_command(payload.event, payload.event.data.contract, version))
