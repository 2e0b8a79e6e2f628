"""The apply-approved-expense workflow in the template: rule, inbox + DLQ, starter, state machine, steps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.constructs.workflows import STATEMACHINES_DIR
from infra.workflow_catalog import catalog
from infra.workflow_catalog.apply_approved_expense import SPEC as APPLY_APPROVED_EXPENSE
from tests.infra.test_infra_template import Resources, functions_by_role, of_type, ref_target

pytestmark = pytest.mark.infra

TRANSIENT = "TransientDownstreamError"
FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"


def _queue_id(resources: Resources, prefix: str) -> str:
    (queue_id,) = [i for i in of_type(resources, "AWS::SQS::Queue") if i.startswith(prefix)]
    return queue_id


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}


def test_expense_approved_rule_routes_to_its_own_inbox_with_the_target_dlq(
    template: Template, resources: Resources
) -> None:
    (inbox,) = [
        i
        for i in of_type(resources, "AWS::SQS::Queue")
        if i.startswith("QueuesApplyApprovedExpenseInbox") and "Dlq" not in i
    ]
    target_dlq = _queue_id(resources, "QueuesEventBridgeTargetDlq")
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {"source": ["pssync.ingest"], "detail-type": ["ExpenseApproved"]},
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [inbox, "Arn"]},
                        "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [target_dlq, "Arn"]}},
                        "RetryPolicy": Match.object_like({"MaximumRetryAttempts": Match.any_value()}),
                    }
                )
            ],
        },
    )
    rules = [
        r
        for r in of_type(resources, "AWS::Events::Rule").values()
        if "ExpenseApproved" in json.dumps(r["Properties"].get("EventPattern", {}))
    ]
    assert len(rules) == 1, "exactly one rule consumes ExpenseApproved"


def test_the_inbox_redrives_to_a_tagged_dlq_and_names_its_workflow(resources: Resources) -> None:
    queues = of_type(resources, "AWS::SQS::Queue")
    (inbox_id,) = [i for i in queues if i.startswith("QueuesApplyApprovedExpenseInbox") and "Dlq" not in i]
    (dlq_id,) = [i for i in queues if i.startswith("QueuesApplyApprovedExpenseInboxDlq")]
    inbox, dlq = queues[inbox_id], queues[dlq_id]
    redrive = inbox["Properties"]["RedrivePolicy"]
    assert ref_target(redrive["deadLetterTargetArn"]) == dlq_id and redrive["maxReceiveCount"] == 5
    assert _tags(inbox)["pssync:workflow"] == "apply-approved-expense"
    assert _tags(dlq)["pssync:replay"] == "redrive"
    assert dlq["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    starter = functions_by_role(resources)["start_apply_approved_expense"]["Properties"]
    assert inbox["Properties"]["VisibilityTimeout"] >= 6 * starter["Timeout"]
    assert starter["Environment"]["Variables"]["WORKFLOW_NAME"] == "apply-approved-expense"
    assert starter["Environment"]["Variables"]["WORKFLOW_EVENT_TYPES"] == "ExpenseApproved"
    mappings = [
        m["Properties"]
        for m in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
        if ref_target(m["Properties"]["EventSourceArn"]) == inbox_id
    ]
    assert len(mappings) == 1 and mappings[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_every_step_retries_transient_faults_and_catches_the_rest_into_the_exceptions_queue() -> None:
    definition = json.loads((STATEMACHINES_DIR / APPLY_APPROVED_EXPENSE.asl_file).read_text())
    states = definition["States"]
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task" and name != "RecordException"}
    assert set(tasks) == {step.state for step in APPLY_APPROVED_EXPENSE.steps}
    for name, state in tasks.items():
        assert state["Resource"] == f"${{{name}FunctionArn}}"
        assert TRANSIENT in state["Retry"][0]["ErrorEquals"], name
        [catch] = state["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"] and states[catch["Next"]]["Next"] == "RecordException"
    record = states["RecordException"]
    assert record["Parameters"]["MessageBody"]["workflow"] == APPLY_APPROVED_EXPENSE.name
    assert record["Parameters"]["QueueUrl"] == "${ExceptionsQueueUrl}"
    # A duplicate or stale expense ends as succeeded with its reason, without billing or remeasuring.
    [unchanged] = states["WasExpenseChanged"]["Choices"]
    assert (unchanged["Variable"], unchanged["StringEquals"]) == ("$.recorded.outcome", "unchanged")
    assert states[unchanged["Next"]]["Type"] == "Succeed"
    assert states["WasExpenseChanged"]["Default"] == "SendRebillableExpense"


@pytest.mark.parametrize(
    ("role", "expected", "absent"),
    [
        ("match_expense", {"BUSINESS_TABLE_NAME"}, {"DELIVERY_LOG_TABLE_NAME", "EVENT_BUS_NAME"}),
        ("record_expense", {"BUSINESS_TABLE_NAME"}, {"DELIVERY_LOG_TABLE_NAME", "EVENT_BUS_NAME"}),
        (
            "send_rebillable_expense",
            {"BUSINESS_TABLE_NAME", "DELIVERY_LOG_TABLE_NAME", "ERP_CONNECTOR"},
            {"PSA_CONNECTOR", "EVENT_BUS_NAME"},
        ),
        ("remeasure_expense_revenue", {"BUSINESS_TABLE_NAME"}, {"DELIVERY_LOG_TABLE_NAME"}),
        ("emit_expense_synced", {"EVENT_BUS_NAME"}, {"BUSINESS_TABLE_NAME", "DELIVERY_LOG_TABLE_NAME"}),
    ],
)
def test_each_step_gets_only_what_it_needs(
    resources: Resources, role: str, expected: set[str], absent: set[str]
) -> None:
    variables = functions_by_role(resources)[role]["Properties"]["Environment"]["Variables"]
    assert expected <= set(variables) and not absent & set(variables)
    if "ERP_CONNECTOR" in expected:
        assert variables["ERP_CONNECTOR"] == "shadow"


def test_the_state_machine_is_standard_traced_logged_and_alarmed(resources: Resources) -> None:
    (machine_id,) = [
        i
        for i in of_type(resources, "AWS::StepFunctions::StateMachine")
        if i.startswith("ApplyApprovedExpense")
    ]
    machine = resources[machine_id]["Properties"]
    assert machine["StateMachineType"] == "STANDARD" and machine["TracingConfiguration"]["Enabled"]
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    failed_alarms = [
        a
        for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "ExecutionsFailed"
        and any(ref_target(d["Value"]) == machine_id for d in a["Properties"].get("Dimensions", []))
    ]
    assert failed_alarms, "failed executions of apply-approved-expense raise an alarm"


def test_the_catalogue_deploys_the_workflow_and_only_it_starts_on_expense_approved() -> None:
    starting = [spec for spec in catalog() if "ExpenseApproved" in spec.starts_on]
    assert starting == [APPLY_APPROVED_EXPENSE]
    folders = {step.folder for step in APPLY_APPROVED_EXPENSE.steps}
    assert all((FUNCTIONS_DIR / folder / "handler.py").is_file() for folder in folders)
