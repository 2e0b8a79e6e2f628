"""Handlers invoked in-process against moto (mock_aws): real boto3 calls, no network."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from pssync.local.lambda_host import FakeLambdaContext
from tests.conftest import WEBHOOK_SECRET

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
REGION = "us-east-1"


def load_handler(folder: str) -> Callable[[dict[str, Any], Any], Any]:
    spec = importlib.util.spec_from_file_location(f"it_{folder}_handler", FUNCTIONS / folder / "handler.py")
    assert spec and spec.loader
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler  # type: ignore[no-any-return]


def sqs_record(body: str, message_id: str) -> dict[str, Any]:
    """One record of an SQS event-source batch, as Lambda hands it to a handler."""
    return {
        "messageId": message_id,
        "receiptHandle": message_id,
        "body": body,
        "attributes": {  # what Lambda's SQS event source always sends
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1763633700000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1763633700001",
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:buffer",
        "awsRegion": "us-east-1",
    }


def context(name: str = "test-fn") -> FakeLambdaContext:
    return FakeLambdaContext(function_name=name, memory_limit_in_mb=256, timeout_seconds=30)


@dataclass
class AwsWorld:
    clients: dict[str, Any]
    capture_queue_url: str
    env: dict[str, str]

    def count_items(self, table: str) -> int:
        return int(self.clients["dynamodb"].scan(TableName=table, Select="COUNT")["Count"])

    def captured(self) -> list[dict[str, Any]]:
        messages = []
        while True:
            batch = self.clients["sqs"].receive_message(
                QueueUrl=self.capture_queue_url, MaxNumberOfMessages=10
            )
            if not batch.get("Messages"):
                return messages
            for m in batch["Messages"]:
                messages.append(json.loads(m["Body"]))
                self.clients["sqs"].delete_message(
                    QueueUrl=self.capture_queue_url, ReceiptHandle=m["ReceiptHandle"]
                )


def make_aws_calls_atomic(monkeypatch: pytest.MonkeyPatch) -> None:
    """One moto request at a time, as each AWS API call is atomic in AWS.

    moto's backends are not thread-safe: two concurrent PutObject calls to one key can close each other's
    buffers. Tests that run handlers on several threads still interleave between calls, which is where
    the races they look for live.
    """
    lock = threading.Lock()
    unlocked = BotocoreStubber.__call__

    def atomic(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        with lock:
            return unlocked(self, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", atomic)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsWorld]:
    make_aws_calls_atomic(monkeypatch)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        clients = {
            s: boto3.client(s, region_name=REGION)
            for s in ("dynamodb", "sqs", "events", "secretsmanager", "stepfunctions", "iam", "s3")
        }
        ddb = clients["dynamodb"]
        ddb.create_table(
            TableName="idempotency",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for table in ("business", "delivery-log"):
            ddb.create_table(
                TableName=table,
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        clients["s3"].create_bucket(Bucket="raw-payloads")
        clients["events"].create_event_bus(Name="pssync-test")
        queue_url = clients["sqs"].create_queue(QueueName="capture")["QueueUrl"]
        queue_arn = clients["sqs"].get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        clients["events"].put_rule(
            Name="all",
            EventBusName="pssync-test",
            EventPattern=json.dumps({"source": [{"prefix": "pssync"}]}),
        )
        clients["events"].put_targets(
            Rule="all", EventBusName="pssync-test", Targets=[{"Id": "q", "Arn": queue_arn}]
        )
        clients["secretsmanager"].create_secret(
            Name="pssync/test/webhooks/crm", SecretString=json.dumps({"current": WEBHOOK_SECRET})
        )
        env = {
            "EVENT_BUS_NAME": "pssync-test",
            "IDEMPOTENCY_TABLE_NAME": "idempotency",
            "BUSINESS_TABLE_NAME": "business",
            "DELIVERY_LOG_TABLE_NAME": "delivery-log",
            "SOURCE_REGISTRY": json.dumps(
                [
                    {
                        "name": "crm",
                        "scheme": "standard-webhooks",
                        "system": "salesforce",
                        "secret_id": "pssync/test/webhooks/crm",
                        "max_body_bytes": 65536,
                    }
                ]
            ),
            "POWERTOOLS_METRICS_NAMESPACE": "pssync",
            "RAW_PAYLOAD_BUCKET": "raw-payloads",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield AwsWorld(clients=clients, capture_queue_url=queue_url, env=env)
