"""Step: match the approved entry to its contract version, obligation and WBS element."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.steps import TimePayload, workflow_step
from pssync.wiring import version_store
from pssync.workflows import time_approval


@workflow_step
def handler(payload: TimePayload) -> time_approval.TimeMatch:
    store = version_store(load_settings(BusinessTableSettings))
    return time_approval.match_time_entry(payload.event, store)
