"""Step: release the accepted milestone's invoice to the ERP, then record the release."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.milestone_payloads import MilestonePayload
from pssync.handlers.steps import workflow_step
from pssync.ports import SystemClock
from pssync.wiring import deliver, version_store
from pssync.workflows import milestones


@workflow_step
def handler(payload: MilestonePayload) -> milestones.MilestoneRelease:
    store = version_store(load_settings(BusinessTableSettings))
    return milestones.release_milestone_invoice(
        payload.event, payload.require_milestone(), store, deliver, SystemClock()
    )
