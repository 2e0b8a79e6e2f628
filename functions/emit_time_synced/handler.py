"""Step: publish 'time synced' and the billable time sync metrics."""

from aws_lambda_powertools.metrics import MetricUnit

from pssync.config import EventBusSettings, load_settings
from pssync.handlers.steps import TimePayload, workflow_step
from pssync.observability import BusinessMetric, metrics
from pssync.ports import SystemClock
from pssync.wiring import publisher
from pssync.workflows import time_approval


@workflow_step
def handler(payload: TimePayload) -> dict[str, str]:
    if payload.erp is None or payload.revenue is None:
        raise ValueError("time synced needs the ERP and revenue results")
    synced = time_approval.time_synced(
        payload.event, payload.require_match(), payload.require_recorded(), payload.erp, payload.revenue,
        SystemClock().now(),
    )  # fmt: skip
    publisher(load_settings(EventBusSettings)).publish([synced])
    metrics.add_metric(name=BusinessMetric.BILLABLE_TIME_SYNCED, unit=MetricUnit.Count, value=1)
    metrics.add_metric(
        name=BusinessMetric.BILLABLE_TIME_SYNC_LAG, unit=MetricUnit.Seconds, value=synced.data.sync_seconds
    )
    return {"event_id": synced.event_id, "outcome": synced.data.outcome}
