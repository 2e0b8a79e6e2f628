"""Ops replay on the local runtime: every dead-letter store goes back in, and nothing double-applies."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pssync.adapters.aws import DynamoDBDeliveryLog, DynamoDBVersionStore
from pssync.cli import app
from pssync.model import examples
from pssync.workflows.provision import CONTRACT
from tests.e2e.conftest import Driver

pytestmark = pytest.mark.e2e


def _queue(driver: Driver, fragment: str) -> str:
    return next(url for lid, url in driver.runtime.resources.queues.items() if fragment in lid)


def _cli(driver: Driver, *args: str) -> str:
    result = CliRunner().invoke(
        app, list(args), env={"AWS_ENDPOINT_URL": driver.runtime.moto_url, "COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    return result.output


def _bus_event(contract_id: str, delivery: str) -> dict:
    booked = examples.contract_booked()
    terms = booked.data.contract.model_copy(
        update={
            "contract_id": contract_id,
            "project": booked.data.contract.project.model_copy(update={"project_id": f"P-{contract_id}"}),
        }
    )
    event = booked.model_copy(
        update={
            "event_id": f"evt-{delivery}",
            "source_event_id": delivery,
            "data": booked.data.model_copy(update={"contract": terms}),
        }
    )
    return {
        "version": "0",
        "id": f"eb-{delivery}",
        "detail-type": "ContractBooked",
        "source": "pssync.ingest",
        "detail": event.model_dump(mode="json"),
    }


def test_a_failed_step_is_replayed_from_the_exceptions_queue_once_the_fault_is_fixed(driver: Driver) -> None:
    psa_function = next(
        f for f in driver.runtime.host.functions.values() if f.folder == "provision_psa_project"
    )
    psa_function.environment["PSA_CONNECTOR"] = "not-configured"  # the PSA is unreachable for a while
    try:
        response = driver.post(driver.body_for("E2E-REPLAY"), "msg_e2e_replay")
        event_id = response.json()["event_id"]
        driver.runtime.wait_until_idle()
    finally:
        psa_function.environment["PSA_CONNECTOR"] = "shadow"
    assert [e["status"] for e in driver.executions_for(event_id)] == ["FAILED"]

    listing = _cli(driver, "dlq", "list")
    assert "workflow-exceptions" in listing
    shown = _cli(driver, "dlq", "show", _queue(driver, "Exceptions"), "--limit", "50")
    assert "ProvisionPsaProject" in shown

    _cli(driver, "dlq", "replay", _queue(driver, "Exceptions"))
    driver.runtime.wait_until_idle()
    statuses = {e["name"].rsplit("-", 1)[-1]: e["status"] for e in driver.executions_for(event_id)}
    assert "SUCCEEDED" in statuses.values() and statuses.get("a1") == "SUCCEEDED"

    ddb = driver.runtime.clients["dynamodb"]
    store = DynamoDBVersionStore(driver.runtime.function_env("BUSINESS_TABLE_NAME"), ddb)
    assert [v.version for v in store.history(CONTRACT, "E2E-REPLAY")] == [
        1
    ]  # recorded once, before the fault
    log = DynamoDBDeliveryLog(driver.runtime.function_env("DELIVERY_LOG_TABLE_NAME"), ddb)
    commands = [c.operation for c in log.all_commands() if c.caused_by_event_id == event_id]
    assert sorted(commands) == ["upsert_billing_schedule", "upsert_project"]


def test_inbox_dlq_and_bus_dlq_replays_start_the_workflow_once_even_when_replayed_twice(
    driver: Driver,
) -> None:
    sqs = driver.runtime.clients["sqs"]
    inbox_dead = _bus_event("E2E-INBOX-DLQ", "dlq-inbox")
    bus_dead = _bus_event("E2E-BUS-DLQ", "dlq-bus")
    for _ in range(2):  # the same dead letter twice: e.g. an operator replayed a copy
        sqs.send_message(
            QueueUrl=_queue(driver, "ProvisionEngagementInboxDlq"), MessageBody=json.dumps(inbox_dead)
        )
        sqs.send_message(QueueUrl=_queue(driver, "EventBridgeTargetDlq"), MessageBody=json.dumps(bus_dead))

    assert "would replay 2" in _cli(
        driver, "dlq", "replay", _queue(driver, "ProvisionEngagementInboxDlq"), "--dry-run"
    )
    assert "replayed 2" in _cli(driver, "dlq", "replay", _queue(driver, "ProvisionEngagementInboxDlq"))
    assert "replayed 2" in _cli(driver, "dlq", "replay", _queue(driver, "EventBridgeTargetDlq"))
    driver.runtime.wait_until_idle()

    for event in (inbox_dead, bus_dead):
        executions = driver.executions_for(event["detail"]["event_id"])
        assert [e["status"] for e in executions] == ["SUCCEEDED"]
    depths = {q.name: q.visible for q in driver.runtime.queue_depths()}
    assert depths[_queue(driver, "ProvisionEngagementInboxDlq").rsplit("/", 1)[-1]] == 0
    assert depths[_queue(driver, "EventBridgeTargetDlq").rsplit("/", 1)[-1]] == 0
