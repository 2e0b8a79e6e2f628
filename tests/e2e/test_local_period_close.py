"""End to end on the local runtime: a 1,000-contract portfolio closes through the Distributed Map; a second
request changes nothing; a reopen and a reclose post only the adjustment for what changed."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest

from bench.close import seed_portfolio
from pssync.adapters.aws import DynamoDBDeliveryLog, DynamoDBVersionStore, StepFunctionsExecutions
from pssync.model.commands import ConnectorCommand
from pssync.workflows import period_close as pc
from pssync.workflows.provision import CONTRACT
from tests.e2e.conftest import Driver

pytestmark = pytest.mark.e2e

ENTITY = "E2E7"  # an entity of its own: other tests' exceptions and contracts are not in its close
PERIOD = "2027-01"
CONTRACTS = 1_000
SEED = 7
HANG_GUARD_SECONDS = 900.0  # never an assertion on speed: only a bound so a stuck close fails the test


def _executions(driver: Driver) -> StepFunctionsExecutions:
    arn = next(a for a in driver.runtime.resources.state_machines.values() if a.endswith("-close-period"))
    return StepFunctionsExecutions(arn, driver.runtime.clients["stepfunctions"])


def _submit(driver: Driver, action: str, **options: Any) -> pc.RequestDecision:
    executions = _executions(driver)
    document = pc.request_input(action, ENTITY, PERIOD, "e2e@example.com", **options)  # type: ignore[arg-type]
    return pc.submit_request(document, executions.status, executions.start)


def _finished(driver: Driver, name: str) -> dict[str, Any]:
    executions = _executions(driver)
    sfn = driver.runtime.clients["stepfunctions"]
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=executions.execution_arn(name))
        if described["status"] != "RUNNING":
            assert described["status"] == "SUCCEEDED", described.get("cause")
            return json.loads(described["output"])  # type: ignore[no-any-return]
        time.sleep(0.5)
    raise TimeoutError(f"close execution {name} still running after {HANG_GUARD_SECONDS} s")


def _journals(driver: Driver) -> list[ConnectorCommand]:
    log = DynamoDBDeliveryLog(
        driver.runtime.function_env("DELIVERY_LOG_TABLE_NAME"), driver.runtime.clients["dynamodb"]
    )
    return [
        c
        for c in log.all_commands()
        if c.operation == "post_journal_entry" and c.payload["legal_entity"] == ENTITY
    ]


def test_a_portfolio_closes_once_and_a_reclose_after_reopen_posts_only_adjustments(driver: Driver) -> None:
    store = DynamoDBVersionStore(
        driver.runtime.function_env("BUSINESS_TABLE_NAME"), driver.runtime.clients["dynamodb"]
    )
    ids = seed_portfolio(store, CONTRACTS, ENTITY, SEED)

    first = _submit(driver, "close")
    assert (first.name, first.start) == (f"{ENTITY}-{PERIOD}-a1-close", True)
    output = _finished(driver, first.name)
    assert output["plan"]["contracts"] == CONTRACTS
    assert output["plan"]["shards"] == CONTRACTS // pc.SHARD_SIZE  # several Distributed Map items
    assert output["lock"]["contracts"] == CONTRACTS and output["lock"]["newly_locked"] is True
    journals = _journals(driver)
    assert sorted(c.payload["contract_id"] for c in journals) == sorted(ids)
    assert {c.payload["kind"] for c in journals} == {"recognition"}
    for command in journals:
        pc.check_balanced(command.payload["lines"], command.payload["currency"], command.idempotency_key)
    state = pc.period_states(store.head(pc.PERIOD, ENTITY))[PERIOD]
    assert state.locked and state.close_id == first.name and state.shards == output["plan"]["shards"]
    posted = {t.currency: t for t in state.journals}
    for currency, total in posted.items():
        entries = [c for c in journals if c.payload["currency"] == currency]
        assert total.entries == len(entries) and total.debits == total.credits

    duplicate = _submit(driver, "close")
    assert (duplicate.name, duplicate.start, duplicate.status) == (first.name, False, "SUCCEEDED")
    assert len(_journals(driver)) == CONTRACTS

    reopen = _submit(driver, "reopen", reason="price correction on one contract")
    assert reopen.name == f"{ENTITY}-{PERIOD}-a2-reopen"
    assert _finished(driver, reopen.name)["reopened"]["reopen_count"] == 1

    changed = ids[17]
    head = store.head(CONTRACT, changed)
    assert head is not None
    terms = head.body["terms"]
    for money in (terms["transaction_price"], terms["obligations"][0]["standalone_selling_price"]):
        money["amount"] = str(Decimal(money["amount"]) * 2)
    fee = terms["billing"][0]["monthly_fee"]
    fee["amount"] = str(Decimal(fee["amount"]) * 2)
    store.append(
        CONTRACT,
        changed,
        expected_version=head.version,
        body={
            "terms": terms,
            "effective_date": "2027-01-01",
            "modification": {"override": "cumulative_catch_up", "rationale": "price correction"},
        },
        caused_by_event_id="e2e-close-amend",
        correlation_id="e2e-close-amend",
        recorded_at="2027-02-03T00:00:00+00:00",
    )

    reclose = _submit(driver, "close")
    assert reclose.name == f"{ENTITY}-{PERIOD}-a3-close"
    assert _finished(driver, reclose.name)["lock"]["contracts"] == CONTRACTS
    after = _journals(driver)
    new = [c for c in after if c.command_id not in {j.command_id for j in journals}]
    assert [(c.payload["contract_id"], c.payload["kind"]) for c in new] == [(changed, "adjustment-1")]
    pc.check_balanced(new[0].payload["lines"], new[0].payload["currency"], "adjustment")
    assert [v.body["kind"] for v in store.history(pc.CLOSE_LEDGER, changed)] == [
        "recognition",
        "adjustment-1",
    ]
