"""The six business metrics on the dashboard and the new alarms, in the synthesised stack: exception aging
by workflow, stage and cause; reconciliation variance (alarmed) and deferred revenue variance from
reconciliation per currency; lag objectives alarmed; every alarm to the stack's SNS topic."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.constructs.monitoring import LagObjectives, parse_lag_objectives
from tests.infra.test_infra_template import Resources, of_type, ref_target

pytestmark = pytest.mark.infra


def _dashboard(resources: Resources) -> dict[str, Any]:
    """The dashboard body as JSON, every CloudFormation token inside it replaced by `TOKEN`."""
    (dashboard,) = of_type(resources, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    if isinstance(body, dict):
        separator, parts = body["Fn::Join"]
        body = separator.join(part if isinstance(part, str) else "TOKEN" for part in parts)
    return json.loads(body)  # type: ignore[no-any-return]


def _widget(dashboard: dict[str, Any], title_start: str) -> dict[str, Any]:
    [widget] = [w for w in dashboard["widgets"] if w["properties"].get("title", "").startswith(title_start)]
    return widget["properties"]  # type: ignore[no-any-return]


def _expressions(widget: dict[str, Any]) -> list[str]:
    return [m[0]["expression"] for m in widget["metrics"] if isinstance(m[0], dict) and "expression" in m[0]]


def _alarm(resources: Resources, metric_name: str) -> dict[str, Any]:
    [alarm] = [
        a["Properties"]
        for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == metric_name
    ]
    return alarm


def _topic_id(resources: Resources) -> str:
    (topic_id,) = of_type(resources, "AWS::SNS::Topic")
    return topic_id


def test_exception_aging_is_graphed_by_workflow_stage_and_cause(resources: Resources) -> None:
    dashboard = _dashboard(resources)
    age = _widget(dashboard, "Exception aging: oldest open exception")
    assert _expressions(age) == [
        "SEARCH('{pssync,service,workflow,stage,cause} MetricName=\"ExceptionAgeSeconds\"', 'Maximum', 900)"
    ]
    count = _widget(dashboard, "Open exceptions by workflow, stage and cause")
    assert _expressions(count) == [
        "SEARCH('{pssync,service,workflow,stage,cause} MetricName=\"OpenExceptions\"', 'Maximum', 900)"
    ]


def test_reconciliation_and_deferred_revenue_variance_are_graphed_per_cause_and_currency(
    resources: Resources,
) -> None:
    dashboard = _dashboard(resources)
    variances = _widget(dashboard, "Reconciliation: engagements, and variances above tolerance by cause")
    assert _expressions(variances) == [
        "SEARCH('{pssync,service,cause} MetricName=\"ReconciliationVariances\"', 'Maximum', 86400)"
    ]
    named = [m for m in variances["metrics"] if isinstance(m[0], str)]
    assert [m[:2] for m in named] == [
        ["pssync", "EngagementsReconciled"],
        ["pssync", "ReconciliationVariances"],
    ]
    amount = _widget(dashboard, "Reconciliation variance above tolerance (absolute) by currency")
    assert _expressions(amount) == [
        "SEARCH('{pssync,service,currency} MetricName=\"ReconciliationVarianceAmount\"', 'Maximum', 86400)"
    ]
    deferred = _widget(dashboard, "Deferred revenue variance (pssync - ERP) from reconciliation")
    assert _expressions(deferred) == [
        'SEARCH(\'{pssync,service,source,currency} MetricName="DeferredRevenueVariance" '
        "source=\"reconciliation\"', 'Maximum', 86400)"
    ]


def test_all_six_business_metrics_are_on_the_dashboard(resources: Resources) -> None:
    text = json.dumps(_dashboard(resources))
    for metric in (
        "EngagementActivationSeconds",  # quote-to-project activation time
        "AmendmentPropagationLagSeconds",
        "BillableTimeSynced",  # billable time sync success rate (with the workflow's failures)
        "MilestoneToInvoiceCycleSeconds",
        "DeferredRevenueVariance",
        "ExceptionAgeSeconds",  # exception aging by workflow stage and cause
    ):
        assert metric in text, metric
    assert "100 * synced / (synced + failed)" in text


def test_a_reconciliation_variance_above_tolerance_alarms_the_topic_until_a_clean_day(
    resources: Resources,
) -> None:
    alarm = _alarm(resources, "ReconciliationVariances")
    assert (alarm["Namespace"], alarm["Dimensions"]) == ("pssync", [{"Name": "service", "Value": "pssync"}])
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Maximum", 86400, 0)
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    topic = _topic_id(resources)
    assert [ref_target(a) for a in alarm["AlarmActions"]] == [topic]
    assert [ref_target(a) for a in alarm["OKActions"]] == [topic]


@pytest.mark.parametrize("metric_name", ["AmendmentPropagationLagSeconds", "BillableTimeSyncLagSeconds"])
def test_lag_above_its_objective_alarms_the_topic(resources: Resources, metric_name: str) -> None:
    alarm = _alarm(resources, metric_name)
    assert (alarm["ExtendedStatistic"], alarm["Period"], alarm["Threshold"]) == ("p90", 900, 900)
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "pssync"}]
    assert [ref_target(a) for a in alarm["AlarmActions"]] == [_topic_id(resources)]


def test_lag_objectives_come_from_context_in_seconds() -> None:
    assert parse_lag_objectives(None) == LagObjectives()
    assert parse_lag_objectives('{"amendment_propagation": 600}') == LagObjectives(
        amendment_propagation_seconds=600
    )
    for raw, message in (
        ('{"amendment": 600}', "keys"),
        ('{"billable_time_sync": 0}', "positive"),
        ('{"billable_time_sync": "900"}', "positive"),
        ("[", "not JSON"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_lag_objectives(raw)
