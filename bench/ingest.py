"""In-process latency of the ingest_webhook handler against moto (no network, no Docker).

One process, one `moto.mock_aws()` context: the idempotency table (pk `id`, TTL `expiration`), an event bus
and the source's signing secret are created, the function's environment is set and the handler module is
imported once, as a warm Lambda container would hold it. Each round then times, back to back (interleaved
so that the noise of a shared machine hits all three alike):

  accepted   a new signed delivery (unique webhook-id, the sample contract.booked body);
  duplicate  the same delivery re-sent (same webhook-id, body and signature): answered from the
             idempotency record;
  floor      a bare DynamoDB put_item + EventBridge put_events on the handler's own clients: the cost of the
             I/O the handler cannot avoid, under moto (the baseline the ratios use);
  floor_matched  the calls the accepted path makes (PutObject for lineage, PutItem, PutEvents, UpdateItem),
             bare: accepted minus floor_matched is the handler's own CPU (verification, pydantic,
             Powertools) per request.

Every AWS API call made during the timed rounds is counted per path (botocore `before-call` hook), so a
latency can be read against the calls behind it. Latencies under moto are CPU-bound (moto parses and
answers requests in-process); they compare code paths here, not AWS latencies.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import importlib
import json
import os
import secrets
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAMPLE_BODY = REPO / "events/samples/webhooks/standard-webhooks/contract-booked.json"
FUNCTION_DIR = REPO / "functions/ingest_webhook"

REGION = "eu-west-1"
SOURCE = "crm"
SECRET_ID = f"pssync/bench/webhooks/{SOURCE}"
TABLE = "pssync-bench-idempotency"
BUS = "pssync-bench-bus"
RAW_BUCKET = "pssync-bench-raw-payloads"
FUNCTION_NAME = "pssync-bench-ingest-webhook"
PATHS = ("accepted", "duplicate", "floor", "floor_matched")


def function_environment() -> dict[str, str]:
    """The ingest function's environment as infra/constructs (functions.py, ingestion_api.py) sets it."""
    registry = [
        {
            "name": SOURCE,
            "scheme": "standard-webhooks",
            "system": "salesforce",
            "secret_id": SECRET_ID,
            "tolerance_seconds": 300,
            "max_body_bytes": 256 * 1024,
        }
    ]
    return {
        "POWERTOOLS_SERVICE_NAME": "pssync",
        "POWERTOOLS_METRICS_NAMESPACE": "pssync",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "PSSYNC_FUNCTION": "ingest_webhook",
        "EVENT_BUS_NAME": BUS,
        "IDEMPOTENCY_TABLE_NAME": TABLE,
        "RAW_PAYLOAD_BUCKET": RAW_BUCKET,
        "IDEMPOTENCY_EXPIRY_SECONDS": str(4 * 24 * 3600),
        "SOURCE_REGISTRY": json.dumps(registry, separators=(",", ":")),
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
    }


