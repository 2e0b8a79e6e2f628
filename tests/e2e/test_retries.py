"""Transient downstream faults: retried with backoff by the state machine, then caught when they persist."""

from __future__ import annotations

import json

import pytest

from pssync.connectors.shadow import ShadowConnector
from pssync.errors import TransientDownstreamError
from tests.e2e.conftest import Driver

pytestmark = pytest.mark.e2e


def _failing_erp(times: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ERP answers 503 for the first `times` calls (handlers run in this process)."""
    calls: list[str] = []
    original = ShadowConnector.send

    def flaky_send(self, command, recorded_at):  # type: ignore[no-untyped-def]
        if command.target == "erp":
            calls.append(command.idempotency_key)
            if len(calls) <= times:
                raise TransientDownstreamError("ERP answered 503")
        return original(self, command, recorded_at)

    monkeypatch.setattr(ShadowConnector, "send", flaky_send)
    return calls


def test_a_transient_erp_fault_is_retried_and_the_engagement_still_activates(
    driver: Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _failing_erp(2, monkeypatch)
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
    calls = _failing_erp(100, monkeypatch)
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
