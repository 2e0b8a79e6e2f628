"""Step: rate the entry at the rate card, check the cap and record it in the contract's time ledger."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.steps import TimePayload, workflow_step
from pssync.ports import SystemClock
from pssync.wiring import version_store
from pssync.workflows import time_approval


@workflow_step
def handler(payload: TimePayload) -> time_approval.RecordedTime:
    store = version_store(load_settings(BusinessTableSettings))
    return time_approval.record_time(payload.event, payload.require_match(), store, SystemClock().now())
