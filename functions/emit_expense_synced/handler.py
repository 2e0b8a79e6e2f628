"""Step: publish 'expense synced' and the expense sync metrics."""

from aws_lambda_powertools.metrics import MetricUnit

from pssync.config import EventBusSettings, load_settings
from pssync.handlers.expense_payloads import ExpensePayload
from pssync.handlers.steps import workflow_step
from pssync.observability import BusinessMetric, metrics
from pssync.ports import SystemClock
from pssync.wiring import publisher
from pssync.workflows import expenses


@workflow_step
def handler(payload: ExpensePayload) -> dict[str, str]:
    if payload.erp is None or payload.revenue is None:
        raise ValueError("expense synced needs the ERP and revenue results")
    synced = expenses.expense_synced(
        payload.event, payload.require_match(), payload.require_recorded(), payload.erp, payload.revenue,
        SystemClock().now(),
    )  # fmt: skip
    publisher(load_settings(EventBusSettings)).publish([synced])
    metrics.add_metric(name=BusinessMetric.EXPENSE_SYNCED, unit=MetricUnit.Count, value=1)
    metrics.add_metric(
        name=BusinessMetric.EXPENSE_SYNC_LAG, unit=MetricUnit.Seconds, value=synced.data.sync_seconds
    )
    return {"event_id": synced.event_id, "outcome": synced.data.outcome}
