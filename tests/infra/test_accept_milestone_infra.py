"""The accept-milestone workflow in the template: catalogued, its rule and inbox, the durable timer, steps."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from infra.constructs.workflows import STATEMACHINES_DIR
from infra.workflow_catalog import catalog
from infra.workflow_catalog.accept_milestone import SPEC as ACCEPT_MILESTONE
from tests.infra.test_infra_template import Resources, functions_by_role, of_type, ref_target

pytestmark = pytest.mark.infra

TRANSIENT = "TransientDownstreamError"


def _definition() -> dict[str, object]:
    return json.loads((STATEMACHINES_DIR / ACCEPT_MILESTONE.asl_file).read_text())  # type: ignore[no-any-return]


def test_the_catalogue_picks_the_workflow_up_as_the_one_consumer_of_milestone_completed(
    template: Template, resources: Resources
) -> None:
    assert ACCEPT_MILESTONE in catalog()
    (inbox,) = [
        i
        for i in of_type(resources, "AWS::SQS::Queue")
        if i.startswith("QueuesAcceptMilestoneInbox") and "Dlq" not in i
    ]
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {"source": ["pssync.ingest"], "detail-type": ["MilestoneCompleted"]},
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [inbox, "Arn"]}})],
        },
    )
    rules = [
        r
        for r in of_type(resources, "AWS::Events::Rule").values()
        if "MilestoneCompleted" in json.dumps(r["Properties"].get("EventPattern", {}))
    ]
    assert len(rules) == 1, "exactly one rule consumes MilestoneCompleted"
    starter = functions_by_role(resources)["start_accept_milestone"]["Properties"]
    assert starter["Environment"]["Variables"]["WORKFLOW_EVENT_TYPES"] == "MilestoneCompleted"


def test_the_passive_acceptance_timer_is_a_wait_until_the_recorded_deadline_then_a_decision() -> None:
    states = _definition()["States"]
    assert isinstance(states, dict)
    [(name, wait)] = [(n, s) for n, s in states.items() if s["Type"] == "Wait"]
    # TimestampPath, not Seconds: the deadline is a business date computed once and recorded in the
    # ledger, so a retried or replayed execution waits for the same instant.
    assert wait["TimestampPath"] == "$.milestone.timer_fires_at" and "Seconds" not in wait
    assert wait["Next"] == "DecideAcceptance"
    route = states["RouteRecordedMilestone"]
    assert {c["StringEquals"]: c["Next"] for c in route["Choices"]} == {
        "awaiting_acceptance": name,
        "accepted": "ReleaseMilestoneInvoice",
    }
    decision = states["RouteDecision"]
    assert {c["StringEquals"]: c["Next"] for c in decision["Choices"]} == {
        "accepted": "ReleaseMilestoneInvoice",
        "cancelled": "AcceptanceCancelled",
    }
    assert states["AcceptanceCancelled"]["Type"] == "Succeed"


def test_every_step_retries_transient_faults_and_catches_the_rest_into_the_exceptions_queue() -> None:
    states = _definition()["States"]
    assert isinstance(states, dict)
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task" and name != "RecordException"}
    assert set(tasks) == {step.state for step in ACCEPT_MILESTONE.steps}
    for name, state in tasks.items():
        assert state["Resource"] == f"${{{name}FunctionArn}}"
        assert TRANSIENT in state["Retry"][0]["ErrorEquals"], name
        [catch] = state["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"] and states[catch["Next"]]["Next"] == "RecordException"
    record = states["RecordException"]
    assert record["Parameters"]["MessageBody"]["workflow"] == ACCEPT_MILESTONE.name
    assert record["Parameters"]["QueueUrl"] == "${ExceptionsQueueUrl}"


@pytest.mark.parametrize(
    ("role", "expected", "absent"),
    [
        ("record_milestone", {"BUSINESS_TABLE_NAME"}, {"DELIVERY_LOG_TABLE_NAME", "EVENT_BUS_NAME"}),
        ("decide_acceptance", {"BUSINESS_TABLE_NAME"}, {"DELIVERY_LOG_TABLE_NAME", "EVENT_BUS_NAME"}),
        (
            "release_milestone_invoice",
            {"BUSINESS_TABLE_NAME", "DELIVERY_LOG_TABLE_NAME", "ERP_CONNECTOR"},
            {"PSA_CONNECTOR", "EVENT_BUS_NAME"},
        ),
        ("recognise_milestone_revenue", {"BUSINESS_TABLE_NAME"}, {"DELIVERY_LOG_TABLE_NAME"}),
        ("emit_milestone_invoiced", {"EVENT_BUS_NAME"}, {"BUSINESS_TABLE_NAME", "DELIVERY_LOG_TABLE_NAME"}),
    ],
)
def test_each_step_gets_only_what_it_needs(
    resources: Resources, role: str, expected: set[str], absent: set[str]
) -> None:
    variables = functions_by_role(resources)[role]["Properties"]["Environment"]["Variables"]
    assert expected <= set(variables) and not absent & set(variables)


def test_the_state_machine_is_standard_and_alarmed(resources: Resources) -> None:
    # Standard: a Wait of days is only possible there (Express executions end after five minutes).
    (machine_id,) = [
        i for i in of_type(resources, "AWS::StepFunctions::StateMachine") if i.startswith("AcceptMilestone")
    ]
    assert resources[machine_id]["Properties"]["StateMachineType"] == "STANDARD"
    failed_alarms = [
        a
        for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "ExecutionsFailed"
        and any(ref_target(d["Value"]) == machine_id for d in a["Properties"].get("Dimensions", []))
    ]
    assert failed_alarms, "failed executions of accept-milestone raise an alarm"
