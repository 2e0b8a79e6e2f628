"""Step: receivable, contract asset and contract liability of each contract, from the revenue engine."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.receivable_payloads import ReceivablePayload
from pssync.handlers.steps import workflow_step
from pssync.ports import SystemClock
from pssync.wiring import version_store
from pssync.workflows import receivables


@workflow_step
def handler(payload: ReceivablePayload) -> receivables.BalancesReceipt:
    store = version_store(load_settings(BusinessTableSettings))
    return receivables.update_contract_balances(
        payload.event, payload.require_recorded(), store, SystemClock().now()
    )
