"""Step: compare the recorded invoice with what pssync says is billable; a difference is an exception."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.receivable_payloads import ReceivablePayload
from pssync.handlers.steps import workflow_step
from pssync.wiring import version_store
from pssync.workflows import receivables


@workflow_step
def handler(payload: ReceivablePayload) -> receivables.ScheduleCheck:
    store = version_store(load_settings(BusinessTableSettings))
    return receivables.check_invoice_against_schedule(
        payload.require_invoice(), payload.require_recorded(), store
    )
