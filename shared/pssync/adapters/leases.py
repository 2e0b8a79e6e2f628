"""A counted semaphore in DynamoDB: a vendor account's concurrency slots, leased by Lambda containers.

One item per slot (`pk = LIMIT#<key>`, `sk = SLOT#<n>`, n < limit). Taking a slot is one conditional
PutItem that succeeds only when the slot is free or its lease has expired; giving it back is a DeleteItem
conditional on still owning it. A container that crashes or times out while holding a slot loses it when
the lease runs out (`lease_seconds`, longer than the holder's function timeout), so no slot is held for
ever.
Slots are tried from a random one on, so contenders spread out instead of all fighting over slot 0; when
all are busy the taker waits with jitter up to `wait_seconds`, then gives up with a transient error (the
workflow step retries later, its queue keeps the work).

Chosen over SQS FIFO message groups (docs/decisions.md, 2026-11-30): a FIFO group serialises one group
(concurrency 1, or one group per slot with the work split by hand), and the limit is on requests in
flight, which a lease counts directly whichever workflow the command comes from.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from pssync.adapters.aws import translate_aws_errors
from pssync.errors import TransientDownstreamError


@dataclass(frozen=True)
class Lease:
    key: str
    slot: int
    owner: str


def _is_condition_failure(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class DynamoDBLeaseLimiter:
    """`with limiter.slot("netsuite#1234567"):` holds one of `limit` slots for the block."""

    def __init__(
        self,
        table_name: str,
        client: Any,
        *,
        limit: int,
        lease_seconds: float = 60.0,
        wait_seconds: float = 10.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if limit < 1:
            raise ValueError("a concurrency limit is at least 1")
        self._table = table_name
        self._client = client
        self.limit = limit
        self._lease_seconds = lease_seconds
        self._wait_seconds = wait_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._rng = rng
        self.attempts = 0  # conditional writes made to take slots (taken or not): the limiter's cost
        self.reads = 0  # slot reads when contended

    @contextmanager
    def slot(self, key: str) -> Iterator[None]:
        lease = self.acquire(key)
        try:
            yield
        finally:
            self.release(lease)

    def acquire(self, key: str) -> Lease:
        give_up_at = self._monotonic() + self._wait_seconds
        owner = uuid.uuid4().hex
        # Uncontended, one write: a random slot is most likely free.
        first = int(self._rng() * self.limit) % self.limit
        if self._take(key, first, owner):
            return Lease(key, first, owner)
        round_number = 0
        while True:
            # Contended: read which slots are free (one consistent Query) and write only to those; writing
            # to every slot each round cost ~49 conditional writes per command at 20 takers for 5 slots.
            free = [n for n in range(self.limit) if n not in self._busy_slots(key)]
            start = int(self._rng() * len(free)) if free else 0
            for slot in free[start:] + free[:start]:
                if self._take(key, slot, owner):
                    return Lease(key, slot, owner)
            if self._monotonic() >= give_up_at:
                raise TransientDownstreamError(
                    f"all {self.limit} concurrency slots of {key} stayed busy for {self._wait_seconds:.0f} s"
                )
            round_number += 1
            # Full jitter, capped low: a slot frees up within one vendor call, typically well under 1 s.
            self._sleep(self._rng() * min(0.5, 0.02 * 2**round_number))

    def release(self, lease: Lease) -> None:
        try:
            with translate_aws_errors("dynamodb:DeleteItem"):
                self._client.delete_item(
                    TableName=self._table,
                    Key=self._key(lease.key, lease.slot),
                    ConditionExpression="#owner = :owner",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues={":owner": {"S": lease.owner}},
                )
        except ClientError as error:
            if not _is_condition_failure(error):
                raise
            # Our lease ran out and someone else holds the slot now: theirs to give back, not ours.

    def holders(self, key: str) -> int:
        """Slots of `key` under an unexpired lease now (for reports and tests)."""
        return len(self._busy_slots(key))

    def _busy_slots(self, key: str) -> set[int]:
        now = self._clock()
        self.reads += 1
        with translate_aws_errors("dynamodb:Query"):
            items = self._client.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"LIMIT#{key}"}},
                ConsistentRead=True,
            )["Items"]
        return {
            int(item["sk"]["S"].removeprefix("SLOT#"))
            for item in items
            if float(item["expires_at"]["N"]) > now
        }

    def _take(self, key: str, slot: int, owner: str) -> bool:
        now = self._clock()
        self.attempts += 1
        try:
            with translate_aws_errors("dynamodb:PutItem"):
                self._client.put_item(
                    TableName=self._table,
                    Item={
                        **self._key(key, slot),
                        "owner": {"S": owner},
                        "expires_at": {"N": f"{now + self._lease_seconds:.3f}"},
                    },
                    ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                    ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}},
                )
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True

    @staticmethod
    def _key(key: str, slot: int) -> dict[str, Any]:
        return {"pk": {"S": f"LIMIT#{key}"}, "sk": {"S": f"SLOT#{slot}"}}
