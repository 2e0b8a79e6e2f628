"""Two versions of one ERP record sent at once, on real threads, through DynamoDBDeliveryLog on moto.

Each round races v2 and v3 of a fresh record through a live CutoverConnector; a sender whose claim meets
the other's writer lease retries as the workflow would. Whatever the interleaving: v3 ends held and
delivered, v2 is either refused (and recorded as such) or written before v3, never after.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from pssync.adapters.aws import DynamoDBDeliveryLog
from pssync.connectors.cutover import LIVE, CutoverConnector, RefusedCommand
from pssync.errors import TransientDownstreamError
from pssync.model.commands import ConnectorCommand, Target
from pssync.ports import RecordedCommand
from tests.integration.conftest import AwsWorld

ROUNDS = 40
# A hang guard only (a deadlocked round fails instead of blocking the suite); never a timing assertion.
JOIN_GUARD_SECONDS = 120.0


@dataclass
class SlowLive:
    """A live target whose writes take a random moment, so the two versions' writes overlap."""

    rng: random.Random
    writes: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, command: ConnectorCommand, recorded_at: str) -> RecordedCommand:
        with self.lock:
            pause = self.rng.uniform(0, 0.004)
        threading.Event().wait(pause)  # the request in flight
        with self.lock:
            self.writes.append(command.idempotency_key)
        return RecordedCommand(command=command, first_time=True)

    def mismatches(self, command: ConnectorCommand) -> list[str]:
        return []


def schedule(contract_id: str, version: int) -> ConnectorCommand:
    return ConnectorCommand(
        target=Target.ERP,
        operation="upsert_billing_schedule",
        external_id=contract_id,
        idempotency_key=f"billing-schedule:{contract_id}:v{version}",
        payload={"contract_id": contract_id, "contract_version": version},
        caused_by_event_id=f"evt-{contract_id}-v{version}",
        correlation_id=f"corr-{contract_id}",
    )


def send_until_settled(erp: CutoverConnector, command: ConnectorCommand) -> RecordedCommand:
    """What the workflow's retries do: a record busy with the other version's write is tried again."""
    while True:
        try:
            return erp.send(command, "2026-11-30T10:00:00+00:00")
        except TransientDownstreamError as busy:
            assert busy.code == "record_being_written"


def race_once(erp: CutoverConnector, *commands: ConnectorCommand) -> dict[int, RecordedCommand]:
    """Send the commands on one thread each, released together; each one's settled result by version."""
    start = threading.Barrier(len(commands))
    results: dict[int, RecordedCommand] = {}
    failures: list[BaseException] = []

    def race(command: ConnectorCommand) -> None:
        try:
            start.wait()
            results[int(command.payload["contract_version"])] = send_until_settled(erp, command)
        except BaseException as error:  # surfaced below
            failures.append(error)

    threads = [threading.Thread(target=race, args=(command,)) for command in commands]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_GUARD_SECONDS)
    assert not any(t.is_alive() for t in threads), "a racing send hung"
    assert not failures, failures
    return results


def test_racing_versions_end_with_the_newest_held_and_never_written_out_of_order(aws: AwsWorld) -> None:
    log = DynamoDBDeliveryLog("delivery-log", aws.clients["dynamodb"])
    live = SlowLive(random.Random(20261130))
    erp = CutoverConnector(LIVE, log, live, claim_wait_seconds=0.05)
    outcomes = {"v2 refused": 0, "v2 written first": 0}

    for round_number in range(ROUNDS):
        contract_id = f"C-RACE-{round_number:03d}"
        older, newer = schedule(contract_id, 2), schedule(contract_id, 3)
        results = race_once(erp, older, newer)

        assert not isinstance(results[3], RefusedCommand) and results[3].first_time
        mark = aws.clients["dynamodb"].get_item(
            TableName="delivery-log",
            Key={"pk": {"S": f"erp#{contract_id}"}, "sk": {"S": "held#upsert_billing_schedule"}},
            ConsistentRead=True,
        )["Item"]
        assert mark["held"]["N"] == "3" and "writer" not in mark
        written = [key for key in live.writes if key.split(":")[1] == contract_id]
        logged = sorted(c.idempotency_key for c in log.commands_for(Target.ERP, contract_id))
        refusal = aws.clients["dynamodb"].get_item(
            TableName="delivery-log",
            Key={"pk": {"S": f"erp#{contract_id}"}, "sk": {"S": "refused#" + older.idempotency_key}},
            ConsistentRead=True,
        )
        if isinstance(results[2], RefusedCommand):
            assert (results[2].refused_version, results[2].held_version) == (2, 3)
            assert written == [newer.idempotency_key]
            assert logged == [newer.idempotency_key]
            assert refusal["Item"]["held_version"]["N"] == "3"
            outcomes["v2 refused"] += 1
        else:
            assert written == [older.idempotency_key, newer.idempotency_key]
            assert logged == sorted([older.idempotency_key, newer.idempotency_key])
            assert "Item" not in refusal
            outcomes["v2 written first"] += 1

    assert sum(outcomes.values()) == ROUNDS
    print(f"\n{ROUNDS} rounds: {outcomes}")
