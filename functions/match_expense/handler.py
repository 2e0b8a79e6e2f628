"""Step: match the approved expense to its contract version, obligation and expense policy."""

from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.expense_payloads import ExpensePayload
from pssync.handlers.steps import workflow_step
from pssync.wiring import version_store
from pssync.workflows import expenses


@workflow_step
def handler(payload: ExpensePayload) -> expenses.ExpenseMatch:
    store = version_store(load_settings(BusinessTableSettings))
    return expenses.match_approved_expense(payload.event, store)
