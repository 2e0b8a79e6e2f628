"""Step: publish 'amendment propagated' and the amendment propagation lag metric."""

from aws_lambda_powertools.metrics import MetricUnit

from pssync.config import EventBusSettings, load_settings
from pssync.handlers.steps import AmendmentPayload, workflow_step
from pssync.observability import BusinessMetric, metrics
from pssync.ports import SystemClock
from pssync.wiring import publisher
from pssync.workflows import amendment


@workflow_step
def handler(payload: AmendmentPayload) -> dict[str, str]:
    if (
        payload.classification is None
        or payload.psa is None
        or payload.erp is None
        or payload.revenue is None
    ):
        raise ValueError("amendment propagated needs the classification, PSA, ERP and revenue results")
    propagated = amendment.amendment_propagated(
        payload.event, payload.require_contract(), payload.classification, payload.psa, payload.erp,
        payload.revenue, SystemClock().now(),
    )  # fmt: skip
    publisher(load_settings(EventBusSettings)).publish([propagated])
    metrics.add_metric(
        name=BusinessMetric.AMENDMENT_PROPAGATION_LAG,
        unit=MetricUnit.Seconds,
        value=propagated.data.propagation_seconds,
    )
    return {"event_id": propagated.event_id}
