"""End to end on the embedded runtime over HTTP: signed webhook -> bus -> inbox -> workflow -> tables."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from pssync.adapters.aws import DynamoDBDeliveryLog, DynamoDBVersionStore
from pssync.workflows.provision import CONTRACT, REVENUE_SCHEDULE
from tests.e2e.conftest import Driver

pytestmark = pytest.mark.e2e


def _stores(driver: Driver) -> tuple[DynamoDBVersionStore, DynamoDBDeliveryLog]:
    ddb = driver.runtime.clients["dynamodb"]
    return (
        DynamoDBVersionStore(driver.runtime.function_env("BUSINESS_TABLE_NAME"), ddb),
        DynamoDBDeliveryLog(driver.runtime.function_env("DELIVERY_LOG_TABLE_NAME"), ddb),
    )


def test_signed_webhook_activates_an_engagement(driver: Driver) -> None:
    response = driver.post(driver.body_for("E2E-ACTIVATE"), "msg_e2e_activate")
    assert response.status_code == 202
    event_id = response.json()["event_id"]
    driver.runtime.wait_until_idle()

    [execution] = driver.executions_for(event_id)
    assert execution["status"] == "SUCCEEDED"
    store, log = _stores(driver)
    [version] = store.history(CONTRACT, "E2E-ACTIVATE")
    assert (version.version, version.caused_by_event_id) == (1, event_id)
    commands = [c for c in log.all_commands() if c.caused_by_event_id == event_id]
    assert sorted((c.target.value, c.operation) for c in commands) == [
        ("erp", "upsert_billing_schedule"),
        ("psa", "upsert_project"),
    ]
    revenue = store.head(REVENUE_SCHEDULE, "E2E-ACTIVATE")
    assert revenue is not None and revenue.body["contract_version"] == 1
    allocated = sum(Decimal(a["amount"]) for a in revenue.body["schedule"]["allocations"].values())
    assert allocated == Decimal("396000.00")
    history = driver.runtime.clients["stepfunctions"].get_execution_history(
        executionArn=execution["executionArn"]
    )["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered == [
        "ValidateMasterData",
        "RecordContractVersion",
        "ProvisionPsaProject",
        "PublishErpBillingSchedule",
        "BuildRevenueSchedule",
        "EmitEngagementActivated",
        "EngagementActivated",
    ]


def test_forged_signature_gets_401_and_writes_nothing(driver: Driver) -> None:
    driver.runtime.wait_until_idle()
    before = driver.snapshot()
    forged_secret = "whsec_" + "Zm9yZ2VkLXNpZ25pbmcta2V5LWZvci1lMmUtdGVzdHM="
    response = driver.post(driver.body_for("E2E-FORGED"), "msg_e2e_forged", secret=forged_secret)
    assert response.status_code == 401
    assert response.json()["error"] == "signature_invalid"
    driver.runtime.wait_until_idle()
    after = driver.snapshot()
    assert after == before
    assert before["objects"] and before["tables"]  # the snapshot really covers S3 and DynamoDB


def test_the_same_delivery_three_times_books_once(driver: Driver) -> None:
    body = driver.body_for("E2E-TRIPLE")
    responses = [driver.post(body, "msg_e2e_triple") for _ in range(3)]
    assert [r.status_code for r in responses] == [202, 202, 202]
    assert [r.json()["duplicate"] for r in responses] == [False, True, True]
    driver.runtime.wait_until_idle()
    store, _ = _stores(driver)
    assert len(store.history(CONTRACT, "E2E-TRIPLE")) == 1
    assert len(driver.executions_for(responses[0].json()["event_id"])) == 1


def test_concurrent_duplicate_deliveries_start_one_workflow(driver: Driver) -> None:
    body = driver.body_for("E2E-CONCURRENT")
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(lambda _: driver.post(body, "msg_e2e_concurrent"), range(6)))
    assert {r.status_code for r in responses} <= {202, 409}
    accepted = [r.json() for r in responses if r.status_code == 202]
    assert sum(1 for r in accepted if not r["duplicate"]) == 1
    driver.runtime.wait_until_idle()
    store, _ = _stores(driver)
    assert len(store.history(CONTRACT, "E2E-CONCURRENT")) == 1
    assert len(driver.executions_for(accepted[0]["event_id"])) == 1


def test_a_business_rule_failure_lands_on_the_exceptions_queue_with_its_context(driver: Driver) -> None:
    body = driver.body_for("E2E-BROKEN", transaction_price={"amount": "500000.00", "currency": "EUR"})
    response = driver.post(body, "msg_e2e_broken")
    assert response.status_code == 202
    event_id = response.json()["event_id"]
    driver.runtime.wait_until_idle()
    [execution] = driver.executions_for(event_id)
    assert execution["status"] == "FAILED"

    sqs = driver.runtime.clients["sqs"]
    queue_url = next(url for lid, url in driver.runtime.resources.queues.items() if "Exceptions" in lid)
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    records = [json.loads(m["Body"]) for m in messages]
    [record] = [r for r in records if r["event"]["event_id"] == event_id]
    assert record["failed_step"] == "ValidateMasterData"
    assert record["error"]["Error"] == "BusinessRuleViolation"
    assert "transaction price" in record["error"]["Cause"]
    assert record["attempt"] == 0
    store, _ = _stores(driver)
    assert store.history(CONTRACT, "E2E-BROKEN") == []
