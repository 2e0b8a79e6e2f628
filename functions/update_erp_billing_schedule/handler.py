"""Step: upsert the amended contract version's billing schedule in the ERP."""

from pssync.handlers.steps import AmendmentPayload, workflow_step
from pssync.wiring import deliver
from pssync.workflows import provision


@workflow_step
def handler(payload: AmendmentPayload) -> provision.CommandReceipt:
    version = payload.require_contract().version
    return deliver(provision.billing_schedule_command(payload.event, payload.event.data.contract, version))
