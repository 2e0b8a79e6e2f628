"""Step: find the milestone's contract and record what the PSA says (completed, accepted, rejected)."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.milestone_payloads import MilestonePayload
from pssync.handlers.steps import workflow_step
from pssync.ports import SystemClock
from pssync.wiring import version_store
from pssync.workflows import milestones


@workflow_step
def handler(payload: MilestonePayload) -> milestones.MilestoneState:
    store = version_store(load_settings(BusinessTableSettings))
    matched = milestones.match_milestone(payload.event, store)
    return milestones.record_milestone(payload.event, matched, store, SystemClock().now())
