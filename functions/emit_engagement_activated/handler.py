"""Step: publish 'engagement activated' and the activation-time metric."""

from aws_lambda_powertools.metrics import MetricUnit

from pssync.config import EventBusSettings, load_settings
from pssync.handlers.steps import StepPayload, workflow_step
from pssync.observability import BusinessMetric, metrics
from pssync.ports import SystemClock
from pssync.wiring import publisher
from pssync.workflows import provision


@workflow_step
def handler(payload: StepPayload) -> dict[str, str]:
    if payload.psa is None or payload.erp is None or payload.revenue is None:
        raise ValueError("engagement activated needs the PSA, ERP and revenue step results")
    activated = provision.engagement_activated(
        payload.event,
        payload.require_contract(),
        payload.psa,
        payload.erp,
        payload.revenue,
        SystemClock().now(),
    )
    event_id = provision.emit_engagement_activated(publisher(load_settings(EventBusSettings)), activated)
    metrics.add_metric(
        name=BusinessMetric.ACTIVATION_TIME, unit=MetricUnit.Seconds, value=activated.data.activation_seconds
    )
    return {"event_id": event_id}
