"""Transient downstream faults: retried with backoff by the state machine, then caught when they persist.

Handlers run in worker processes, so the fault is injected at the AWS boundary instead: inside the moto
server, which runs in this process. The shadow ERP connector's send is one DynamoDB PutItem into the
delivery log; while the fault is on, each such call for the ERP answers 503 ServiceUnavailable, on every
attempt the SDK makes, for the first `times` calls. A call is counted once per SDK operation (the
`amz-sdk-invocation-id` header is the same on the SDK's own retries of one call), so `calls` counts what
the connector sent, as a fake ERP would.
"""

from __future__ import annotations

import json
import threading

import pytest
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.responses import DynamoHandler

from tests.e2e.conftest import Driver

pytestmark = pytest.mark.e2e


class _ServiceUnavailable(JsonRESTError):
    code = 503

    def __init__(self) -> None:
        super().__init__(
            "com.amazonaws.dynamodb.v20120810#ServiceUnavailable", "injected by the test: the ERP is down"
        )


def _failing_erp(times: int, driver: Driver, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ERP answers 503 for the first `times` calls; returns the idempotency key of every call."""
    table = driver.runtime.function_env("DELIVERY_LOG_TABLE_NAME")
    calls: list[str] = []
    call_of_invocation: dict[str, int] = {}
    lock = threading.Lock()
    original = DynamoHandler.put_item

    def flaky_put_item(self: DynamoHandler):  # type: ignore[no-untyped-def]
        item = self.body.get("Item", {})
        if self.body.get("TableName") == table and item.get("pk", {}).get("S", "").startswith("erp#"):
            invocation = self.headers.get("amz-sdk-invocation-id") or f"no-id-{len(calls)}"
            with lock:
                if invocation not in call_of_invocation:
                    calls.append(item["sk"]["S"])
                    call_of_invocation[invocation] = len(calls)
                number = call_of_invocation[invocation]
            if number <= times:
                raise _ServiceUnavailable()
        return original(self)

    monkeypatch.setattr(DynamoHandler, "put_item", flaky_put_item)
    return calls


def test_a_transient_erp_fault_is_retried_and_the_engagement_still_activates(
    driver: Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _failing_erp(2, driver, monkeypatch)
    event_id = driver.post(driver.body_for("E2E-FLAKY"), "msg_e2e_flaky").json()["event_id"]
    driver.runtime.wait_until_idle()
    [execution] = driver.executions_for(event_id)
    assert execution["status"] == "SUCCEEDED"
    assert len(calls) == 3  # two failures, then success
    history = driver.runtime.clients["stepfunctions"].get_execution_history(
        executionArn=execution["executionArn"]
    )["events"]
    failures = [e for e in history if e["type"] == "LambdaFunctionFailed"]
    assert [json.loads(json.dumps(e["lambdaFunctionFailedEventDetails"]))["error"] for e in failures] == [
        "TransientDownstreamError",
        "TransientDownstreamError",
    ]


def test_a_persistent_fault_exhausts_the_retries_and_is_caught(
    driver: Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _failing_erp(100, driver, monkeypatch)
    event_id = driver.post(driver.body_for("E2E-DOWN"), "msg_e2e_down").json()["event_id"]
    driver.runtime.wait_until_idle()
    [execution] = driver.executions_for(event_id)
    assert execution["status"] == "FAILED"
    assert len(calls) == 5  # the first attempt and MaxAttempts (4) retries
    sqs = driver.runtime.clients["sqs"]
    queue_url = next(url for lid, url in driver.runtime.resources.queues.items() if "Exceptions" in lid)
    bodies = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        bodies.extend(json.loads(m["Body"]) for m in batch)
    [record] = [b for b in bodies if b["event"]["event_id"] == event_id]
    assert record["failed_step"] == "PublishErpBillingSchedule"
    assert record["error"]["Error"] == "TransientDownstreamError"
