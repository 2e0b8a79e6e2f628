"""Every close-period step handler against moto: gate (queues peeked, not consumed), plan (Scan + S3 shard
files), shards (journals through the shadow delivery log), lock (PERIOD aggregate, PeriodClosed on the bus),
reopen, and the scheduled requester against a Step Functions state machine."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bench.close import seed_portfolio
from pssync.adapters.aws import DynamoDBDeliveryLog, DynamoDBVersionStore, SqsMessagePeek
from pssync.errors import BusinessRuleViolation
from pssync.workflows import period_close as pc
from tests.integration.conftest import AwsWorld, context, load_handler

ENTITY = "NL01"
PERIOD = "2027-01"
BUCKET = "pssync-closes"


@pytest.fixture
def world(aws: AwsWorld, monkeypatch: pytest.MonkeyPatch) -> AwsWorld:
    aws.clients["s3"].create_bucket(Bucket=BUCKET)
    exceptions = aws.clients["sqs"].create_queue(QueueName="exceptions")["QueueUrl"]
    monkeypatch.setenv("CLOSE_BUCKET_NAME", BUCKET)
    monkeypatch.setenv("CLOSE_GATE_QUEUE_URLS", json.dumps([exceptions]))
    monkeypatch.setenv("ERP_CONNECTOR", "shadow")
    aws.env["EXCEPTIONS_URL"] = exceptions
    return aws


def _request(action: str = "close", attempt: int = 1, **changes: Any) -> dict[str, Any]:
    return {
        "action": action,
        "legal_entity": ENTITY,
        "period": PERIOD,
        "override_reason": None,
        "reason": None,
        "requested_by": "it@example.com",
        "close_id": pc.execution_name(ENTITY, PERIOD, attempt, action),
        "requested_at": datetime(2027, 2, 1, 3, tzinfo=UTC).isoformat(),
        **changes,
    }


def _close(world: AwsWorld, request: dict[str, Any]) -> dict[str, Any]:
    """The state machine's path through the close, passing the state on as the ASL does."""
    state: dict[str, Any] = {"request": request}
    state["gate"] = load_handler("close_period_gate")({"request": request}, context())
    if state["gate"]["outcome"] == "already_closed":
        return state
    state["plan"] = load_handler("close_period_plan")({"request": request}, context())
    close_shard = load_handler("close_period_shard")
    manifest_object = world.clients["s3"].get_object(Bucket=BUCKET, Key=state["plan"]["manifest_key"])
    manifest = json.loads(manifest_object["Body"].read())  # what the Distributed Map's ItemReader reads
    state["shards"] = [close_shard({"request": request, "shard": item}, context()) for item in manifest]
    state["lock"] = load_handler("close_period_lock")(
        {k: state[k] for k in ("request", "gate", "plan")}, context()
    )
    return state


def _exception_record(contract_id: str, work_date: str) -> str:
    return json.dumps(
        {
            "workflow": "apply-approved-time",
            "failed_step": "RecordBillableTime",
            "event": {
                "event_id": f"time-{contract_id}",
                "event_type": "TimeApproved",
                "occurred_at": "2027-01-30T10:00:00Z",
                "data": {"contract_id": contract_id, "work_date": work_date},
            },
        }
    )


def test_a_close_runs_every_step_posts_once_and_locks(world: AwsWorld) -> None:
    store = DynamoDBVersionStore("business", world.clients["dynamodb"])
    ids = seed_portfolio(store, 5, ENTITY, seed=11)
    seed_portfolio(store, 2, "DE02", seed=12)

    state = _close(world, _request())
    assert state["plan"]["contracts"] == 5 and state["plan"]["shards"] == 1
    assert state["lock"]["newly_locked"] is True
    log = DynamoDBDeliveryLog("delivery-log", world.clients["dynamodb"])
    journals = [c for c in log.all_commands() if c.operation == "post_journal_entry"]
    assert sorted(c.payload["contract_id"] for c in journals) == sorted(ids)
    [closed] = [e for e in world.captured() if e["detail-type"] == "PeriodClosed"]
    assert closed["detail"]["data"]["contracts"] == 5 and closed["detail"]["data"]["locked"] is True
    totals = closed["detail"]["data"]["journals"]
    assert sum(t["entries"] for t in totals) == 5 and all(t["debits"] == t["credits"] for t in totals)

    again = _close(
        world, _request()
    )  # the same close id again: a Step Functions retry of the whole execution
    assert again["gate"]["outcome"] == "already_closed"
    assert len([c for c in log.all_commands() if c.operation == "post_journal_entry"]) == 5

    reopened = load_handler("close_period_reopen")(
        {"request": _request("reopen", attempt=2, reason="late correction")}, context()
    )
    assert reopened["reopen_count"] == 1
    [event] = [e for e in world.captured() if e["detail-type"] == "PeriodReopened"]
    assert event["detail"]["data"]["reason"] == "late correction"
    reclose = _close(world, _request(attempt=3))
    assert reclose["shards"] == [{"shard": 1, "contracts": 5, "posted": 0}]  # nothing changed: nothing posted


