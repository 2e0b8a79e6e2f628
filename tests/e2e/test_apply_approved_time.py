"""End to end: a contract with a T&M phase booked over a signed webhook, then approved time from the PSA."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from pssync.adapters.aws import DynamoDBDeliveryLog, DynamoDBVersionStore
from pssync.model import examples
from pssync.workflows.provision import REVENUE_SCHEDULE
from pssync.workflows.time_approval import TIME_LEDGER
from tests.e2e.conftest import PSA_SOURCE, Driver

pytestmark = pytest.mark.e2e

CONTRACT_ID = "E2E-TIME"
PROJECT_ID = f"P-{CONTRACT_ID}"


def _booking() -> bytes:
    document = copy.deepcopy(examples.contract_booked_webhook())
    contract = examples.delivery_programme().model_dump(mode="json")
    contract["contract_id"] = CONTRACT_ID
    contract["project"]["project_id"] = PROJECT_ID
    document["data"]["contract"] = contract  # type: ignore[index]
    return json.dumps(document).encode()


def _time_entry(**changes: Any) -> bytes:
    data = {
        "time_entry_id": "TE-E2E-1",
        "project_id": PROJECT_ID,
        "person_id": "EMP-17",
        "work_date": "2027-05-03",
        "hours": "8",
        "billable": True,
        "wbs_code": "2.1",
        "role": "architect",
        "source_version": "2027-05-04T09:00:00.000Z",
        **changes,
    }
    return json.dumps({"type": "time.approved", "timestamp": "2027-05-04T09:00:00Z", "data": data}).encode()


def _output(driver: Driver, execution: dict[str, Any]) -> dict[str, Any]:
    sfn = driver.runtime.clients["stepfunctions"]
    return json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["output"])  # type: ignore[no-any-return]


def test_approved_time_is_billed_sent_to_the_erp_and_remeasured_once(driver: Driver) -> None:
    booked = driver.post(_booking(), "msg_e2e_time_book")
    assert booked.status_code == 202
    driver.runtime.wait_until_idle()

    approved = driver.post(_time_entry(), "msg_e2e_time_TE1_v1", source=PSA_SOURCE)
    assert approved.status_code == 202, approved.text
    driver.runtime.wait_until_idle()
    [execution] = driver.executions_for(approved.json()["event_id"])
    assert execution["status"] == "SUCCEEDED"
    output = _output(driver, execution)
    assert output["match"]["obligation_id"] == "HYPERCARE"
    assert output["recorded"]["line"]["amount"] == {"amount": "1680.00", "currency": "EUR"}

    ddb = driver.runtime.clients["dynamodb"]
    store = DynamoDBVersionStore(driver.runtime.function_env("BUSINESS_TABLE_NAME"), ddb)
    ledger = store.history(TIME_LEDGER, CONTRACT_ID)
    assert [v.body["kind"] for v in ledger] == ["line", "sent"]
    log = DynamoDBDeliveryLog(driver.runtime.function_env("DELIVERY_LOG_TABLE_NAME"), ddb)
    [command] = [c for c in log.all_commands() if c.operation == "upsert_billable_time"]
    assert command.payload["contract_id"] == CONTRACT_ID and command.payload["amount"]["amount"] == "1680.00"
    schedules = store.history(REVENUE_SCHEDULE, CONTRACT_ID)
    assert [s.version for s in schedules] == [1, 2]  # the booking's, then the remeasured one
    assert schedules[-1].caused_by_event_id == approved.json()["event_id"]
    hypercare = [
        line for line in schedules[-1].body["schedule"]["lines"] if line["obligation_id"] == "HYPERCARE"
    ]
    assert [line["amount"]["amount"] for line in hypercare] == ["1680.00"]

    # The same delivery again (the PSA retries): deduplicated at the webhook; nothing changes.
    before = driver.snapshot()
    again = driver.post(_time_entry(), "msg_e2e_time_TE1_v1", source=PSA_SOURCE)
    assert again.status_code == 202 and again.json()["event_id"] == approved.json()["event_id"]
    driver.runtime.wait_until_idle()
    assert driver.snapshot() == before
    assert len(store.history(TIME_LEDGER, CONTRACT_ID)) == 2
    assert len(store.history(REVENUE_SCHEDULE, CONTRACT_ID)) == 2


def test_approved_time_from_the_crm_is_refused_and_time_after_invoice_is_an_exception(driver: Driver) -> None:
    # Data ownership: a CRM does not state approved time (422, nothing written).
    refused = driver.post(_time_entry(time_entry_id="TE-E2E-CRM"), "msg_e2e_time_from_crm")
    assert refused.status_code == 422

    booked = driver.post(_booking(), "msg_e2e_time_book")
    assert booked.status_code == 202
    first = driver.post(
        _time_entry(time_entry_id="TE-E2E-2", hours="2"), "msg_e2e_time_TE2_v1", source=PSA_SOURCE
    )
    assert first.status_code == 202
    driver.runtime.wait_until_idle()
    [done] = driver.executions_for(first.json()["event_id"])
    assert done["status"] == "SUCCEEDED"

    changed = driver.post(
        _time_entry(time_entry_id="TE-E2E-2", hours="3", source_version="2027-05-05T09:00:00.000Z"),
        "msg_e2e_time_TE2_v2",
        source=PSA_SOURCE,
    )
    assert changed.status_code == 202
    driver.runtime.wait_until_idle()
    [failed] = driver.executions_for(changed.json()["event_id"])
    assert failed["status"] == "FAILED"
    record = _take_exception(driver, changed.json()["event_id"])
    assert record["workflow"] == "apply-approved-time" and record["failed_step"] == "RecordBillableTime"
    assert record["error"]["Error"] == "BusinessRuleViolation"
    assert "changed after it was invoiced" in record["error"]["Cause"]
    store = DynamoDBVersionStore(
        driver.runtime.function_env("BUSINESS_TABLE_NAME"), driver.runtime.clients["dynamodb"]
    )
    entries = [v.body for v in store.history(TIME_LEDGER, CONTRACT_ID) if v.body["entry"] == "psa/TE-E2E-2"]
    assert [(b["kind"], b.get("hours")) for b in entries] == [
        ("line", "2"),
        ("sent", None),
    ]  # never rewritten


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
