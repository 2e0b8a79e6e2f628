"""Every apply-receivables step handler against moto: business table, bus, starter; a redelivery or a
replay of the whole execution changes nothing."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from pssync.adapters.aws import DynamoDBVersionStore
from pssync.model import examples
from pssync.workflows.receivables import CONTRACT_BALANCES, INVOICE, PAYMENT, RECEIVABLES_LEDGER
from tests.integration.conftest import AwsWorld, context, load_handler, sqs_record
from tests.unit.test_receivables import CONTOSO, invoice, payment


@pytest.fixture
def booked(aws: AwsWorld) -> AwsWorld:
    booking = examples.contract_booked().model_dump(mode="json")
    contract = load_handler("record_contract_version")({"event": booking}, context())
    load_handler("build_revenue_schedule")({"event": booking, "contract": contract}, context())
    return aws


def _steps(event: dict[str, Any]) -> dict[str, Any]:
    """The handlers in the state machine's order, passing the state on as the ASL does."""
    state: dict[str, Any] = {"event": event}
    state["match"] = load_handler("match_receivable")({"event": event}, context())
    state["recorded"] = load_handler("record_receivable")(
        {"event": event, "match": state["match"]}, context()
    )
    if state["recorded"]["outcome"] == "unchanged":
        return state
    state["balances"] = load_handler("update_contract_balances")(
        {"event": event, "recorded": state["recorded"]}, context()
    )
    state["emitted"] = load_handler("emit_contract_balances")(
        {k: state[k] for k in ("event", "recorded", "balances")}, context()
    )
    if event["event_type"] == "InvoicePosted":
        state["check"] = load_handler("check_invoice_against_schedule")(
            {"event": event, "recorded": state["recorded"]}, context()
        )
    return state


def _business(aws: AwsWorld) -> list[dict[str, Any]]:
    items = aws.clients["dynamodb"].scan(TableName="business")["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def test_an_invoice_and_its_payment_update_the_balances_once_and_a_replay_changes_nothing(
    booked: AwsWorld,
) -> None:
    posted = invoice("INV-1", [("B2-I1", "12000.00")], tax="2280.00", on=date(2027, 2, 10))
    first = _steps(posted.model_dump(mode="json"))
    assert first["match"]["contract_ids"] == [CONTOSO]
    assert first["recorded"]["kind"] == "invoice" and first["recorded"]["newly_recorded"] is True
    assert first["check"]["matched"] is True
    [invoiced] = first["balances"]["contracts"]
    assert invoiced["balances"]["receivable"] == {"amount": "12000.00", "currency": "EUR"}

    paid = payment("PAY-1", "14280.00", ["INV-1"], on=date(2027, 2, 20))
    second = _steps(paid.model_dump(mode="json"))
    [settled] = second["balances"]["contracts"]
    assert settled["balances"]["receivable"] == {"amount": "0.00", "currency": "EUR"}
    assert settled["balances"]["collected_to_date"] == {"amount": "12000.00", "currency": "EUR"}

    store = DynamoDBVersionStore("business", booked.clients["dynamodb"])
    assert [v.body["kind"] for v in store.history(RECEIVABLES_LEDGER, CONTOSO)] == ["invoice", "payment"]
    assert store.head(INVOICE, "erp/INV-1") is not None and store.head(PAYMENT, "erp/PAY-1") is not None
    published = [m for m in booked.captured() if m["detail-type"] == "ContractBalancesUpdated"]
    assert [(m["source"], m["detail"]["data"]["document"]) for m in published] == [
        ("pssync.workflows", "invoice"),
        ("pssync.workflows", "payment"),
    ]

    business = _business(booked)
    for event in (posted, paid):  # a Step Functions retry, a redelivery or a replay of each execution
        again = _steps(event.model_dump(mode="json"))
        assert again["recorded"]["newly_recorded"] is False
        assert [c["newly_recorded"] for c in again["balances"]["contracts"]] == [False]
    assert _business(booked) == business
    assert len(store.history(CONTRACT_BALANCES, CONTOSO)) == 2
    republished = [m for m in booked.captured() if m["detail-type"] == "ContractBalancesUpdated"]
    assert {m["detail"]["event_id"] for m in republished} == {m["detail"]["event_id"] for m in published}


def test_a_mismatching_invoice_is_recorded_and_balanced_before_the_check_refuses_it(booked: AwsWorld) -> None:
    wrong = invoice("INV-W", [("B2-I1", "12500.00")]).model_dump(mode="json")
    with pytest.raises(Exception) as error:
        _steps(wrong)
    assert type(error.value).__name__ == "BusinessRuleViolation"
    assert error.value.code == "invoice_mismatch"  # type: ignore[attr-defined]
    assert "difference 500.00 EUR" in str(error.value)
    store = DynamoDBVersionStore("business", booked.clients["dynamodb"])
    assert [v.body["document_id"] for v in store.history(RECEIVABLES_LEDGER, CONTOSO)] == ["INV-W"]
    [balances] = store.history(CONTRACT_BALANCES, CONTOSO)
    assert balances.body["billed_to_date"] == {"amount": "12500.00", "currency": "EUR"}
    assert [m["detail-type"] for m in booked.captured()] == ["ContractBalancesUpdated"]


def test_a_payment_naming_an_unknown_invoice_writes_nothing(booked: AwsWorld) -> None:
    before = _business(booked)
    with pytest.raises(Exception) as error:
        _steps(payment("PAY-X", "100.00", ["INV-NEVER"]).model_dump(mode="json"))
    assert error.value.code == "unknown_invoice"  # type: ignore[attr-defined]
    assert _business(booked) == before


def test_the_starter_starts_apply_receivables_for_invoices_and_payments_once_each(
    booked: AwsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    sfn = booked.clients["stepfunctions"]
    role = booked.clients["iam"].create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    arn = sfn.create_state_machine(
        name="receivables",
        roleArn=role,
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
    )["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN", arn)
    monkeypatch.setenv("WORKFLOW_NAME", "apply-receivables")
    monkeypatch.setenv("WORKFLOW_EVENT_TYPES", "InvoicePosted,PaymentReceived")
    posted, paid = invoice("INV-1", [("B2-I1", "12000.00")]), payment("PAY-1", "12000.00", ["INV-1"])

    def message(detail_type: str, detail: dict[str, Any]) -> str:
        return json.dumps({"detail-type": detail_type, "source": "pssync.ingest", "detail": detail})

    invoice_message = message("InvoicePosted", posted.model_dump(mode="json"))
    records = [
        sqs_record(invoice_message, "m0"),
        sqs_record(invoice_message, "m1"),  # the bus delivered it twice
        sqs_record(message("PaymentReceived", paid.model_dump(mode="json")), "m2"),
        sqs_record(message("TimeApproved", examples.time_approved().model_dump(mode="json")), "m3"),
    ]
    result = load_handler("start_workflow")({"Records": records}, context())
    assert result == {"batchItemFailures": [{"itemIdentifier": "m3"}]}  # wrong inbox: refused, not run
    names = sorted(e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"])
    assert names == sorted([f"InvoicePosted-{posted.event_id}", f"PaymentReceived-{paid.event_id}"])
