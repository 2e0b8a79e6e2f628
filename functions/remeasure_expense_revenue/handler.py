"""Step: the revenue schedule with every recorded cost (cost-to-cost progress) and every other fact."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.expense_payloads import ExpensePayload
from pssync.handlers.steps import workflow_step
from pssync.ports import SystemClock
from pssync.wiring import version_store
from pssync.workflows import expenses, provision


@workflow_step
def handler(payload: ExpensePayload) -> provision.RevenueReceipt:
    store = version_store(load_settings(BusinessTableSettings))
    return expenses.remeasure_revenue(payload.event, payload.require_recorded(), store, SystemClock().now())
