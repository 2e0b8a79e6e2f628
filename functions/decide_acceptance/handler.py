"""Step: the passive acceptance timer fired; accept passively unless the ledger says otherwise."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.milestone_payloads import MilestonePayload
from pssync.handlers.steps import workflow_step
from pssync.ports import SystemClock
from pssync.wiring import version_store
from pssync.workflows import milestones


@workflow_step
def handler(payload: MilestonePayload) -> milestones.MilestoneState:
    store = version_store(load_settings(BusinessTableSettings))
    return milestones.decide_acceptance(
        payload.event, payload.require_milestone(), store, SystemClock().now()
    )
