"""Step: a new revenue-schedule version with every recorded hour (input method and T&M)."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.steps import TimePayload, workflow_step
from pssync.ports import SystemClock
from pssync.wiring import version_store
from pssync.workflows import provision, time_approval


@workflow_step
def handler(payload: TimePayload) -> provision.RevenueReceipt:
    store = version_store(load_settings(BusinessTableSettings))
    return time_approval.remeasure_revenue(
        payload.event, payload.require_recorded(), store, SystemClock().now()
    )
