"""Step: rebill at the policy's markup (category, currency, cap) and record it in the expense ledger."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.expense_payloads import ExpensePayload
from pssync.handlers.steps import workflow_step
from pssync.ports import SystemClock
from pssync.wiring import version_store
from pssync.workflows import expenses


@workflow_step
def handler(payload: ExpensePayload) -> expenses.RecordedExpense:
    store = version_store(load_settings(BusinessTableSettings))
    return expenses.record_expense(payload.event, payload.require_match(), store, SystemClock().now())