def test_the_gate_blocks_on_an_exception_of_the_period_and_leaves_the_queue_as_it_was(
    world: AwsWorld,
) -> None:
    store = DynamoDBVersionStore("business", world.clients["dynamodb"])
    [contract_id] = seed_portfolio(store, 1, ENTITY, seed=13)
    sqs = world.clients["sqs"]
    url = world.env["EXCEPTIONS_URL"]
    sqs.send_message(QueueUrl=url, MessageBody=_exception_record(contract_id, "2027-01-15"))
    sqs.send_message(QueueUrl=url, MessageBody=_exception_record(contract_id, "2027-02-15"))

    gate = load_handler("close_period_gate")
    with pytest.raises(BusinessRuleViolation) as blocked:
        gate({"request": _request()}, context())
    assert blocked.value.code == "open_exceptions"
    assert len(list(SqsMessagePeek([url], sqs).bodies())) == 2  # peeked, not consumed; visible again

    overridden = gate(
        {"request": _request(attempt=2, override_reason="accepted by the controller")}, context()
    )
    assert overridden["override"]["exceptions"] == 1


def test_the_scheduled_requester_starts_one_execution_and_a_second_run_finds_it(
    world: AwsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    sfn = world.clients["stepfunctions"]
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    arn = sfn.create_state_machine(
        name="pssync-test-close-period",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/close",
    )["stateMachineArn"]
    monkeypatch.setenv("CLOSE_STATE_MACHINE_ARN", arn)
    request_close = load_handler("request_period_close")
    first = request_close({"legal_entity": ENTITY}, context())
    second = request_close({"legal_entity": ENTITY}, context())
    assert (
        first["start"] is True
        and first["name"].startswith(f"{ENTITY}-")
        and first["name"].endswith("-a1-close")
    )
    assert second["name"] == first["name"] and second["start"] is False
    [execution] = sfn.list_executions(stateMachineArn=arn)["executions"]
    document = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert document["requested_by"] == "schedule" and document["legal_entity"] == ENTITY


def test_local_runtime_transactions_apply_whole_or_restore_only_their_items(world: AwsWorld) -> None:
    """The local runtime's TransactWriteItems patch (no copy of the table per transaction): a transaction
    whose second write fails its condition leaves the first item as it was, and other items untouched."""
    from pssync.local.moto_dynamodb import install

    install()
    store = DynamoDBVersionStore("business", world.clients["dynamodb"])
    first = store.append(
        "probe",
        "a",
        expected_version=0,
        body={"n": 1},
        caused_by_event_id="e1",
        correlation_id="c",
        recorded_at="t",
    )
    store.append(
        "probe",
        "other",
        expected_version=0,
        body={"n": 9},
        caused_by_event_id="e",
        correlation_id="c",
        recorded_at="t",
    )
    with pytest.raises(Exception, match="head is no longer version 5"):
        store.append(
            "probe",
            "a",
            expected_version=5,
            body={"n": 2},
            caused_by_event_id="e2",
            correlation_id="c",
            recorded_at="t",
        )
    assert store.history("probe", "a") == [first]
    head = store.head("probe", "a")
    assert head is not None and head.body == {"n": 1}
    second = store.append(
        "probe",
        "a",
        expected_version=1,
        body={"n": 2},
        caused_by_event_id="e2",
        correlation_id="c",
        recorded_at="t",
    )
    assert [v.version for v in store.history("probe", "a")] == [1, second.version] == [1, 2]
    assert store.head("probe", "other") is not None
