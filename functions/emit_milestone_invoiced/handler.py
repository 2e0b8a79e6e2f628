"""Step: publish 'milestone invoiced' and the milestone-to-invoice cycle time."""

from aws_lambda_powertools.metrics import MetricUnit

from pssync.config import EventBusSettings, load_settings
from pssync.handlers.milestone_payloads import MilestonePayload
from pssync.handlers.steps import workflow_step
from pssync.observability import BusinessMetric, metrics
from pssync.ports import SystemClock
from pssync.wiring import publisher
from pssync.workflows import milestones


@workflow_step
def handler(payload: MilestonePayload) -> dict[str, str]:
    invoiced = milestones.milestone_invoiced(
        payload.event, payload.require_milestone(), payload.require_release(), payload.require_revenue(),
        SystemClock().now(),
    )  # fmt: skip
    publisher(load_settings(EventBusSettings)).publish([invoiced])
    metrics.add_metric(name=BusinessMetric.MILESTONE_INVOICED, unit=MetricUnit.Count, value=1)
    metrics.add_metric(
        name=BusinessMetric.MILESTONE_TO_INVOICE_CYCLE,
        unit=MetricUnit.Seconds,
        value=invoiced.data.cycle_seconds,
    )
    return {"event_id": invoiced.event_id, "acceptance": invoiced.data.acceptance}
