"""End to end: a booked contract, then an invoice and its payment from the ERP over signed webhooks."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from pssync.adapters.aws import DynamoDBVersionStore
from pssync.workflows.receivables import CONTRACT_BALANCES, RECEIVABLES_LEDGER
from tests.e2e.conftest import ERP_SOURCE, Driver

pytestmark = pytest.mark.e2e


def _invoice(contract_id: str, invoice_id: str, lines: list[tuple[str, str]], tax: str) -> bytes:
    total = str(sum((Decimal(amount) for _, amount in lines), Decimal(tax)))
    data = {
        "invoice_id": invoice_id,
        "contract_id": contract_id,
        "customer_id": "4711",  # the customer's NetSuite id: the contract knows it as an external id
        "invoice_date": "2027-02-10",
        "lines": [
            {"description": f"Billing line {line_id}", "amount": {"amount": amount, "currency": "EUR"},
             "billing_line_id": line_id}
            for line_id, amount in lines
        ],
        "tax": {"amount": tax, "currency": "EUR"},
        "total": {"amount": total, "currency": "EUR"},
    }  # fmt: skip
    return json.dumps({"type": "invoice.posted", "timestamp": "2027-02-10T09:00:00Z", "data": data}).encode()


def _payment(payment_id: str, amount: str, invoice_ids: list[str]) -> bytes:
    data = {
        "payment_id": payment_id,
        "customer_id": "4711",
        "received_on": "2027-02-20",
        "amount": {"amount": amount, "currency": "EUR"},
        "invoice_ids": invoice_ids,
    }
    return json.dumps(
        {"type": "payment.received", "timestamp": "2027-02-20T09:00:00Z", "data": data}
    ).encode()


def _store(driver: Driver) -> DynamoDBVersionStore:
    return DynamoDBVersionStore(
        driver.runtime.function_env("BUSINESS_TABLE_NAME"), driver.runtime.clients["dynamodb"]
    )


def _only_execution(driver: Driver, event_id: str) -> dict[str, Any]:
    [execution] = driver.executions_for(event_id)
    return execution


def _output(driver: Driver, execution: dict[str, Any]) -> dict[str, Any]:
    sfn = driver.runtime.clients["stepfunctions"]
    return json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["output"])  # type: ignore[no-any-return]


def test_an_invoice_and_its_payment_update_the_balances_once_even_when_delivered_twice(
    driver: Driver,
) -> None:
    contract_id = "E2E-RECV"
    assert driver.post(driver.body_for(contract_id), "msg_e2e_recv_book").status_code == 202
    driver.runtime.wait_until_idle()

    body = _invoice(contract_id, "INV-E2E-1", [("B2-I1", "12000.00")], tax="2280.00")
    posted = driver.post(body, "msg_e2e_recv_inv1", source=ERP_SOURCE)
    assert posted.status_code == 202, posted.text
    driver.runtime.wait_until_idle()
    execution = _only_execution(driver, posted.json()["event_id"])
    assert execution["status"] == "SUCCEEDED"
    output = _output(driver, execution)
    assert output["check"]["matched"] is True
    [invoiced] = output["balances"]["contracts"]
    assert invoiced["balances"]["receivable"] == {"amount": "12000.00", "currency": "EUR"}  # net of tax

    paid = driver.post(
        _payment("PAY-E2E-1", "14280.00", ["INV-E2E-1"]), "msg_e2e_recv_pay1", source=ERP_SOURCE
    )
    assert paid.status_code == 202, paid.text
    driver.runtime.wait_until_idle()
    execution = _only_execution(driver, paid.json()["event_id"])
    assert execution["status"] == "SUCCEEDED"
    [settled] = _output(driver, execution)["balances"]["contracts"]
    assert settled["balances"]["receivable"] == {"amount": "0.00", "currency": "EUR"}
    assert settled["balances"]["collected_to_date"] == {"amount": "12000.00", "currency": "EUR"}

    store = _store(driver)
    balances = store.history(CONTRACT_BALANCES, contract_id)
    assert [b.caused_by_event_id for b in balances] == [posted.json()["event_id"], paid.json()["event_id"]]

    # The ERP retries both deliveries (deduplicated at the webhook), then sends the payment again under a
    # new delivery id (a new event: the workflow finds the payment recorded and changes nothing).
    before = len(store.history(RECEIVABLES_LEDGER, contract_id))
    again = driver.post(body, "msg_e2e_recv_inv1", source=ERP_SOURCE)
    assert again.status_code == 202 and again.json()["event_id"] == posted.json()["event_id"]
    resent = driver.post(
        _payment("PAY-E2E-1", "14280.00", ["INV-E2E-1"]), "msg_e2e_recv_pay1_resent", source=ERP_SOURCE
    )
    assert resent.status_code == 202
    driver.runtime.wait_until_idle()
    unchanged = _only_execution(driver, resent.json()["event_id"])
    assert unchanged["status"] == "SUCCEEDED"
    assert _output(driver, unchanged)["recorded"]["outcome"] == "unchanged"
    assert len(driver.executions_for(posted.json()["event_id"])) == 1
    assert len(store.history(RECEIVABLES_LEDGER, contract_id)) == before == 2
    assert len(store.history(CONTRACT_BALANCES, contract_id)) == 2


def test_a_mismatching_invoice_lands_in_the_exceptions_queue_with_the_difference(driver: Driver) -> None:
    contract_id = "E2E-RECV-MISMATCH"
    assert driver.post(driver.body_for(contract_id), "msg_e2e_recv_mm_book").status_code == 202
    driver.runtime.wait_until_idle()

    body = _invoice(contract_id, "INV-E2E-MM", [("B2-I1", "12500.00"), ("B9-EXTRA", "300.00")], tax="0.00")
    posted = driver.post(body, "msg_e2e_recv_mm_inv", source=ERP_SOURCE)
    assert posted.status_code == 202, posted.text
    driver.runtime.wait_until_idle()
    event_id = posted.json()["event_id"]
    assert _only_execution(driver, event_id)["status"] == "FAILED"
    record = _take_exception(driver, event_id)
    assert (
        record["workflow"] == "apply-receivables" and record["failed_step"] == "CheckInvoiceAgainstSchedule"
    )
    assert record["error"]["Error"] == "BusinessRuleViolation"
    cause = record["error"]["Cause"]
    assert "B2-I1: invoiced 12500.00 EUR, billable 12000.00 EUR, difference 500.00 EUR" in cause
    assert "B9-EXTRA: invoiced 300.00 EUR, not a billable line" in cause
    # Recorded and in the balances before the check refused it: finance sees both.
    [balances] = _store(driver).history(CONTRACT_BALANCES, contract_id)
    assert balances.body["billed_to_date"] == {"amount": "12800.00", "currency": "EUR"}


def _take_exception(driver: Driver, event_id: str) -> dict[str, Any]:
    """This event's exception record (deleted once read); every other message is made visible again."""
    sqs = driver.runtime.clients["sqs"]
    queue_url = next(url for lid, url in driver.runtime.resources.queues.items() if "Exceptions" in lid)
    mine: list[dict[str, Any]] = []
    for _ in range(20):  # bounded: the other messages come round again once made visible
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in batch:
            body = json.loads(message["Body"])
            if body["event"]["event_id"] == event_id:
                mine.append(body)
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            else:
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        if mine:
            break
    [record] = mine
    return record
