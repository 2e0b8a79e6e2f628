"""Step: upsert the project (WBS, billing model, entity, currency) in the PSA."""

from pssync.config import DeliveryLogSettings, load_settings
from pssync.handlers.steps import StepPayload, workflow_step
from pssync.ports import SystemClock
from pssync.wiring import connector_for
from pssync.workflows import provision


@workflow_step
def handler(payload: StepPayload) -> provision.CommandReceipt:
    settings = load_settings(DeliveryLogSettings)
    command = provision.provision_project_command(
        payload.event, payload.event.data.contract, payload.require_contract().version
    )
    return provision.send(connector_for(settings.psa_connector, settings), command, SystemClock().now())
