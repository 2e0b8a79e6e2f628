"""The local moto server's speed patches keep moto's answers: keep-alive, SQS counts, parse caches.

In-process, against a `MotoServer` of our own (its resources have unique names: moto's backends are
process-global and an e2e runtime may share them in the same session).
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from pssync.local.execution_ends import ExecutionEnds
from pssync.local.moto_dynamodb import install as install_moto_dynamodb
from pssync.local.moto_server import MotoServer

HANG_GUARD_S = 60  # a loop that waits for something asynchronous gives up after this (never a measurement)


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    install_moto_dynamodb()
    moto = MotoServer()
    moto.start()
    yield moto
    moto.stop()


def _client(server: MotoServer, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name="eu-west-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}),
    )


def _connections_opened(client: Any, server: MotoServer) -> int:
    """How many connections the client's pool to the server has opened so far (urllib3 counts them)."""
    pool = client._endpoint.http_session._manager.connection_from_url(server.url)
    return int(pool.num_connections)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _table(ddb: Any, prefix: str) -> str:
    """A fresh on-demand table keyed by the string `pk`; its name."""
    table = _name(prefix)
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return table


def test_speed_many_calls_share_one_kept_alive_connection(server: MotoServer) -> None:
    ddb = _client(server, "dynamodb")
    table = _table(ddb, "speed-keepalive")
    for i in range(20):
        ddb.put_item(TableName=table, Item={"pk": {"S": str(i)}, "n": {"N": str(i)}})
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):  # an error answer keeps it too
        ddb.put_item(TableName=table, Item={"pk": {"S": "1"}}, ConditionExpression="attribute_not_exists(pk)")
    items = [ddb.get_item(TableName=table, Key={"pk": {"S": str(i)}})["Item"] for i in range(20)]

    assert [int(item["n"]["N"]) for item in items] == list(range(20))
    assert _connections_opened(ddb, server) == 1


def test_speed_s3_bodies_and_head_answers_over_one_connection(server: MotoServer) -> None:
    s3 = _client(server, "s3")
    bucket = _name("speed-bodies")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    payloads = {f"k{i}": bytes(range(256)) * (i + 1) for i in range(5)}
    for key, payload in payloads.items():
        s3.put_object(Bucket=bucket, Key=key, Body=payload)

    heads = {key: s3.head_object(Bucket=bucket, Key=key)["ContentLength"] for key in payloads}
    bodies = {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in payloads}

    assert heads == {key: len(payload) for key, payload in payloads.items()}  # HEAD keeps moto's length
    assert bodies == payloads
    assert _connections_opened(s3, server) == 1


def test_speed_a_chunked_request_body_is_read_whole_and_the_connection_kept(server: MotoServer) -> None:
    sqs = _client(server, "sqs")
    queue_url = sqs.create_queue(QueueName=_name("speed-chunked"))["QueueUrl"]
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=HANG_GUARD_S)
    answers = []
    for i in range(3):
        body = json.dumps({"QueueUrl": queue_url, "MessageBody": f"message {i}"}).encode()
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "AmazonSQS.SendMessage",
            "Authorization": "AWS4-HMAC-SHA256 Credential=local/20261130/eu-west-1/sqs/aws4_request",
        }
        # Chunked on odd requests: the body must be consumed, or its tail would be read as the next request.
        chunks = iter([body[:10], body[10:]]) if i % 2 else body
        connection.request("POST", "/", body=chunks, headers=headers, encode_chunked=bool(i % 2))
        response = connection.getresponse()
        answers.append((response.status, json.loads(response.read())))
    connection.close()

    assert [status for status, _ in answers] == [200, 200, 200]
    assert all("MessageId" in document for _, document in answers)
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in received) == ["message 0", "message 1", "message 2"]


