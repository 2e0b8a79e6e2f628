"""Step: send the billable line to the ERP, then mark it invoiced in the time ledger."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.steps import TimePayload, workflow_step
from pssync.ports import SystemClock
from pssync.wiring import deliver, version_store
from pssync.workflows import time_approval


@workflow_step
def handler(payload: TimePayload) -> time_approval.TimeCommandReceipt:
    store = version_store(load_settings(BusinessTableSettings))
    return time_approval.send_billable_time(
        payload.event, payload.require_recorded(), store, deliver, SystemClock()
    )
