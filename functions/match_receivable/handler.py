"""Step: match the invoice or payment to its contract(s) (a payment through the invoices it names)."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.receivable_payloads import ReceivablePayload
from pssync.handlers.steps import workflow_step
from pssync.wiring import version_store
from pssync.workflows import receivables


@workflow_step
def handler(payload: ReceivablePayload) -> receivables.ReceivableMatch:
    store = version_store(load_settings(BusinessTableSettings))
    return receivables.match_receivable(payload.event, store)
