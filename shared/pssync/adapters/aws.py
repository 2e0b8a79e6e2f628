"""AWS implementations of the ports. Nothing above this module touches boto3.

botocore errors are translated here: throttling and 5xx become TransientDownstreamError (the Step
Functions Retry policies match on that name), everything else propagates as a real failure.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from botocore.exceptions import BotoCoreError, ClientError

from pssync.errors import DeliveryInProgress, TransientDownstreamError, UnprocessableDelivery
from pssync.model.commands import ConnectorCommand, Target
from pssync.model.events import EventEnvelope, Lineage
from pssync.ports import (
    DedupeOutcome,
    RecordedCommand,
    SigningSecrets,
    StoredVersion,
    VersionClaim,
    VersionConflict,
)

_TRANSIENT_CODES = {
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "InternalServiceError",
    "TransactionInProgressException",
}
PUT_EVENTS_BATCH = 10


@contextmanager
def translate_aws_errors(operation: str) -> Iterator[None]:
    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _TRANSIENT_CODES or status >= 500:
            raise TransientDownstreamError(f"{operation}: {code}") from error
        raise
    except BotoCoreError as error:  # connection errors, timeouts
        raise TransientDownstreamError(f"{operation}: {type(error).__name__}") from error


class EventBridgePublisher:
    def __init__(self, bus_name: str, client: Any) -> None:
        self._bus_name = bus_name
        self._client = client

    def publish(self, events: Sequence[EventEnvelope]) -> None:
        for start in range(0, len(events), PUT_EVENTS_BATCH):
            chunk = events[start : start + PUT_EVENTS_BATCH]
            entries = [
                {
                    "EventBusName": self._bus_name,
                    "Source": event.bus_source,
                    "DetailType": str(getattr(event, "event_type")),  # noqa: B009 - defined per subclass
                    "Detail": event.model_dump_json(),
                }
                for event in chunk
            ]
            with translate_aws_errors("events:PutEvents"):
                response = self._client.put_events(Entries=entries)
            if response.get("FailedEntryCount", 0):
                failures = [e.get("ErrorCode") for e in response["Entries"] if e.get("ErrorCode")]
                raise TransientDownstreamError(f"events:PutEvents rejected entries: {failures}")


class JsonSecrets:
    """Secrets Manager values that are JSON objects, cached by Powertools for `max_age_seconds`.

    One provider per container: its cache is per instance, so a provider per call would fetch the secret
    on every webhook (measured in bench/ingest.py). Anything unreadable, still CloudFormation's random
    placeholder (not JSON), or missing `required_key` fails closed as TransientDownstreamError (503, so
    senders keep retrying while the operator stores the secret).
    """

    def __init__(self, client: Any, max_age_seconds: int = 300) -> None:
        from aws_lambda_powertools.utilities import parameters

        self._provider = parameters.SecretsProvider(boto3_client=client)
        self._max_age = max_age_seconds

    def read(self, secret_id: str, required_key: str) -> dict[str, Any]:
        from aws_lambda_powertools.utilities.parameters.exceptions import (
            GetParameterError,
            TransformParameterError,
        )

        with translate_aws_errors("secretsmanager:GetSecretValue"):
            try:
                value = self._provider.get(secret_id, max_age=self._max_age, transform="json")
            except (GetParameterError, TransformParameterError) as error:
                raise TransientDownstreamError(f"secret {secret_id} is unavailable or not set") from error
        if not isinstance(value, dict) or not value.get(required_key):
            raise TransientDownstreamError(f"secret {secret_id} has no {required_key!r} value")
        return value


class SecretsManagerSecrets:
    """Signing secrets as JSON {"current": ..., "previous": ...}."""

    def __init__(self, client: Any, max_age_seconds: int = 300) -> None:
        self._secrets = JsonSecrets(client, max_age_seconds)

    def signing_secrets(self, secret_id: str) -> SigningSecrets:
        value = self._secrets.read(secret_id, "current")
        return SigningSecrets(current=str(value["current"]), previous=value.get("previous") or None)


class PowertoolsDeduplicator:
    """Powertools idempotency on DynamoDB, keyed on the source's event id, payload-validated."""

    def __init__(self, table_name: str, expiry_seconds: int, client: Any) -> None:
        self._persistence = DynamoDBPersistenceLayer(
            table_name=table_name, key_attr="id", expiry_attr="expiration", boto3_client=client
        )
        self.config = IdempotencyConfig(
            event_key_jmespath="key",
            payload_validation_jmespath="fingerprint",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=expiry_seconds,
        )

    def once(self, key: str, fingerprint: str, action: Callable[[], str]) -> DedupeOutcome:
        ran = False

        @idempotent_function(  # type: ignore[untyped-decorator]
            data_keyword_argument="delivery", config=self.config, persistence_store=self._persistence
        )
        def run_once(delivery: dict[str, str]) -> str:
            nonlocal ran
            ran = True
            return action()

        try:
            value = run_once(delivery={"key": key, "fingerprint": fingerprint})
        except IdempotencyAlreadyInProgressError:
            raise DeliveryInProgress("an identical delivery is being recorded; retry shortly") from None
        except IdempotencyValidationError:
            raise UnprocessableDelivery("this delivery id was already used with a different body") from None
        return DedupeOutcome(value=value, first=ran)


