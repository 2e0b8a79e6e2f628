"""Step: record the document in each contract's receivables ledger (a payment allocated over its invoices)."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.receivable_payloads import ReceivablePayload
from pssync.handlers.steps import workflow_step
from pssync.ports import SystemClock
from pssync.wiring import version_store
from pssync.workflows import receivables


@workflow_step
def handler(payload: ReceivablePayload) -> receivables.RecordedReceivable:
    store = version_store(load_settings(BusinessTableSettings))
    return receivables.record_receivable(payload.event, payload.require_match(), store, SystemClock().now())
