"""Step: append contract version N+1 (conditional write over the head it was checked against)."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.steps import AmendmentPayload, workflow_step
from pssync.ports import SystemClock
from pssync.wiring import version_store
from pssync.workflows import amendment


@workflow_step
def handler(payload: AmendmentPayload) -> amendment.RecordedAmendment:
    store = version_store(load_settings(BusinessTableSettings))
    return amendment.record_amended_version(payload.event, store, SystemClock().now())