def _version_sk(version: int) -> str:
    return f"V#{version:010d}"


class DynamoDBVersionStore:
    """pk = <AGGREGATE>#<id>; sk = V#<zero-padded version> per version plus one HEAD item.

    Each append is one transaction: put the new version if absent, and move HEAD only if it still
    points at the expected version. Two writers racing for the same version cannot both win.
    """

    def __init__(self, table_name: str, client: Any) -> None:
        self._table = table_name
        self._client = client

    @staticmethod
    def _pk(aggregate: str, aggregate_id: str) -> str:
        return f"{aggregate.upper()}#{aggregate_id}"

    def append(
        self,
        aggregate: str,
        aggregate_id: str,
        *,
        expected_version: int,
        body: dict[str, Any],
        caused_by_event_id: str,
        correlation_id: str,
        recorded_at: str,
    ) -> StoredVersion:
        pk = self._pk(aggregate, aggregate_id)
        version = expected_version + 1
        attributes = {
            "version": {"N": str(version)},
            "body": {"S": json.dumps(body, sort_keys=True)},
            "caused_by_event_id": {"S": caused_by_event_id},
            "correlation_id": {"S": correlation_id},
            "recorded_at": {"S": recorded_at},
        }
        head_condition = "attribute_not_exists(pk)" if expected_version == 0 else "version = :expected"
        head_values = {":expected": {"N": str(expected_version)}} if expected_version else {}
        try:
            with translate_aws_errors("dynamodb:TransactWriteItems"):
                self._client.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": self._table,
                                "Item": {"pk": {"S": pk}, "sk": {"S": _version_sk(version)}, **attributes},
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                        {
                            "Put": {
                                "TableName": self._table,
                                "Item": {"pk": {"S": pk}, "sk": {"S": "HEAD"}, **attributes},
                                "ConditionExpression": head_condition,
                                **({"ExpressionAttributeValues": head_values} if head_values else {}),
                            }
                        },
                    ]
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                raise VersionConflict(aggregate, aggregate_id, expected_version) from None
            # Throttling or a conflicting concurrent transaction: nothing was decided, so retry.
            raise TransientDownstreamError(f"dynamodb:TransactWriteItems cancelled: {reasons}") from error
        return StoredVersion(
            aggregate, aggregate_id, version, body, caused_by_event_id, correlation_id, recorded_at
        )

    def _load(self, aggregate: str, aggregate_id: str, sk: str) -> StoredVersion | None:
        with translate_aws_errors("dynamodb:GetItem"):
            item = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": self._pk(aggregate, aggregate_id)}, "sk": {"S": sk}},
                ConsistentRead=True,
            ).get("Item")
        return None if item is None else _stored(aggregate, aggregate_id, item)

    def head(self, aggregate: str, aggregate_id: str) -> StoredVersion | None:
        return self._load(aggregate, aggregate_id, "HEAD")

    def get(self, aggregate: str, aggregate_id: str, version: int) -> StoredVersion | None:
        return self._load(aggregate, aggregate_id, _version_sk(version))

    def history(self, aggregate: str, aggregate_id: str) -> list[StoredVersion]:
        paginator = self._client.get_paginator("query")
        versions: list[StoredVersion] = []
        with translate_aws_errors("dynamodb:Query"):
            for page in paginator.paginate(
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
                ExpressionAttributeValues={
                    ":pk": {"S": self._pk(aggregate, aggregate_id)},
                    ":v": {"S": "V#"},
                },
                ConsistentRead=True,
            ):
                versions.extend(_stored(aggregate, aggregate_id, item) for item in page["Items"])
        return versions


