"""End to end: a booked contract, then its change order, then a late stale copy of an older amendment."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from pssync.adapters.aws import DynamoDBDeliveryLog, DynamoDBVersionStore
from pssync.model import examples
from pssync.workflows.provision import CONTRACT, REVENUE_SCHEDULE
from tests.e2e.conftest import Driver

pytestmark = pytest.mark.e2e


def _amendment_body(contract_id: str, source_version: str) -> bytes:
    document = copy.deepcopy(examples.contract_amended_webhook())
    data = document["data"]  # type: ignore[index]
    data["source_version"] = source_version
    data["contract"]["contract_id"] = contract_id
    data["contract"]["project"]["project_id"] = f"P-{contract_id}"
    return json.dumps(document).encode()


def test_a_change_order_propagates_and_a_stale_amendment_is_ignored(driver: Driver) -> None:
    booked = driver.post(driver.body_for("E2E-AMEND"), "msg_e2e_amend_book")
    assert booked.status_code == 202
    driver.runtime.wait_until_idle()

    amended = driver.post(_amendment_body("E2E-AMEND", "2027-06-10T14:29:41.000Z"), "msg_e2e_amend_co1")
    assert amended.status_code == 202
    driver.runtime.wait_until_idle()
    [execution] = driver.executions_for(amended.json()["event_id"])
    assert execution["status"] == "SUCCEEDED"
    output = json.loads(
        driver.runtime.clients["stepfunctions"].describe_execution(executionArn=execution["executionArn"])[
            "output"
        ]
    )
    assert output["classification"]["treatment"] == "separate_contract"

    ddb = driver.runtime.clients["dynamodb"]
    store = DynamoDBVersionStore(driver.runtime.function_env("BUSINESS_TABLE_NAME"), ddb)
    versions = store.history(CONTRACT, "E2E-AMEND")
    assert [v.version for v in versions] == [1, 2]
    assert versions[1].body["terms"]["transaction_price"]["amount"] == "426000.00"
    revenue = store.head(REVENUE_SCHEDULE, "E2E-AMEND")
    assert revenue is not None and revenue.body["contract_version"] == 2
    allocations = revenue.body["schedule"]["allocations"]
    assert sum(Decimal(a["amount"]) for a in allocations.values()) == Decimal("426000.00")
    log = DynamoDBDeliveryLog(driver.runtime.function_env("DELIVERY_LOG_TABLE_NAME"), ddb)
    keys = sorted(
        c.idempotency_key for c in log.all_commands() if c.external_id in ("E2E-AMEND", "P-E2E-AMEND")
    )
    assert keys == [
        "billing-schedule:E2E-AMEND:v1",
        "billing-schedule:E2E-AMEND:v2",
        "project:P-E2E-AMEND:contract-v1",
        "project:P-E2E-AMEND:contract-v2",
    ]

    # An older amendment arriving late (CRM retries are unordered) must not overwrite version 2.
    stale = driver.post(_amendment_body("E2E-AMEND", "2027-01-05T09:00:00.000Z"), "msg_e2e_amend_stale")
    assert stale.status_code == 202
    driver.runtime.wait_until_idle()
    [ignored] = driver.executions_for(stale.json()["event_id"])
    assert ignored["status"] == "SUCCEEDED"
    stale_output = json.loads(
        driver.runtime.clients["stepfunctions"].describe_execution(executionArn=ignored["executionArn"])[
            "output"
        ]
    )
    assert stale_output["guard"]["action"] == "ignore"
    assert [v.version for v in store.history(CONTRACT, "E2E-AMEND")] == [1, 2]
