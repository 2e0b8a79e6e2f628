"""Step: send the rebilled line to the ERP, then mark it invoiced in the expense ledger."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.expense_payloads import ExpensePayload
from pssync.handlers.steps import workflow_step
from pssync.ports import SystemClock
from pssync.wiring import deliver, version_store
from pssync.workflows import expenses


@workflow_step
def handler(payload: ExpensePayload) -> expenses.ExpenseCommandReceipt:
    store = version_store(load_settings(BusinessTableSettings))
    return expenses.send_rebillable_expense(
        payload.event, payload.require_recorded(), store, deliver, SystemClock()
    )