def _stored(aggregate: str, aggregate_id: str, item: dict[str, Any]) -> StoredVersion:
    return StoredVersion(
        aggregate=aggregate,
        aggregate_id=aggregate_id,
        version=int(item["version"]["N"]),
        body=json.loads(item["body"]["S"]),
        caused_by_event_id=item["caused_by_event_id"]["S"],
        correlation_id=item["correlation_id"]["S"],
        recorded_at=item["recorded_at"]["S"],
    )


class DynamoDBDeliveryLog:
    """The delivery log: one item per command, written once (idempotency key is the sk), beside each
    target record's refusals (`refused#<key>`) and its never-regress high-water marks (`held#<operation>`),
    all under the record's partition (`<target>#<external id>`)."""

    def __init__(self, table_name: str, client: Any, clock: Callable[[], float] = time.time) -> None:
        self._table = table_name
        self._client = client
        self._clock = clock  # epoch seconds: writer leases are compared across containers

    def record(self, command: ConnectorCommand, recorded_at: str) -> RecordedCommand:
        item = {
            "pk": {"S": f"{command.target}#{command.external_id}"},
            "sk": {"S": command.idempotency_key},
            "command": {"S": command.model_dump_json()},
            "recorded_at": {"S": recorded_at},
        }
        try:
            with translate_aws_errors("dynamodb:PutItem"):
                self._client.put_item(
                    TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(sk)"
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return RecordedCommand(command=command, first_time=False)
            raise
        return RecordedCommand(command=command, first_time=True)

    def all_commands(self) -> list[ConnectorCommand]:
        """For reports and the local demo: every recorded command, oldest first."""
        paginator = self._client.get_paginator("scan")
        rows: list[tuple[str, ConnectorCommand]] = []
        with translate_aws_errors("dynamodb:Scan"):
            for page in paginator.paginate(TableName=self._table, ConsistentRead=True):
                for item in page["Items"]:
                    if "command" not in item:  # a refusal (record_refusal), not a delivery
                        continue
                    rows.append(
                        (item["recorded_at"]["S"], ConnectorCommand.model_validate_json(item["command"]["S"]))
                    )
        return [command for _, command in sorted(rows, key=lambda r: r[0])]

    def commands_for(self, target: Target, external_id: str) -> list[ConnectorCommand]:
        """Every command recorded for one target record: what the never-regress guard and dual mode read."""
        paginator = self._client.get_paginator("query")
        commands: list[ConnectorCommand] = []
        with translate_aws_errors("dynamodb:Query"):
            for page in paginator.paginate(
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"{target}#{external_id}"}},
                ConsistentRead=True,
            ):
                commands += [
                    ConnectorCommand.model_validate_json(i["command"]["S"])
                    for i in page["Items"]
                    if "command" in i
                ]
        return commands

    def record_refusal(self, command: ConnectorCommand, held_version: int, recorded_at: str) -> None:
        """Not sent because the target holds a newer version; kept once, beside the record's deliveries."""
        item = {
            "pk": {"S": f"{command.target}#{command.external_id}"},
            "sk": {"S": "refused#" + command.idempotency_key},
            "refused_command": {"S": command.model_dump_json()},
            "held_version": {"N": str(held_version)},
            "recorded_at": {"S": recorded_at},
        }
        try:
            with translate_aws_errors("dynamodb:PutItem"):
                self._client.put_item(
                    TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(sk)"
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def claim_version(
        self, command: ConnectorCommand, version: int, recorded_at: str, *, writer_lease_seconds: float | None
    ) -> VersionClaim:
        """One conditional UpdateItem on the record's mark: the check and the raise are one atomic step,
        so of two versions racing the older can never claim after the newer."""
        now = self._clock()
        values: dict[str, Any] = {
            ":v": {"N": str(version)},
            ":by": {"S": command.command_id},
            ":at": {"S": recorded_at},
        }
        update = "SET held = :v, held_by = :by, claimed_at = :at"
        condition = "(attribute_not_exists(held) OR held <= :v)"
        token = None
        if writer_lease_seconds is not None:
            token = f"{command.command_id}#{uuid.uuid4().hex}"  # one per attempt: a retry is a new writer
            values.update(
                {
                    ":token": {"S": token},
                    ":until": {"N": f"{now + writer_lease_seconds:.3f}"},
                    ":now": {"N": f"{now:.3f}"},
                }
            )
            update += ", writer = :token, writer_until = :until"
            condition += " AND (attribute_not_exists(writer) OR writer_until < :now)"
        try:
            with translate_aws_errors("dynamodb:UpdateItem"):
                self._client.update_item(
                    TableName=self._table,
                    Key=_mark_key(command),
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            old = error.response.get("Item", {})
            held = int(old["held"]["N"]) if "held" in old else version
            return VersionClaim(granted=False, held=held, busy=held <= version)
        return VersionClaim(granted=True, held=version, token=token)

    def release_claim(self, command: ConnectorCommand, token: str) -> None:
        try:
            with translate_aws_errors("dynamodb:UpdateItem"):
                self._client.update_item(
                    TableName=self._table,
                    Key=_mark_key(command),
                    UpdateExpression="REMOVE writer, writer_until",
                    ConditionExpression="writer = :token",
                    ExpressionAttributeValues={":token": {"S": token}},
                )
        except ClientError as error:
            # Our lease ran out and another claim took the record: it is theirs to release now.
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise


def _mark_key(command: ConnectorCommand) -> dict[str, Any]:
    return {"pk": {"S": f"{command.target}#{command.external_id}"}, "sk": {"S": f"held#{command.operation}"}}


class StepFunctionsStarter:
    def __init__(self, state_machine_arn: str, client: Any) -> None:
        self._arn = state_machine_arn
        self._client = client

    def start(self, name: str, input_document: str) -> tuple[str, bool]:
        try:
            with translate_aws_errors("states:StartExecution"):
                response = self._client.start_execution(
                    stateMachineArn=self._arn, name=name, input=input_document
                )
            return response["executionArn"], True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                # Same business event, same name: the workflow already runs or ran. Not an error.
                execution_arn = self._arn.replace(":stateMachine:", ":execution:") + f":{name}"
                return execution_arn, False
            raise


class S3RawPayloadStore:
    """Raw deliveries under raw/<source>/<sha256 prefix>/<sha256>: content-addressed and written once.

    A redelivery of the same bytes finds its object already there and keeps it (412), so the metadata
    records the first receipt, which is what an auditor tracing a booking back to its source wants. A 409
    means a concurrent conditional write to the key is still in flight and may yet fail: retried briefly,
    then reported as transient, so no event is published pointing at an object that may not exist.
    """

    CONFLICT_ATTEMPTS = 3

    def __init__(self, bucket: str, client: Any, sleep: Callable[[float], None] = time.sleep) -> None:
        self._bucket = bucket
        self._client = client
        self._sleep = sleep

    def put(self, source: str, delivery_id: str, body: bytes, received_at: datetime) -> Lineage:
        digest = hashlib.sha256(body).hexdigest()
        key = f"raw/{source}/{digest[:2]}/{digest}"
        for attempt in range(1, self.CONFLICT_ATTEMPTS + 1):
            try:
                with translate_aws_errors("s3:PutObject"):
                    self._client.put_object(
                        Bucket=self._bucket,
                        Key=key,
                        Body=body,
                        IfNoneMatch="*",
                        Metadata={"delivery-id": delivery_id[:512], "received-at": received_at.isoformat()},
                    )
                break
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if code == "PreconditionFailed":
                    break  # the same bytes are already kept
                if code != "ConditionalRequestConflict":
                    raise
                if attempt == self.CONFLICT_ATTEMPTS:
                    raise TransientDownstreamError(
                        f"s3:PutObject {key}: concurrent write still in flight"
                    ) from error
                self._sleep(0.05 * attempt)
        return Lineage(
            raw_payload_ref=f"s3://{self._bucket}/{key}", raw_sha256=digest, delivery_id=delivery_id
        )


class SecretsManagerTokenSource:
    """Bearer tokens stored as {"access_token": ...}; cached briefly (a rotator keeps them fresh)."""

    def __init__(self, client: Any, max_age_seconds: int = 300) -> None:
        self._secrets = JsonSecrets(client, max_age_seconds)

    def __call__(self, secret_id: str) -> str:
        return str(self._secrets.read(secret_id, "access_token")["access_token"])


# Message attributes a parked record carries: what `pssync dlq show` prints (without the stack trace).
CAUSE_ATTRIBUTES = ("pssync-error", "pssync-reason", "pssync-message", "pssync-function", "pssync-receives")


class SqsDeadLetterParking:
    """Parks a record that failed its last allowed receive in the queue's DLQ, with its typed cause.

    SQS's own redrive moves a message without saying why; parking it ourselves keeps the cause next to
    the message. Earlier receives return False: SQS retries them as usual.
    """

    def __init__(self, queue_url: str, max_receive_count: int, function_name: str, client: Any) -> None:
        self._queue_url = queue_url
        self._max_receive_count = max_receive_count
        self._function_name = function_name
        self._client = client

    def park(self, body: str, receive_count: int, error: BaseException) -> bool:
        if receive_count < self._max_receive_count:
            return False
        cause = {
            "pssync-error": type(error).__name__,
            "pssync-reason": str(getattr(error, "code", "") or "unclassified"),
            "pssync-message": str(error)[:1000] or type(error).__name__,
            "pssync-function": self._function_name,
            "pssync-receives": str(receive_count),
        }
        with translate_aws_errors("sqs:SendMessage"):
            self._client.send_message(
                QueueUrl=self._queue_url,
                MessageBody=body,
                MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in cause.items()},
            )
        return True


# --- period close ----------------------------------------------------------------------------------


class DynamoDBAggregateHeads:
    """The HEAD item of every aggregate of one kind: a paginated Scan of the business table.

    Priced: a Scan reads every item of the table (all versions of every aggregate), filtered after the
    read, so one close costs the table's size / 4 KB read units (consistent reads), page by page, with
    one page (1 MB) in memory at a time. A GSI on the head items would make it a Query when the table
    grows far past the contracts themselves.
    """

    def __init__(self, table_name: str, client: Any) -> None:
        self._table = table_name
        self._client = client

    def heads(self, aggregate: str) -> Iterator[StoredVersion]:
        prefix = f"{aggregate.upper()}#"
        paginator = self._client.get_paginator("scan")
        with translate_aws_errors("dynamodb:Scan"):
            for page in paginator.paginate(
                TableName=self._table,
                FilterExpression="sk = :head AND begins_with(pk, :prefix)",
                ExpressionAttributeValues={":head": {"S": "HEAD"}, ":prefix": {"S": prefix}},
                ConsistentRead=True,
            ):
                for item in page["Items"]:
                    yield _stored(aggregate, item["pk"]["S"][len(prefix) :], item)


class S3JsonObjects:
    """JSON documents in one bucket (the close's manifests and shard results)."""

    def __init__(self, bucket: str, client: Any) -> None:
        self.bucket = bucket
        self._client = client

    def put_json(self, key: str, document: Any) -> None:
        body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
        with translate_aws_errors("s3:PutObject"):
            self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")

    def get_json(self, key: str) -> Any:
        with translate_aws_errors("s3:GetObject"):
            return json.loads(self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def keys(self, prefix: str) -> Iterator[str]:
        with translate_aws_errors("s3:ListObjectsV2"):
            for page in self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                for item in page.get("Contents", []):
                    yield str(item["Key"])


class SqsMessagePeek:
    """Reads every message of some queues without consuming them: each received message is held only
    while the rest are read (so none is seen twice), then made visible again, unchanged."""

    HOLD_SECONDS = 60

    def __init__(self, queue_urls: Sequence[str], client: Any) -> None:
        self._queue_urls = list(queue_urls)
        self._client = client

    def bodies(self) -> Iterator[str]:
        for url in self._queue_urls:
            handles: list[str] = []
            try:
                while True:
                    with translate_aws_errors("sqs:ReceiveMessage"):
                        batch = self._client.receive_message(
                            QueueUrl=url,
                            MaxNumberOfMessages=10,
                            VisibilityTimeout=self.HOLD_SECONDS,
                            WaitTimeSeconds=0,
                        ).get("Messages", [])
                    if not batch:
                        break
                    for message in batch:
                        handles.append(message["ReceiptHandle"])
                        yield str(message["Body"])
            finally:
                self._release(url, handles)

    def _release(self, url: str, handles: list[str]) -> None:
        for start in range(0, len(handles), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for n, h in enumerate(handles[start : start + 10])
            ]
            with translate_aws_errors("sqs:ChangeMessageVisibilityBatch"):
                self._client.change_message_visibility_batch(QueueUrl=url, Entries=entries)


class StepFunctionsExecutions:
    """Executions of one state machine by name: whether one exists (and how it ended), and starting one."""

    def __init__(self, state_machine_arn: str, client: Any) -> None:
        self.state_machine_arn = state_machine_arn
        self._client = client

    def execution_arn(self, name: str) -> str:
        return self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"

    def describe(self, name: str) -> dict[str, Any] | None:
        try:
            with translate_aws_errors("states:DescribeExecution"):
                return dict(self._client.describe_execution(executionArn=self.execution_arn(name)))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return None
            raise

    def status(self, name: str) -> str | None:
        described = self.describe(name)
        return None if described is None else str(described["status"])

    def start(self, name: str, input_document: str) -> str:
        return StepFunctionsStarter(self.state_machine_arn, self._client).start(name, input_document)[0]
