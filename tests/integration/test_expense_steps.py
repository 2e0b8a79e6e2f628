"""Every apply-approved-expense step handler against moto: business table, delivery log, bus, starter."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pssync.adapters.aws import DynamoDBDeliveryLog, DynamoDBVersionStore
from pssync.model import examples
from pssync.money import Money
from pssync.workflows.expenses import EXPENSE_LEDGER
from pssync.workflows.provision import REVENUE_SCHEDULE
from tests.integration.conftest import AwsWorld, context, load_handler, sqs_record
from tests.unit.test_expenses import expense_approved, expense_contract

CONTRACT_ID = "C-2027-0101"


@pytest.fixture
def booked(aws: AwsWorld, monkeypatch: pytest.MonkeyPatch) -> AwsWorld:
    monkeypatch.setenv("ERP_CONNECTOR", "shadow")
    monkeypatch.setenv("PSA_CONNECTOR", "shadow")
    booking = examples.contract_booked().model_dump(mode="json")
    booking["data"]["contract"] = expense_contract().model_dump(mode="json")
    contract = load_handler("record_contract_version")({"event": booking}, context())
    load_handler("build_revenue_schedule")({"event": booking, "contract": contract}, context())
    return aws


def _steps(event: dict[str, Any]) -> dict[str, Any]:
    """Runs the five handlers in the state machine's order, passing the state on as the ASL does."""
    state: dict[str, Any] = {"event": event}
    state["match"] = load_handler("match_expense")({"event": event}, context())
    state["recorded"] = load_handler("record_expense")({"event": event, "match": state["match"]}, context())
    if state["recorded"]["outcome"] == "unchanged":
        return state
    state["erp"] = load_handler("send_rebillable_expense")(
        {"event": event, "recorded": state["recorded"]}, context()
    )
    state["revenue"] = load_handler("remeasure_expense_revenue")(
        {"event": event, "recorded": state["recorded"]}, context()
    )
    state["synced"] = load_handler("emit_expense_synced")(
        {k: state[k] for k in ("event", "match", "recorded", "erp", "revenue")}, context()
    )
    return state


