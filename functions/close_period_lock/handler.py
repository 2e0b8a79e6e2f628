"""Step: lock the period in the entity's PERIOD aggregate with the shards' totals; emit PeriodClosed."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from pssync.adapters.aws import S3JsonObjects
from pssync.config import BusinessTableSettings, EventBusSettings, load_settings
from pssync.handlers.stack import lambda_handler
from pssync.observability import BusinessMetric, metrics
from pssync.ports import SystemClock
from pssync.wiring import client, publisher, version_store
from pssync.workflows import period_close


class LockSettings(BusinessTableSettings):
    close_bucket_name: str


@lambda_handler(correlation_id_path="request.close_id")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = period_close.CloseState.model_validate(event)
    plan = state.require_plan()
    settings = load_settings(LockSettings)
    objects = S3JsonObjects(settings.close_bucket_name, client("s3"))
    summaries = period_close.shard_summaries(objects, state.request.close_id, plan.shards)
    # No ERP reports a deferred revenue balance to pssync yet: the variance stays empty until one does.
    result, closed = period_close.lock_period(
        state.request, state.require_gate(), summaries, version_store(settings), SystemClock().now()
    )
    publisher(load_settings(EventBusSettings)).publish([closed])
    if result.newly_locked:
        metrics.add_metric(name=BusinessMetric.PERIOD_CLOSED, unit=MetricUnit.Count, value=1)
        for variance in closed.data.deferred_revenue_variance:  # one per currency, when the ERP reports
            metrics.add_metric(
                name=BusinessMetric.DEFERRED_REVENUE_VARIANCE,
                unit=MetricUnit.NoUnit,
                value=float(variance.amount),
            )
    return {**result.model_dump(mode="json"), "event_id": closed.event_id}
