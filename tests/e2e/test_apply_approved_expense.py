"""End to end: a contract with a cost-to-cost build and an expense policy booked over a signed webhook, then
approved expenses from the PSA."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from pssync.adapters.aws import DynamoDBDeliveryLog, DynamoDBVersionStore
from pssync.model import examples
from pssync.workflows.expenses import EXPENSE_LEDGER
from pssync.workflows.provision import REVENUE_SCHEDULE
from tests.e2e.conftest import PSA_SOURCE, Driver
from tests.unit.test_expenses import expense_contract

pytestmark = pytest.mark.e2e


def _booking(contract_id: str) -> bytes:
    document = copy.deepcopy(examples.contract_booked_webhook())
    contract = expense_contract().model_dump(mode="json")
    contract["contract_id"] = contract_id
    contract["project"]["project_id"] = f"P-{contract_id}"
    document["data"]["contract"] = contract  # type: ignore[index]
    return json.dumps(document).encode()


def _expense(contract_id: str, **changes: Any) -> bytes:
    data = {
        "expense_id": "EX-E2E-1",
        "project_id": f"P-{contract_id}",
        "person_id": "EMP-17",
        "incurred_on": "2027-03-10",
        "amount": {"amount": "450.00", "currency": "EUR"},
        "billable": True,
        "category": "travel",
        "wbs_code": "1",
        "source_version": "2027-03-11T09:00:00.000Z",
        **changes,
    }
    return json.dumps(
        {"type": "expense.approved", "timestamp": "2027-03-11T09:00:00Z", "data": data}
    ).encode()


def _book(driver: Driver, contract_id: str) -> None:
    booked = driver.post(_booking(contract_id), f"msg_e2e_expense_book_{contract_id}")
    assert booked.status_code == 202, booked.text
    driver.runtime.wait_until_idle()


def _succeeded_output(driver: Driver, event_id: str) -> dict[str, Any]:
    [execution] = driver.executions_for(event_id)
    assert execution["status"] == "SUCCEEDED"
    sfn = driver.runtime.clients["stepfunctions"]
    return json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["output"])  # type: ignore[no-any-return]


def _store(driver: Driver) -> DynamoDBVersionStore:
    return DynamoDBVersionStore(
        driver.runtime.function_env("BUSINESS_TABLE_NAME"), driver.runtime.clients["dynamodb"]
    )


def _rebilled(driver: Driver, contract_id: str) -> list[Any]:
    log = DynamoDBDeliveryLog(
        driver.runtime.function_env("DELIVERY_LOG_TABLE_NAME"), driver.runtime.clients["dynamodb"]
    )
    return [
        c
        for c in log.all_commands()
        if c.operation == "upsert_rebillable_expense" and c.payload["contract_id"] == contract_id
    ]


def _build_lines(driver: Driver, contract_id: str) -> list[str]:
    head = _store(driver).head(REVENUE_SCHEDULE, contract_id)
    assert head is not None
    return [
        line["amount"]["amount"]
        for line in head.body["schedule"]["lines"]
        if line["obligation_id"] == "BUILD"
    ]


def test_a_rebillable_expense_reaches_the_erp_once_even_when_delivered_twice(driver: Driver) -> None:
    contract_id = "E2E-EXPENSE"
    _book(driver, contract_id)

    approved = driver.post(_expense(contract_id), "msg_e2e_expense_EX1_v1", source=PSA_SOURCE)
    assert approved.status_code == 202, approved.text
    event_id = approved.json()["event_id"]
    driver.runtime.wait_until_idle()
    output = _succeeded_output(driver, event_id)
    assert (output["match"]["obligation_id"], output["synced"]["outcome"]) == ("BUILD", "rebilled")
    [command] = _rebilled(driver, contract_id)
    assert command.payload["amount"] == {"amount": "495.00", "currency": "EUR"}  # 450.00 plus 10 %
    assert command.caused_by_event_id == event_id
    store = _store(driver)
    assert [v.body["kind"] for v in store.history(EXPENSE_LEDGER, contract_id)] == ["expense", "sent"]
    assert store.history(REVENUE_SCHEDULE, contract_id)[-1].caused_by_event_id == event_id

    # The same delivery again (the PSA retries): deduplicated at the webhook; nothing changes.
    before = driver.snapshot()
    again = driver.post(_expense(contract_id), "msg_e2e_expense_EX1_v1", source=PSA_SOURCE)
    assert again.status_code == 202 and again.json()["event_id"] == event_id
    driver.runtime.wait_until_idle()
    assert driver.snapshot() == before

    # The same expense version under a new delivery id: its own execution, which finds nothing to change.
    resent = driver.post(_expense(contract_id), "msg_e2e_expense_EX1_v1_resent", source=PSA_SOURCE)
    assert resent.status_code == 202
    driver.runtime.wait_until_idle()
    assert _succeeded_output(driver, resent.json()["event_id"])["recorded"]["outcome"] == "unchanged"
    assert len(_rebilled(driver, contract_id)) == 1
    assert len(store.history(EXPENSE_LEDGER, contract_id)) == 2


def test_a_non_rebillable_expense_on_a_cost_to_cost_obligation_moves_revenue(driver: Driver) -> None:
    contract_id = "E2E-EXPENSE-COST"
    _book(driver, contract_id)
    assert _build_lines(driver, contract_id) == []  # cost-to-cost: nothing before a cost is recorded

    cost = driver.post(
        _expense(
            contract_id,
            expense_id="EX-E2E-2",
            category="software",
            amount={"amount": "2000.00", "currency": "EUR"},
        ),
        "msg_e2e_expense_EX2_v1",
        source=PSA_SOURCE,
    )
    assert cost.status_code == 202, cost.text
    driver.runtime.wait_until_idle()
    output = _succeeded_output(driver, cost.json()["event_id"])
    assert output["synced"]["outcome"] == "cost_only" and output["erp"]["sent"] is False
    assert _build_lines(driver, contract_id) == ["6000.00"]  # 2,000 / 20,000 of the build's 60,000
    assert not _rebilled(driver, contract_id)
