"""Step: upsert the project for the amended contract version in the PSA."""

from pssync.config import DeliveryLogSettings, load_settings
from pssync.handlers.steps import AmendmentPayload, workflow_step
from pssync.ports import SystemClock
from pssync.wiring import connector_for
from pssync.workflows import provision


@workflow_step
def handler(payload: AmendmentPayload) -> provision.CommandReceipt:
    settings = load_settings(DeliveryLogSettings)
    version = payload.require_contract().version
    command = provision.provision_project_command(payload.event, payload.event.data.contract, version)
    return provision.send(connector_for(settings.psa_connector, settings), command, SystemClock().now())
