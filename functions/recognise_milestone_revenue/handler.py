"""Step: a new revenue-schedule version with every accepted milestone (output method)."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.milestone_payloads import MilestonePayload
from pssync.handlers.steps import workflow_step
from pssync.ports import SystemClock
from pssync.wiring import version_store
from pssync.workflows import milestones, provision


@workflow_step
def handler(payload: MilestonePayload) -> provision.RevenueReceipt:
    store = version_store(load_settings(BusinessTableSettings))
    return milestones.recognise_milestone_revenue(
        payload.event, payload.require_milestone(), store, SystemClock().now()
    )
