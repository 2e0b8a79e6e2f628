"""Step: the revenue schedule after the modification, as a new revenue-schedule version."""

from pssync.adapters.wiring import version_store
from pssync.config import BusinessTableSettings, load_settings
from pssync.lambda_support import AmendmentPayload, workflow_step
from pssync.ports import SystemClock
from pssync.workflows import amendment, provision


@workflow_step
def handler(payload: AmendmentPayload) -> provision.RevenueReceipt:
    store = version_store(load_settings(BusinessTableSettings))
    return amendment.remeasure_revenue(payload.event, payload.require_contract(), store, SystemClock().now())
