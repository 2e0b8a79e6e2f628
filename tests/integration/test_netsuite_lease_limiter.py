"""The per-account concurrency limiter on DynamoDB (moto): slots, lease expiry, contention, and the
NetSuite connector behind it against the stand-in."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from pssync.adapters.leases import DynamoDBLeaseLimiter
from pssync.connectors.limiter import LimitedConnector
from pssync.errors import TransientDownstreamError
from pssync.local.standins.netsuite import NetSuiteStandIn
from tests.integration.conftest import AwsWorld
from tests.integration.test_netsuite_standin_contract import PUBLIC_KEY, rig, time_entry

TABLE = "concurrency"
ACCOUNT = "netsuite#1234567_SB1"


def create_table(client: Any) -> None:
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_no_more_than_limit_slots_are_leased_and_a_released_one_is_taken_again(aws: AwsWorld) -> None:
    ddb = aws.clients["dynamodb"]
    create_table(ddb)
    limiter = DynamoDBLeaseLimiter(TABLE, ddb, limit=3, wait_seconds=0, sleep=lambda s: None)
    leases = [limiter.acquire(ACCOUNT) for _ in range(3)]
    assert sorted(lease.slot for lease in leases) == [0, 1, 2]
    with pytest.raises(TransientDownstreamError, match="all 3 concurrency slots"):
        limiter.acquire(ACCOUNT)
    assert limiter.holders(ACCOUNT) == 3
    limiter.release(leases[1])
    assert limiter.acquire(ACCOUNT).slot == leases[1].slot
    # Another account has its own slots.
    assert limiter.acquire("netsuite#7654321").slot in range(3)


def test_a_crashed_holders_slot_is_free_once_its_lease_expires_and_its_late_release_frees_nothing(
    aws: AwsWorld,
) -> None:
    ddb = aws.clients["dynamodb"]
    create_table(ddb)
    clock = Clock()
    limiter = DynamoDBLeaseLimiter(TABLE, ddb, limit=1, lease_seconds=60, wait_seconds=0, clock=clock)
    crashed = limiter.acquire(ACCOUNT)  # never released: the container died
    with pytest.raises(TransientDownstreamError):
        limiter.acquire(ACCOUNT)
    clock.now += 61
    successor = limiter.acquire(ACCOUNT)
    limiter.release(crashed)  # the old holder comes back late: the slot is no longer its to free
    assert limiter.holders(ACCOUNT) == 1
    limiter.release(successor)
    assert limiter.holders(ACCOUNT) == 0


def test_contending_threads_never_hold_more_than_the_limit(aws: AwsWorld) -> None:
    ddb = aws.clients["dynamodb"]
    create_table(ddb)
    limiter = DynamoDBLeaseLimiter(TABLE, ddb, limit=3, wait_seconds=60)
    in_slot, most, done = 0, 0, 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal in_slot, most, done
        for _ in range(4):
            with limiter.slot(ACCOUNT):
                with lock:
                    in_slot += 1
                    most = max(most, in_slot)
                time.sleep(0.01)  # hold the slot while others try
                with lock:
                    in_slot -= 1
                    done += 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)  # hang guard only
    assert done == 32 and most <= 3 and limiter.holders(ACCOUNT) == 0


def commands_per_second(
    ddb: Any, *, limit: int, workers: int, commands: int, service_seconds: float
) -> dict[str, Any]:
    """The NetSuite connector behind DynamoDB leases, `workers` concurrent senders, against a stand-in
    whose account allows `limit` requests in flight and takes `service_seconds` per request."""
    standin = NetSuiteStandIn(
        public_key_pem=PUBLIC_KEY, concurrency_limit=limit, service_time_seconds=service_seconds
    )
    standin.start()
    try:
        limiter = DynamoDBLeaseLimiter(TABLE, ddb, limit=limit, wait_seconds=120)
        connector = LimitedConnector(rig(standin, sleep=True).connector, limiter, ACCOUNT)
        pending = [time_entry(n) for n in range(commands)]
        lock = threading.Lock()
        errors: list[BaseException] = []

        def work() -> None:
            while True:
                with lock:
                    if not pending:
                        return
                    command = pending.pop()
                try:
                    connector.send(command, "t")
                except BaseException as error:  # collected for the caller
                    with lock:
                        errors.append(error)

        started = time.monotonic()
        threads = [threading.Thread(target=work) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)  # hang guard only
        elapsed = time.monotonic() - started
        counters = standin.holdings()["counters"]
        return {
            "limit": limit,
            "workers": workers,
            "commands": commands,
            "service_seconds_per_request": service_seconds,
            "seconds": round(elapsed, 2),
            "commands_per_second": round(commands / elapsed, 2),
            "requests_429": counters["throttled"],
            "max_in_flight": counters["max_in_flight"],
            "lease_writes_per_command": round(limiter.attempts / commands, 2),
            "lease_reads_per_command": round(limiter.reads / commands, 2),
            "errors": len(errors),
            "time_bills_held": len(standin.holdings()["records"].get("timeBill", {})),
        }
    finally:
        standin.stop()


def test_the_connector_behind_leases_never_exceeds_the_accounts_limit(aws: AwsWorld) -> None:
    create_table(aws.clients["dynamodb"])
    figures = commands_per_second(
        aws.clients["dynamodb"], limit=2, workers=6, commands=30, service_seconds=0.02
    )
    assert figures["errors"] == 0 and figures["time_bills_held"] == 30
    assert figures["requests_429"] == 0 and figures["max_in_flight"] <= 2


if __name__ == "__main__":  # python -m tests.integration.test_netsuite_lease_limiter [service seconds]
    import json
    import os
    import sys

    import boto3
    from moto import mock_aws

    from tests.integration.conftest import make_aws_calls_atomic

    os.environ.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1")
    service = float(sys.argv[1]) if len(sys.argv) > 1 else 0.2
    # Each DynamoDB call atomic, as on AWS (moto's backend is not thread-safe: two conditional puts racing
    # on one item could both succeed, which DynamoDB never allows).
    patch = pytest.MonkeyPatch()
    make_aws_calls_atomic(patch)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client)
        for workers in (5, 20):
            print(
                json.dumps(
                    commands_per_second(
                        client, limit=5, workers=workers, commands=200, service_seconds=service
                    )
                )
            )
