"""Every apply-approved-time step handler against moto: business table, shadow delivery log, bus, starter."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pssync.adapters.aws import DynamoDBDeliveryLog, DynamoDBVersionStore
from pssync.model import examples
from pssync.workflows.provision import PROJECT, REVENUE_SCHEDULE
from pssync.workflows.time_approval import TIME_LEDGER
from tests.integration.conftest import AwsWorld, context, load_handler, sqs_record

CONTRACT_ID = "C-2027-0101"


@pytest.fixture
def booked(aws: AwsWorld, monkeypatch: pytest.MonkeyPatch) -> AwsWorld:
    monkeypatch.setenv("ERP_CONNECTOR", "shadow")
    monkeypatch.setenv("PSA_CONNECTOR", "shadow")
    booking = examples.contract_booked().model_dump(mode="json")
    booking["data"]["contract"] = examples.delivery_programme().model_dump(mode="json")
    contract = load_handler("record_contract_version")({"event": booking}, context())
    load_handler("build_revenue_schedule")({"event": booking, "contract": contract}, context())
    return aws


def _steps(event: dict[str, Any]) -> dict[str, Any]:
    """Runs the five handlers in the state machine's order, passing the state on as the ASL does."""
    state: dict[str, Any] = {"event": event}
    state["match"] = load_handler("match_time_entry")({"event": event}, context())
    state["recorded"] = load_handler("record_billable_time")(
        {"event": event, "match": state["match"]}, context()
    )
    if state["recorded"]["outcome"] == "unchanged":
        return state
    state["erp"] = load_handler("send_billable_time")(
        {"event": event, "recorded": state["recorded"]}, context()
    )
    state["revenue"] = load_handler("remeasure_time_revenue")(
        {"event": event, "recorded": state["recorded"]}, context()
    )
    state["synced"] = load_handler("emit_time_synced")(
        {k: state[k] for k in ("event", "match", "recorded", "erp", "revenue")}, context()
    )
    return state


def _dump(aws: AwsWorld, table: str) -> list[dict[str, Any]]:
    items = aws.clients["dynamodb"].scan(TableName=table)["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def test_booking_indexes_the_contract_under_its_psa_project(booked: AwsWorld) -> None:
    store = DynamoDBVersionStore("business", booked.clients["dynamodb"])
    head = store.head(PROJECT, "P-FABRIKAM-0101")
    assert head is not None and head.body == {"contract_ids": [CONTRACT_ID]}


def test_every_step_runs_against_aws_and_a_second_run_changes_nothing(
    booked: AwsWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    event = examples.time_approved().model_dump(mode="json")
    state = _steps(event)
    assert state["match"]["obligation_id"] == "HYPERCARE" and state["match"]["contract_version"] == 1
    assert state["recorded"]["line"]["amount"] == {"amount": "1680.00", "currency": "EUR"}
    assert state["erp"]["sent"] is True and state["erp"]["newly_recorded"] is True
    assert state["revenue"]["schedule_version"] == 2 and state["revenue"]["total"] == "1680.00"
    assert state["synced"]["outcome"] == "billed"

    [command] = DynamoDBDeliveryLog("delivery-log", booked.clients["dynamodb"]).all_commands()
    assert (command.target, command.operation, command.external_id) == (
        "erp",
        "upsert_billable_time",
        "psa/TE-1001",
    )
    store = DynamoDBVersionStore("business", booked.clients["dynamodb"])
    assert [v.body["kind"] for v in store.history(TIME_LEDGER, CONTRACT_ID)] == ["line", "sent"]
    schedule = store.head(REVENUE_SCHEDULE, CONTRACT_ID)
    assert schedule is not None and schedule.body["time_ledger_version"] == 2

    [published] = [m for m in booked.captured() if m["detail-type"] == "TimeSynced"]
    assert published["source"] == "pssync.workflows"
    assert published["detail"]["data"]["erp_command_id"] == command.command_id
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(m.get("BillableTimeSynced") == [1.0] or m.get("BillableTimeSynced") == 1.0 for m in emf)

    business, log = _dump(booked, "business"), _dump(booked, "delivery-log")
    again = _steps(event)  # a Step Functions retry or a replay of the whole execution
    assert again["recorded"]["newly_recorded"] is False and again["erp"]["newly_recorded"] is False
    assert again["revenue"]["schedule_version"] == 2
    assert _dump(booked, "business") == business and _dump(booked, "delivery-log") == log


@pytest.mark.parametrize(
    ("changes", "step", "code"),
    [
        ({"project_id": "P-UNKNOWN"}, "match_time_entry", "unknown_project"),
        ({"role": "intern"}, "record_billable_time", "rate_not_found"),
        ({"hours": "48"}, "record_billable_time", "time_over_cap"),  # 48 x 210 = 10,080 > 10,000
    ],
)
def test_business_exceptions_surface_as_business_rule_violations(
    booked: AwsWorld, changes: dict[str, Any], step: str, code: str
) -> None:
    event = examples.time_approved(**changes).model_dump(mode="json")
    with pytest.raises(Exception) as error:
        _steps(event)
    assert type(error.value).__name__ == "BusinessRuleViolation" and error.value.code == code  # type: ignore[attr-defined]
    assert not DynamoDBVersionStore("business", booked.clients["dynamodb"]).history(TIME_LEDGER, CONTRACT_ID)


def test_a_change_after_the_line_was_sent_is_refused_for_review(booked: AwsWorld) -> None:
    _steps(examples.time_approved().model_dump(mode="json"))
    changed = examples.time_approved(
        "msg_time_TE-1001_v2", hours="7", source_version="2027-05-05T10:00:00.000Z"
    )
    with pytest.raises(Exception) as error:
        _steps(changed.model_dump(mode="json"))
    assert error.value.code == "time_changed_after_invoice"  # type: ignore[attr-defined]


def test_the_starter_starts_apply_approved_time_for_time_approved_only(
    booked: AwsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    sfn = booked.clients["stepfunctions"]
    role = booked.clients["iam"].create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    arn = sfn.create_state_machine(
        name="time",
        roleArn=role,
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
    )["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN", arn)
    monkeypatch.setenv("WORKFLOW_NAME", "apply-approved-time")
    monkeypatch.setenv("WORKFLOW_EVENT_TYPES", "TimeApproved")
    event = examples.time_approved()

    def message(detail_type: str, detail: dict[str, Any]) -> str:
        return json.dumps({"detail-type": detail_type, "source": "pssync.ingest", "detail": detail})

    time_message = message("TimeApproved", event.model_dump(mode="json"))
    booking = message("ContractBooked", examples.contract_booked().model_dump(mode="json"))
    records = [sqs_record(time_message, "m0"), sqs_record(time_message, "m1"), sqs_record(booking, "m2")]
    result = load_handler("start_workflow")({"Records": records}, context())
    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}]}  # wrong inbox: refused, not run
    executions = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert [e["name"] for e in executions] == [f"TimeApproved-{event.event_id}"]
