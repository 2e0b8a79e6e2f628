"""Every accept-milestone step handler against moto: business table, shadow delivery log, bus, starter."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from pssync.adapters.aws import DynamoDBDeliveryLog, DynamoDBVersionStore
from pssync.model import examples
from pssync.workflows.milestones import MILESTONE_LEDGER
from pssync.workflows.provision import REVENUE_SCHEDULE
from tests.integration.conftest import AwsWorld, context, load_handler, sqs_record
from tests.unit.test_milestones import CONTRACT_ID, milestone_event


@pytest.fixture
def booked(aws: AwsWorld, monkeypatch: pytest.MonkeyPatch) -> AwsWorld:
    monkeypatch.setenv("ERP_CONNECTOR", "shadow")
    monkeypatch.setenv("PSA_CONNECTOR", "shadow")
    booking = examples.contract_booked().model_dump(mode="json")
    contract = load_handler("record_contract_version")({"event": booking}, context())
    load_handler("build_revenue_schedule")({"event": booking, "contract": contract}, context())
    return aws


def _steps(event: dict[str, Any]) -> dict[str, Any]:
    """Runs the handlers in the state machine's order, passing the state on as the ASL does; the Wait
    state between recording a completion and deciding is the state machine's, not a step's."""
    state: dict[str, Any] = {"event": event}
    state["milestone"] = load_handler("record_milestone")({"event": event}, context())
    if state["milestone"]["outcome"] == "awaiting_acceptance":
        state["milestone"] = load_handler("decide_acceptance")(
            {"event": event, "milestone": state["milestone"]}, context()
        )
    if state["milestone"]["outcome"] != "accepted":
        return state
    step_input = {"event": event, "milestone": state["milestone"]}
    state["release"] = load_handler("release_milestone_invoice")(step_input, context())
    state["revenue"] = load_handler("recognise_milestone_revenue")(step_input, context())
    state["invoiced"] = load_handler("emit_milestone_invoiced")(
        {k: state[k] for k in ("event", "milestone", "release", "revenue")}, context()
    )
    return state


def _dump(aws: AwsWorld, table: str) -> list[dict[str, Any]]:
    items = aws.clients["dynamodb"].scan(TableName=table)["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def test_a_passively_accepted_milestone_is_released_recognised_and_published_once(
    booked: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    event = milestone_event("d-m1-done").model_dump(mode="json")
    state = _steps(event)
    milestone = state["milestone"]
    assert (milestone["outcome"], milestone["acceptance"], milestone["accepted_on"]) == (
        "accepted",
        "passive",
        "2027-01-20",
    )
    assert state["release"]["sent"] is True and state["release"]["newly_recorded"] is True
    assert state["revenue"]["schedule_version"] == 2

    [command] = DynamoDBDeliveryLog("delivery-log", booked.clients["dynamodb"]).all_commands()
    assert (command.target, command.operation, command.external_id) == (
        "erp",
        "release_milestone_invoice",
        f"{CONTRACT_ID}/M1-DISCOVERY",
    )
    store = DynamoDBVersionStore("business", booked.clients["dynamodb"])
    ledger = store.history(MILESTONE_LEDGER, CONTRACT_ID)
    assert [v.body["kind"] for v in ledger] == ["completed", "accepted", "released"]
    schedule = store.head(REVENUE_SCHEDULE, CONTRACT_ID)
    assert schedule is not None and schedule.body["milestone_ledger_version"] == 3
    impl = [ln for ln in schedule.body["schedule"]["lines"] if ln["obligation_id"] == "IMPL"]
    assert [ln["period"] for ln in impl] == ["2027-01"]

    [published] = [m for m in booked.captured() if m["detail-type"] == "MilestoneInvoiced"]
    assert published["source"] == "pssync.workflows"
    data = published["detail"]["data"]
    assert data["erp_command_id"] == command.command_id and data["acceptance"] == "passive"
    assert data["invoice_amount"] == {"amount": "92000.00", "currency": "EUR"}
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any("MilestoneToInvoiceCycleSeconds" in m for m in emf)

    business, log = _dump(booked, "business"), _dump(booked, "delivery-log")
    again = _steps(event)  # a Step Functions retry or a replay of the whole execution
    assert again["milestone"]["newly_recorded"] is False and again["release"]["newly_recorded"] is False
    assert again["revenue"]["schedule_version"] == 2
    assert _dump(booked, "business") == business and _dump(booked, "delivery-log") == log


def test_a_rejection_cancels_and_a_rejection_after_acceptance_is_a_business_exception(
    booked: AwsWorld,
) -> None:
    completed = milestone_event("d-m2-done", "M2-DESIGN").model_dump(mode="json")
    waiting = load_handler("record_milestone")({"event": completed}, context())
    assert waiting["outcome"] == "awaiting_acceptance" and waiting["timer_fires_at"] == "2027-01-21T00:00:00Z"
    rejected = milestone_event("d-m2-no", "M2-DESIGN", acceptance="rejected", rejected_on=date(2027, 1, 8))
    assert _steps(rejected.model_dump(mode="json"))["milestone"]["outcome"] == "rejected"
    woken = load_handler("decide_acceptance")({"event": completed, "milestone": waiting}, context())
    assert woken["outcome"] == "cancelled"

    _steps(milestone_event("d-m1-ok", acceptance="explicit").model_dump(mode="json"))
    late = milestone_event("d-m1-no", acceptance="rejected").model_dump(mode="json")
    with pytest.raises(Exception) as error:
        _steps(late)
    assert type(error.value).__name__ == "BusinessRuleViolation"
    assert error.value.code == "milestone_rejected_after_acceptance"  # type: ignore[attr-defined]
    commands = DynamoDBDeliveryLog("delivery-log", booked.clients["dynamodb"]).all_commands()
    assert [c.payload["milestone_id"] for c in commands] == ["M1-DISCOVERY"]


@pytest.mark.parametrize(
    ("changes", "code"),
    [({"project_id": "P-UNKNOWN"}, "unknown_project"), ({"milestone_id": "M9-NOPE"}, "unknown_milestone")],
)
def test_unknown_projects_and_milestones_surface_as_business_rule_violations(
    booked: AwsWorld, changes: dict[str, Any], code: str
) -> None:
    event = milestone_event("d-x", **changes).model_dump(mode="json")
    with pytest.raises(Exception) as error:
        _steps(event)
    assert type(error.value).__name__ == "BusinessRuleViolation" and error.value.code == code  # type: ignore[attr-defined]
    assert not DynamoDBVersionStore("business", booked.clients["dynamodb"]).history(
        MILESTONE_LEDGER, CONTRACT_ID
    )


def test_the_starter_starts_accept_milestone_for_milestone_completed_only(
    booked: AwsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    sfn = booked.clients["stepfunctions"]
    role = booked.clients["iam"].create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    arn = sfn.create_state_machine(
        name="milestones",
        roleArn=role,
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
    )["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN", arn)
    monkeypatch.setenv("WORKFLOW_NAME", "accept-milestone")
    monkeypatch.setenv("WORKFLOW_EVENT_TYPES", "MilestoneCompleted")
    event = milestone_event("d-m1-done")

    def message(detail_type: str, detail: dict[str, Any]) -> str:
        return json.dumps({"detail-type": detail_type, "source": "pssync.ingest", "detail": detail})

    completed = message("MilestoneCompleted", event.model_dump(mode="json"))
    time_message = message("TimeApproved", examples.time_approved().model_dump(mode="json"))
    records = [sqs_record(completed, "m0"), sqs_record(completed, "m1"), sqs_record(time_message, "m2")]
    result = load_handler("start_workflow")({"Records": records}, context())
    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}]}  # wrong inbox: refused, not run
    executions = sfn.list_executions(stateMachineArn=arn)["executions"]
    # One execution per completion event: a redelivery finds the running timer by its name.
    assert [e["name"] for e in executions] == [f"MilestoneCompleted-{event.event_id}"]
