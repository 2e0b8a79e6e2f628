"""The apply-receivables workflow in the template: rules, inbox + DLQ, starter, state machine, steps."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.constructs.workflows import STATEMACHINES_DIR
from infra.workflow_catalog.apply_receivables import SPEC as APPLY_RECEIVABLES
from tests.infra.test_infra_template import Resources, functions_by_role, of_type, ref_target

pytestmark = pytest.mark.infra

TRANSIENT = "TransientDownstreamError"
STARTS_ON = ("InvoicePosted", "PaymentReceived")


def _inbox_id(resources: Resources) -> str:
    (inbox,) = [
        i
        for i in of_type(resources, "AWS::SQS::Queue")
        if i.startswith("QueuesApplyReceivablesInbox") and "Dlq" not in i
    ]
    return inbox


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}


@pytest.mark.parametrize("detail_type", STARTS_ON)
def test_invoices_and_payments_are_routed_to_the_receivables_inbox_only(
    template: Template, resources: Resources, detail_type: str
) -> None:
    inbox = _inbox_id(resources)
    (target_dlq,) = [
        i for i in of_type(resources, "AWS::SQS::Queue") if i.startswith("QueuesEventBridgeTargetDlq")
    ]
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {"source": ["pssync.ingest"], "detail-type": [detail_type]},
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [inbox, "Arn"]},
                        "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [target_dlq, "Arn"]}},
                    }
                )
            ],
        },
    )
    rules = [
        r
        for r in of_type(resources, "AWS::Events::Rule").values()
        if detail_type in json.dumps(r["Properties"].get("EventPattern", {}))
    ]
    assert len(rules) == 1, f"exactly one rule consumes {detail_type}"


def test_the_inbox_redrives_to_a_tagged_dlq_and_its_starter_knows_both_types(resources: Resources) -> None:
    queues = of_type(resources, "AWS::SQS::Queue")
    inbox_id = _inbox_id(resources)
    (dlq_id,) = [i for i in queues if i.startswith("QueuesApplyReceivablesInboxDlq")]
    redrive = queues[inbox_id]["Properties"]["RedrivePolicy"]
    assert ref_target(redrive["deadLetterTargetArn"]) == dlq_id and redrive["maxReceiveCount"] == 5
    assert _tags(queues[inbox_id])["pssync:workflow"] == "apply-receivables"
    assert _tags(queues[dlq_id])["pssync:replay"] == "redrive"
    starter = functions_by_role(resources)["start_apply_receivables"]["Properties"]
    assert starter["Environment"]["Variables"]["WORKFLOW_NAME"] == "apply-receivables"
    assert starter["Environment"]["Variables"]["WORKFLOW_EVENT_TYPES"] == "InvoicePosted,PaymentReceived"
    mappings = [
        m["Properties"]
        for m in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
        if ref_target(m["Properties"]["EventSourceArn"]) == inbox_id
    ]
    assert len(mappings) == 1 and mappings[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_every_step_retries_transient_faults_and_the_check_runs_for_invoices_after_the_balances() -> None:
    definition = json.loads((STATEMACHINES_DIR / APPLY_RECEIVABLES.asl_file).read_text())
    states = definition["States"]
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task" and name != "RecordException"}
    assert set(tasks) == {step.state for step in APPLY_RECEIVABLES.steps}
    for name, state in tasks.items():
        assert state["Resource"] == f"${{{name}FunctionArn}}"
        assert TRANSIENT in state["Retry"][0]["ErrorEquals"], name
        [catch] = state["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"] and states[catch["Next"]]["Next"] == "RecordException"
    record = states["RecordException"]
    assert record["Parameters"]["MessageBody"]["workflow"] == APPLY_RECEIVABLES.name
    assert record["Parameters"]["QueueUrl"] == "${ExceptionsQueueUrl}"
    # A document recorded before with the same content ends as succeeded without touching the balances.
    assert states["WasRecorded"]["Choices"][0]["Next"] == "ReceivableUnchanged"
    # The order: balances updated, then published, then (invoices only) the schedule check.
    assert states["UpdateContractBalances"]["Next"] == "EmitContractBalances"
    assert states["EmitContractBalances"]["Next"] == "IsInvoice"
    [invoice_choice] = states["IsInvoice"]["Choices"]
    assert (invoice_choice["Variable"], invoice_choice["StringEquals"], invoice_choice["Next"]) == (
        "$.event.event_type",
        "InvoicePosted",
        "CheckInvoiceAgainstSchedule",
    )
    assert states["IsInvoice"]["Default"] == "BalancesUpdated"


@pytest.mark.parametrize(
    ("role", "expected", "absent"),
    [
        ("match_receivable", {"BUSINESS_TABLE_NAME"}, {"DELIVERY_LOG_TABLE_NAME", "EVENT_BUS_NAME"}),
        ("record_receivable", {"BUSINESS_TABLE_NAME"}, {"DELIVERY_LOG_TABLE_NAME", "EVENT_BUS_NAME"}),
        ("update_contract_balances", {"BUSINESS_TABLE_NAME"}, {"DELIVERY_LOG_TABLE_NAME", "EVENT_BUS_NAME"}),
        ("emit_contract_balances", {"EVENT_BUS_NAME"}, {"BUSINESS_TABLE_NAME", "DELIVERY_LOG_TABLE_NAME"}),
        (
            "check_invoice_against_schedule",
            {"BUSINESS_TABLE_NAME"},
            {"DELIVERY_LOG_TABLE_NAME", "EVENT_BUS_NAME"},
        ),
    ],
)
def test_each_step_gets_only_what_it_needs(
    resources: Resources, role: str, expected: set[str], absent: set[str]
) -> None:
    variables = functions_by_role(resources)[role]["Properties"]["Environment"]["Variables"]
    assert expected <= set(variables) and not absent & set(variables)


def test_the_state_machine_is_standard_traced_logged_and_alarmed(resources: Resources) -> None:
    (machine_id,) = [
        i for i in of_type(resources, "AWS::StepFunctions::StateMachine") if i.startswith("ApplyReceivables")
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
    assert failed_alarms, "failed executions of apply-receivables raise an alarm"