def test_speed_queue_counts_are_moto_s(server: MotoServer) -> None:
    sqs = _client(server, "sqs")
    queue_url = sqs.create_queue(QueueName=_name("speed-counts"), Attributes={"VisibilityTimeout": "300"})[
        "QueueUrl"
    ]
    for i in range(5):
        sqs.send_message(QueueUrl=queue_url, MessageBody=f"m{i}")
    sqs.send_message(QueueUrl=queue_url, MessageBody="later", DelaySeconds=900)
    sqs.send_message_batch(
        QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": f"b{i}"} for i in range(3)]
    )
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=2)["Messages"]

    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    asked = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)
    every = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]

    assert len(received) == 2
    expected = {
        "ApproximateNumberOfMessages": "6",  # 9 sent, 1 delayed, 2 received
        "ApproximateNumberOfMessagesNotVisible": "2",
        "ApproximateNumberOfMessagesDelayed": "1",
    }
    assert asked["Attributes"] == expected
    assert {name: every[name] for name in expected} == expected
    assert every["VisibilityTimeout"] == "300"


def test_speed_fifo_content_based_deduplication_still_applies(server: MotoServer) -> None:
    sqs = _client(server, "sqs")
    queue_url = sqs.create_queue(
        QueueName=_name("speed-dedupe") + ".fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    for _ in range(3):
        sqs.send_message(QueueUrl=queue_url, MessageBody="the same body", MessageGroupId="g")
    sqs.send_message(QueueUrl=queue_url, MessageBody="another body", MessageGroupId="g")

    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]

    assert attributes["ApproximateNumberOfMessages"] == "2"
    assert attributes["ContentBasedDeduplication"] == "true"


def test_speed_cached_expression_parses_apply_each_call_s_names_and_values(server: MotoServer) -> None:
    ddb = _client(server, "dynamodb")
    table = _table(ddb, "speed-expressions")
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "status": {"S": "INPROGRESS"}})
    condition = "attribute_exists(pk) AND #s = :expected"
    update = "SET #s = :new, #n = :n"
    names = {"#s": "status", "#n": "note"}

    def advance(expected: str, new: str) -> bool:
        try:
            ddb.update_item(
                TableName=table,
                Key={"pk": {"S": "a"}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    ":expected": {"S": expected},
                    ":new": {"S": new},
                    ":n": {"S": new},
                },
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    outcomes = [
        advance("INPROGRESS", "COMPLETED"),
        advance("INPROGRESS", "AGAIN"),  # the stale expectation fails: the new value was written
        advance("COMPLETED", "DONE"),
    ]
    item = ddb.get_item(TableName=table, Key={"pk": {"S": "a"}})["Item"]

    assert outcomes == [True, False, True]
    assert item["status"] == {"S": "DONE"} and item["note"] == {"S": "DONE"}
    # Not lexable (moto answers it with an error, as it did before the cache): refused every time.
    invalid = "attribute_exists(pk) AND $status"
    codes = []
    for _ in range(2):
        with pytest.raises(ddb.exceptions.ClientError) as refused:
            ddb.put_item(TableName=table, Item={"pk": {"S": "b"}}, ConditionExpression=invalid)
        codes.append(refused.value.response["Error"]["Code"])
    assert codes[0] == codes[1]
    assert "Item" not in ddb.get_item(TableName=table, Key={"pk": {"S": "b"}})


def test_speed_stop_ends_idle_kept_alive_connections() -> None:
    moto = MotoServer()
    moto.start()
    connection = http.client.HTTPConnection("127.0.0.1", moto.port, timeout=HANG_GUARD_S)
    connection.request("GET", "/moto-api/")
    connection.getresponse().read()
    moto.stop()

    # The server ended the idle connection: the next read sees its end (EOF), not a hang.
    assert connection.sock is not None
    assert connection.sock.recv(1) == b""
    connection.close()


def test_speed_execution_ends_wake_a_waiter() -> None:
    ends = ExecutionEnds()
    arn = "arn:aws:states:eu-west-1:123456789012:execution:Machine:one"
    woken: list[bool] = []
    waiter = threading.Thread(target=lambda: woken.append(ends.wait(arn, timeout=HANG_GUARD_S)))
    waiter.start()
    ends.record("arn:aws:states:eu-west-1:123456789012:execution:Machine:other")
    ends.record(arn)
    waiter.join(timeout=HANG_GUARD_S)

    assert woken == [True]
    assert ends.has_ended(arn)
    assert ends.wait("arn:aws:states:eu-west-1:123456789012:execution:Machine:never", timeout=0) is False
