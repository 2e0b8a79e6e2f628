"""DynamoDB version store and delivery log, the step handlers and the workflow starter against moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pssync.adapters.aws import (
    DynamoDBDeliveryLog,
    DynamoDBVersionStore,
    S3RawPayloadStore,
    StepFunctionsStarter,
)
from pssync.errors import TransientDownstreamError
from pssync.model import examples
from pssync.model.commands import ConnectorCommand, Target
from pssync.ports import VersionConflict
from pssync.workflows.provision import CONTRACT
from tests.integration.conftest import AwsWorld, context, load_handler, sqs_record


def test_version_store_appends_conditionally_and_reads_history(aws: AwsWorld) -> None:
    store = DynamoDBVersionStore("business", aws.clients["dynamodb"])
    common = {"correlation_id": "c", "recorded_at": "2026-11-20T10:00:00+00:00"}
    store.append("contract", "C1", expected_version=0, body={"v": 1}, caused_by_event_id="e1", **common)
    store.append("contract", "C1", expected_version=1, body={"v": 2}, caused_by_event_id="e2", **common)
    with pytest.raises(VersionConflict):
        store.append(
            "contract", "C1", expected_version=1, body={"v": "stale"}, caused_by_event_id="e3", **common
        )
    with pytest.raises(VersionConflict):
        store.append(
            "contract", "C1", expected_version=0, body={"v": "again"}, caused_by_event_id="e4", **common
        )
    head = store.head("contract", "C1")
    assert head is not None and (head.version, head.body) == (2, {"v": 2})
    assert [(v.version, v.caused_by_event_id) for v in store.history("contract", "C1")] == [
        (1, "e1"),
        (2, "e2"),
    ]
    first = store.get("contract", "C1", 1)
    assert first is not None and first.body == {"v": 1}


def test_delivery_log_records_a_command_once(aws: AwsWorld) -> None:
    log = DynamoDBDeliveryLog("delivery-log", aws.clients["dynamodb"])
    command = ConnectorCommand(
        target=Target.ERP,
        operation="upsert_billing_schedule",
        external_id="C1",
        idempotency_key="billing-schedule:C1:v1",
        payload={"lines": []},
        caused_by_event_id="e1",
        correlation_id="c",
    )
    assert log.record(command, "2026-11-20T10:00:00+00:00").first_time
    assert not log.record(command, "2026-11-20T10:00:01+00:00").first_time
    assert log.all_commands() == [command]


def test_raw_payload_store_keeps_the_first_receipt_of_the_same_bytes(aws: AwsWorld) -> None:
    store = S3RawPayloadStore("raw-payloads", aws.clients["s3"])
    first_at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    first = store.put("crm", "delivery-1", b'{"deal": 1}', first_at)
    again = store.put("crm", "delivery-2", b'{"deal": 1}', datetime(2026, 11, 20, 11, 0, tzinfo=UTC))
    assert again.raw_payload_ref == first.raw_payload_ref and again.raw_sha256 == first.raw_sha256
    assert again.delivery_id == "delivery-2"  # the event still names the delivery that carried it
    key = first.raw_payload_ref.removeprefix("s3://raw-payloads/")
    stored = aws.clients["s3"].get_object(Bucket="raw-payloads", Key=key)
    assert stored["Body"].read() == b'{"deal": 1}'
    assert stored["Metadata"] == {"delivery-id": "delivery-1", "received-at": first_at.isoformat()}


class _ScriptedS3:
    """Answers PutObject with the given errors in turn, then succeeds."""

    def __init__(self, *codes: tuple[str, int]) -> None:
        self.errors = [
            ClientError(
                {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject"
            )
            for code, status in codes
        ]
        self.calls = 0

    def put_object(self, **_: Any) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)


CONFLICT = ("ConditionalRequestConflict", 409)


def test_raw_payload_store_retries_a_concurrent_write_then_calls_it_transient() -> None:
    at, sleeps = datetime(2026, 11, 20, 10, 0, tzinfo=UTC), []
    settled = _ScriptedS3(CONFLICT)
    store = S3RawPayloadStore("raw-payloads", settled, sleep=sleeps.append)
    assert store.put("crm", "d", b"x", at).raw_sha256.startswith("2d711642") and settled.calls == 2
    stuck = _ScriptedS3(CONFLICT, CONFLICT, CONFLICT)
    with pytest.raises(TransientDownstreamError, match="still in flight"):  # 503: the sender retries
        S3RawPayloadStore("raw-payloads", stuck, sleep=sleeps.append).put("crm", "d", b"x", at)
    assert stuck.calls == 3 and sleeps == [0.05, 0.05, 0.1]
    with pytest.raises(ClientError, match="AccessDenied"):
        S3RawPayloadStore("raw-payloads", _ScriptedS3(("AccessDenied", 403))).put("crm", "d", b"x", at)


def test_record_contract_version_handler_writes_version_one_once(aws: AwsWorld) -> None:
    handler = load_handler("record_contract_version")
    payload = {"event": examples.contract_booked().model_dump(mode="json")}
    first = handler(payload, context())
    replay = handler(payload, context())
    assert first == {"contract_id": "C-2026-0412", "version": 1, "newly_recorded": True}
    assert replay["newly_recorded"] is False
    history = DynamoDBVersionStore("business", aws.clients["dynamodb"]).history(CONTRACT, "C-2026-0412")
    assert len(history) == 1


def test_step_errors_surface_with_their_class_name_for_step_functions(aws: AwsWorld) -> None:
    handler = load_handler("validate_master_data")
    event = examples.contract_booked().model_dump(mode="json")
    event["data"]["contract"]["transaction_price"]["amount"] = "1.00"
    with pytest.raises(Exception) as error:
        handler({"event": event}, context())
    assert type(error.value).__name__ == "BusinessRuleViolation"


def _sqs_event(*bodies: str) -> dict:
    return {"Records": [sqs_record(body, f"m{i}") for i, body in enumerate(bodies)]}


def test_start_workflow_names_executions_by_business_event_and_reports_bad_records(
    aws: AwsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    sfn = aws.clients["stepfunctions"]
    role = aws.clients["iam"].create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    arn = sfn.create_state_machine(
        name="provision",
        roleArn=role,
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
    )["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN", arn)
    monkeypatch.setenv("WORKFLOW_NAME", "provision-engagement")
    monkeypatch.setenv("WORKFLOW_EVENT_TYPES", "ContractBooked")
    handler = load_handler("start_workflow")
    message = json.dumps(
        {
            "detail-type": "ContractBooked",
            "source": "pssync.ingest",
            "detail": examples.contract_booked().model_dump(mode="json"),
        }
    )
    result = handler(_sqs_event(message, message, "not json"), context())
    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    executions = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert [e["name"] for e in executions] == [f"ContractBooked-{examples.contract_booked().event_id}"]
    assert StepFunctionsStarter(arn, sfn).start(executions[0]["name"], "{}")[1] is False
