"""Step: compute and version the revenue schedule of the recorded contract version."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.steps import StepPayload, workflow_step
from pssync.ports import SystemClock
from pssync.wiring import version_store
from pssync.workflows import provision


@workflow_step
def handler(payload: StepPayload) -> provision.RevenueReceipt:
    store = version_store(load_settings(BusinessTableSettings))
    return provision.build_revenue_schedule(
        payload.event, payload.require_contract(), store, SystemClock().now()
    )