def _dump(aws: AwsWorld, table: str) -> list[dict[str, Any]]:
    items = aws.clients["dynamodb"].scan(TableName=table)["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def test_every_step_runs_against_aws_and_a_second_run_changes_nothing(booked: AwsWorld) -> None:
    event = expense_approved().model_dump(mode="json")
    state = _steps(event)
    assert state["match"]["obligation_id"] == "BUILD" and state["match"]["measure"] == "input_cost"
    assert state["recorded"]["line"]["amount"] == {"amount": "495.00", "currency": "EUR"}
    assert state["erp"]["sent"] is True and state["erp"]["newly_recorded"] is True
    assert state["revenue"]["schedule_version"] == 2
    assert state["synced"]["outcome"] == "rebilled"

    [command] = DynamoDBDeliveryLog("delivery-log", booked.clients["dynamodb"]).all_commands()
    assert (command.target, command.operation, command.external_id) == (
        "erp",
        "upsert_rebillable_expense",
        "psa/EX-1001",
    )
    assert command.payload["markup"] == {"amount": "45.00", "currency": "EUR"}
    store = DynamoDBVersionStore("business", booked.clients["dynamodb"])
    assert [v.body["kind"] for v in store.history(EXPENSE_LEDGER, CONTRACT_ID)] == ["expense", "sent"]
    schedule = store.head(REVENUE_SCHEDULE, CONTRACT_ID)
    assert schedule is not None and schedule.body["expense_ledger_version"] == 2
    build = [line for line in schedule.body["schedule"]["lines"] if line["obligation_id"] == "BUILD"]
    assert [line["method"] for line in build] == ["input: cost-to-cost"]

    [published] = [m for m in booked.captured() if m["detail-type"] == "ExpenseSynced"]
    assert published["source"] == "pssync.workflows"
    assert published["detail"]["data"]["erp_command_id"] == command.command_id
    assert published["detail"]["data"]["billed"] == {"amount": "495.00", "currency": "EUR"}

    business, log = _dump(booked, "business"), _dump(booked, "delivery-log")
    again = _steps(event)  # a Step Functions retry or a replay of the whole execution
    assert again["recorded"]["newly_recorded"] is False and again["erp"]["newly_recorded"] is False
    assert again["revenue"]["schedule_version"] == 2
    assert _dump(booked, "business") == business and _dump(booked, "delivery-log") == log
    [republished] = [m for m in booked.captured() if m["detail-type"] == "ExpenseSynced"]
    assert republished["detail"]["event_id"] == published["detail"]["event_id"]  # consumers dedupe on it

    redelivered = expense_approved("msg_expense_EX-1001_v1_redelivered").model_dump(mode="json")
    assert _steps(redelivered)["recorded"]["outcome"] == "unchanged"
    assert _dump(booked, "business") == business and _dump(booked, "delivery-log") == log


def test_a_cost_only_expense_moves_revenue_and_sends_nothing(booked: AwsWorld) -> None:
    event = expense_approved(category="software", amount=Money.of("2000.00", "EUR")).model_dump(mode="json")
    state = _steps(event)
    assert state["erp"] == {
        "command_id": None,
        "sent": False,
        "newly_recorded": False,
        "reason": "nothing to rebill: not rebillable, or withdrawn before it was invoiced",
    }
    assert state["synced"]["outcome"] == "cost_only"
    assert not DynamoDBDeliveryLog("delivery-log", booked.clients["dynamodb"]).all_commands()
    store = DynamoDBVersionStore("business", booked.clients["dynamodb"])
    schedule = store.head(REVENUE_SCHEDULE, CONTRACT_ID)
    assert schedule is not None and schedule.version == 2
    build = [line for line in schedule.body["schedule"]["lines"] if line["obligation_id"] == "BUILD"]
    assert [line["amount"]["amount"] for line in build] == ["6000.00"]  # 2,000 / 20,000 x 60,000


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"project_id": "P-UNKNOWN"}, "unknown_project"),
        ({"amount": Money.of("450.00", "USD")}, "currency_mismatch"),
        ({"amount": Money.of("1900.00", "EUR")}, "expense_over_cap"),  # 2,090.00 billed > 2,000.00
    ],
)
def test_business_exceptions_surface_as_business_rule_violations(
    booked: AwsWorld, changes: dict[str, Any], code: str
) -> None:
    event = expense_approved(**changes).model_dump(mode="json")
    with pytest.raises(Exception) as error:
        _steps(event)
    assert type(error.value).__name__ == "BusinessRuleViolation" and error.value.code == code  # type: ignore[attr-defined]
    assert not DynamoDBVersionStore("business", booked.clients["dynamodb"]).history(
        EXPENSE_LEDGER, CONTRACT_ID
    )


def test_a_change_after_the_line_was_sent_is_refused_for_review(booked: AwsWorld) -> None:
    _steps(expense_approved().model_dump(mode="json"))
    business = _dump(booked, "business")
    changed = expense_approved(
        "msg_expense_EX-1001_v2", amount=Money.of("470.00", "EUR"), source_version="2027-03-12T09:00:00.000Z"
    )
    with pytest.raises(Exception) as error:
        _steps(changed.model_dump(mode="json"))
    assert error.value.code == "expense_changed_after_invoice"  # type: ignore[attr-defined]
    assert _dump(booked, "business") == business


def test_the_starter_starts_apply_approved_expense_for_expense_approved_only(
    booked: AwsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    sfn = booked.clients["stepfunctions"]
    role = booked.clients["iam"].create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    arn = sfn.create_state_machine(
        name="expense",
        roleArn=role,
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
    )["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN", arn)
    monkeypatch.setenv("WORKFLOW_NAME", "apply-approved-expense")
    monkeypatch.setenv("WORKFLOW_EVENT_TYPES", "ExpenseApproved")
    event = expense_approved()

    def message(detail_type: str, detail: dict[str, Any]) -> str:
        return json.dumps({"detail-type": detail_type, "source": "pssync.ingest", "detail": detail})

    expense_message = message("ExpenseApproved", event.model_dump(mode="json"))
    time_message = message("TimeApproved", examples.time_approved().model_dump(mode="json"))
    records = [
        sqs_record(expense_message, "m0"),
        sqs_record(expense_message, "m1"),
        sqs_record(time_message, "m2"),
    ]
    result = load_handler("start_workflow")({"Records": records}, context())
    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}]}  # wrong inbox: refused, not run
    executions = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert [e["name"] for e in executions] == [f"ExpenseApproved-{event.event_id}"]