@dataclass
class LambdaContext:
    """What Powertools and the handler read from the Lambda context object."""

    aws_request_id: str
    function_name: str = FUNCTION_NAME
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:{FUNCTION_NAME}"
    log_group_name: str = f"/aws/lambda/{FUNCTION_NAME}"
    log_stream_name: str = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def api_gateway_event(body: str, headers: dict[str, str]) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event for POST /webhooks/{source}."""
    request_id = str(uuid.uuid4())
    return {
        "resource": "/webhooks/{source}",
        "path": f"/webhooks/{SOURCE}",
        "httpMethod": "POST",
        "headers": dict(headers),
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"source": SOURCE},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/webhooks/{source}",
            "httpMethod": "POST",
            "path": f"/bench/webhooks/{SOURCE}",
            "stage": "bench",
            "requestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": "203.0.113.10", "userAgent": "pssync-bench"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def summarise(samples_ns: list[int]) -> dict[str, float]:
    ms = sorted(s / 1e6 for s in samples_ns)
    # Nearest-rank p99: with 300 samples this is the 297th value, i.e. excludes only the 3 worst.
    p99 = ms[min(len(ms) - 1, max(0, round(0.99 * len(ms)) - 1))]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(p99, 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "min_ms": round(ms[0], 3),
    }


@contextlib.contextmanager
def _patched_environ(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _paired(values: list[int], baseline: list[int]) -> float:
    return round(statistics.median(v / b for v, b in zip(values, baseline, strict=True)), 2)


def _timed(call: Callable[[], Any]) -> tuple[int, Any]:
    start = time.perf_counter_ns()
    result = call()
    return time.perf_counter_ns() - start, result


def run(iterations: int = 300, warmup: int = 20) -> dict[str, Any]:
    from moto import mock_aws

    body = SAMPLE_BODY.read_text(encoding="utf-8")
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    env = function_environment()
    with _patched_environ(env), mock_aws(), open(os.devnull, "w") as devnull:
        import boto3

        session = boto3.session.Session(region_name=REGION)
        session.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        session.client("dynamodb").update_time_to_live(
            TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
        )
        session.client("events").create_event_bus(Name=BUS)
        session.client("s3").create_bucket(
            Bucket=RAW_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        session.client("secretsmanager").create_secret(
            Name=SECRET_ID, SecretString=json.dumps({"current": secret})
        )

        # The Logger binds its stream when first imported: bind it to the real stdout, or it would keep
        # the devnull below after it is closed (and a later section's local runtime would write there).
        import pssync.observability  # noqa: F401
        from pssync.local.webhook_client import standard_webhook_headers

        # Logger and Metrics write JSON lines to stdout (CloudWatch on Lambda): keep them, off the terminal.
        with contextlib.redirect_stdout(devnull):
            sys.path.insert(0, str(FUNCTION_DIR))
            try:
                handler_module = importlib.import_module("handler")
            finally:
                sys.path.remove(str(FUNCTION_DIR))
        handler = handler_module.handler
        from pssync.wiring import client

        def new_delivery() -> dict[str, Any]:
            headers = standard_webhook_headers(secret, body.encode("utf-8"))
            return api_gateway_event(body, headers)

        def invoke(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            context = LambdaContext(aws_request_id=str(uuid.uuid4()))
            with contextlib.redirect_stdout(devnull):
                return _timed(lambda: handler(event, context))

        def check(response: dict[str, Any], duplicate: bool) -> None:
            # Correctness, not timing: a benchmark of the rejection path would be meaningless.
            payload = json.loads(response["body"])
            if response["statusCode"] != 202 or payload["duplicate"] is not duplicate:
                raise RuntimeError(f"unexpected handler response: {response}")

        first_ns, response = invoke(new_delivery())  # creates the boto3 clients lazily
        check(response, duplicate=False)
        for _ in range(warmup):
            event = new_delivery()
            check(invoke(event)[1], duplicate=False)
            check(invoke(event)[1], duplicate=True)

        dynamodb, events = client("dynamodb"), client("events")
        detail = json.dumps(json.loads(body)["data"], separators=(",", ":"))

        def floor() -> None:
            dynamodb.put_item(
                TableName=TABLE,
                Item={"id": {"S": f"floor#{uuid.uuid4().hex}"}, "expiration": {"N": str(int(time.time()))}},
                ConditionExpression="attribute_not_exists(id)",
            )
            events.put_events(
                Entries=[
                    {"EventBusName": BUS, "Source": "pssync.bench", "DetailType": "Bench", "Detail": detail}
                ]
            )

        s3 = client("s3")
        raw_body = body.encode("utf-8")

        def floor_matched() -> None:
            """The accepted path's calls (see aws_calls_per_request; the signing secret is cached), bare."""
            s3.put_object(Bucket=RAW_BUCKET, Key=f"raw/bench/{uuid.uuid4().hex}", Body=raw_body)
            key = {"id": {"S": f"floor#{uuid.uuid4().hex}"}}
            dynamodb.put_item(
                TableName=TABLE,
                Item={**key, "expiration": {"N": str(int(time.time()))}, "status": {"S": "INPROGRESS"}},
                ConditionExpression="attribute_not_exists(id)",
            )
            events.put_events(
                Entries=[
                    {"EventBusName": BUS, "Source": "pssync.bench", "DetailType": "Bench", "Detail": detail}
                ]
            )
            dynamodb.update_item(
                TableName=TABLE,
                Key=key,
                UpdateExpression="SET #s = :s, #d = :d",
                ExpressionAttributeNames={"#s": "status", "#d": "data"},
                ExpressionAttributeValues={":s": {"S": "COMPLETED"}, ":d": {"S": json.dumps(key["id"]["S"])}},
            )

        for _ in range(warmup):
            floor()
            floor_matched()

        phase = ["none"]
        calls: dict[str, Counter[str]] = {name: Counter() for name in PATHS}

        def count_call(model: Any, **_: Any) -> None:
            if phase[0] in calls:
                calls[phase[0]][f"{model.service_model.service_name}:{model.name}"] += 1

        for service in ("dynamodb", "events", "secretsmanager", "s3"):
            client(service).meta.events.register("before-call.*.*", count_call)

        samples: dict[str, list[int]] = {name: [] for name in PATHS}
        gc.collect()
        for _ in range(iterations):
            event = new_delivery()
            phase[0] = "accepted"
            elapsed, response = invoke(event)
            samples["accepted"].append(elapsed)
            phase[0] = "duplicate"
            elapsed_dup, response_dup = invoke(event)
            samples["duplicate"].append(elapsed_dup)
            phase[0] = "floor"
            samples["floor"].append(_timed(floor)[0])
            phase[0] = "floor_matched"
            samples["floor_matched"].append(_timed(floor_matched)[0])
            phase[0] = "none"
            check(response, duplicate=False)
            check(response_dup, duplicate=True)

    stats = {name: summarise(values) for name, values in samples.items()}
    floor_p50 = stats["floor"]["p50_ms"]
    return {
        "method": "in-process moto.mock_aws; handler imported once; rounds interleave the four paths",
        "python": sys.version.split()[0],
        "iterations": iterations,
        "warmup": warmup,
        "body_bytes": len(body.encode("utf-8")),
        "accepted": stats["accepted"],
        "duplicate": stats["duplicate"],
        "floor": stats["floor"],
        "floor_matched": stats["floor_matched"],
        "accepted_to_floor_p50_ratio": round(stats["accepted"]["p50_ms"] / floor_p50, 2),
        "duplicate_to_floor_p50_ratio": round(stats["duplicate"]["p50_ms"] / floor_p50, 2),
        # Median of per-round ratios: drift on the shared machine hits both sides of a round alike.
        "accepted_to_floor_paired_ratio": _paired(samples["accepted"], samples["floor"]),
        "duplicate_to_floor_paired_ratio": _paired(samples["duplicate"], samples["floor"]),
        "accepted_minus_floor_p50_ms": round(stats["accepted"]["p50_ms"] - floor_p50, 3),
        "accepted_minus_floor_matched_p50_ms": round(
            stats["accepted"]["p50_ms"] - stats["floor_matched"]["p50_ms"], 3
        ),
        "aws_calls_per_request": {
            path: {op: round(count / iterations, 2) for op, count in sorted(counter.items())}
            for path, counter in calls.items()
        },
        "first_invocation_ms_single_sample": round(first_ns / 1e6, 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(iterations=int(sys.argv[1]) if len(sys.argv) > 1 else 300), indent=2))
