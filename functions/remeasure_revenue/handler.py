"""Step: the revenue schedule after the modification, as a new revenue-schedule version."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.steps import AmendmentPayload, workflow_step
from pssync.ports import SystemClock
from pssync.wiring import version_store
from pssync.workflows import amendment, provision


@workflow_step
def handler(payload: AmendmentPayload) -> provision.RevenueReceipt:
    store = version_store(load_settings(BusinessTableSettings))
    return amendment.remeasure_revenue(payload.event, payload.require_contract(), store, SystemClock().now())
