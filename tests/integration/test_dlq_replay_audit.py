"""Selective, audited replay against moto queues and a moto audit table (the `aws` fixture)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from pssync.cli import app
from pssync.model import examples
from pssync.ops.audit import (
    ReplayAuditLog,
    RunStatus,
    audited_replay,
    caller_identity,
    find_audit_table,
)
from pssync.ops.dead_letters import DeadLetterOps, DeadLetterStore, MessageOutcome
from pssync.ops.selection import RateLimiter, ReplayFilter
from tests.integration.conftest import AwsWorld

AUDIT_TABLE = "pssync-test-TablesReplayAuditTable1A2B3C-XYZ"
PARKED_NOT_FOUND = {
    "pssync-error": "RecordNotFound",
    "pssync-reason": "record_not_found",
    "pssync-message": "deal 42 does not exist in the CRM (404)",
    "pssync-function": "resolve_closed_won",
    "pssync-receives": "5",
}
PARKED_AUTH = {**PARKED_NOT_FOUND, "pssync-error": "VendorAuthRefused", "pssync-reason": "auth_refused"}


@dataclass
class Dlq:
    aws: AwsWorld
    inbox: str
    dlq: str
    ops: DeadLetterOps
    audit: ReplayAuditLog

    @property
    def sqs(self) -> Any:
        return self.aws.clients["sqs"]

    def store(self) -> DeadLetterStore:
        return self.ops.store(self.dlq)

    def park(self, event_id: str, attributes: dict[str, str] | None = None, **update: Any) -> str:
        body = json.dumps(_bus_event(event_id, **update))
        kwargs: dict[str, Any] = {}
        if attributes:
            kwargs["MessageAttributes"] = {
                k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
            }
        return str(self.sqs.send_message(QueueUrl=self.dlq, MessageBody=body, **kwargs)["MessageId"])

    def drain(self, url: str) -> list[dict[str, Any]]:
        """Every message in a queue (received and left in flight): bodies, ids and attributes."""
        found: list[dict[str, Any]] = []
        while batch := self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60, MessageAttributeNames=["All"]
        ).get("Messages", []):
            found.extend(batch)
        return found

    def event_ids(self, url: str) -> list[str]:
        return sorted(json.loads(m["Body"])["detail"]["event_id"] for m in self.drain(url))


def _bus_event(event_id: str, **update: Any) -> dict[str, Any]:
    event = examples.contract_booked().model_copy(update={"event_id": event_id, **update})
    return {
        "version": "0",
        "detail-type": "ContractBooked",
        "source": "pssync.ingest",
        "detail": event.model_dump(mode="json"),
    }


@pytest.fixture
def world(aws: AwsWorld) -> Iterator[Dlq]:
    sqs = aws.clients["sqs"]
    dlq = sqs.create_queue(QueueName="pssync-test-ClosedWonInboxDlq", tags={"pssync:replay": "redrive"})[
        "QueueUrl"
    ]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    inbox = sqs.create_queue(
        QueueName="pssync-test-ClosedWonInbox",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})},
    )["QueueUrl"]
    aws.clients["dynamodb"].create_table(
        TableName=AUDIT_TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    yield Dlq(
        aws=aws,
        inbox=inbox,
        dlq=dlq,
        ops=DeadLetterOps(sqs, aws.clients["events"]),
        audit=ReplayAuditLog(AUDIT_TABLE, aws.clients["dynamodb"]),
    )


def _replay(world: Dlq, selection: ReplayFilter | None = None, **kwargs: Any) -> Any:
    import boto3

    caller = caller_identity(boto3.client("sts", region_name="us-east-1"))
    return audited_replay(world.ops, world.audit, caller, world.store(), selection=selection, **kwargs)


def test_a_filtered_replay_moves_only_the_matching_messages_and_leaves_the_rest_untouched(world: Dlq) -> None:
    world.park("evt-not-found-1", PARKED_NOT_FOUND)
    world.park("evt-not-found-2", PARKED_NOT_FOUND)
    kept_auth = world.park("evt-auth", PARKED_AUTH)
    kept_bare = world.park("evt-crashed")  # no cause recorded (a timeout): no cause filter takes it

    run, outcome = _replay(world, ReplayFilter(causes=frozenset({"RecordNotFound"})))

    assert outcome.replayed == 2 and outcome.left == 2 and outcome.errors == []
    assert world.event_ids(world.inbox) == ["evt-not-found-1", "evt-not-found-2"]
    # The others are visible again at once, with their bodies and cause attributes as they were.
    left = {m["MessageId"]: m for m in world.drain(world.dlq)}
    assert set(left) == {kept_auth, kept_bare}
    assert json.loads(left[kept_auth]["Body"]) == _bus_event("evt-auth")
    assert {k: v["StringValue"] for k, v in left[kept_auth]["MessageAttributes"].items()} == PARKED_AUTH
    assert "MessageAttributes" not in left[kept_bare]
    assert run.status is RunStatus.COMPLETED and run.left == 2


def test_filters_by_source_event_type_event_id_and_age(world: Dlq) -> None:
    world.park("evt-hubspot", source="hubspot")
    world.park("evt-crm-1")
    world.park("evt-crm-2")
    later = datetime.now(UTC) + timedelta(hours=3)  # every message is then three hours old

    by_source = ReplayFilter(sources=frozenset({"hubspot"}))
    assert _replay(world, by_source)[1].replayed == 1
    by_id = ReplayFilter(event_types=frozenset({"ContractBooked"}), event_ids=frozenset({"evt-crm-2"}))
    assert _replay(world, by_id)[1].replayed == 1
    too_young = ReplayFilter(older_than=timedelta(hours=4))
    assert _replay(world, too_young, now=lambda: later)[1].replayed == 0
    old_enough = ReplayFilter(older_than=timedelta(hours=2))
    assert _replay(world, old_enough, now=lambda: later)[1].replayed == 1

    assert world.event_ids(world.inbox) == ["evt-crm-1", "evt-crm-2", "evt-hubspot"]
    assert world.drain(world.dlq) == []


def test_a_run_takes_only_what_was_parked_before_it_started(world: Dlq) -> None:
    """A replayed message that fails again at once is parked anew during the run: taking it in the same
    run would loop. Seen from a run that started an hour ago, every parked message arrived after it."""
    world.park("evt-crm-1")
    world.park("evt-crm-2")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    outcome = _replay(world, ReplayFilter(), now=lambda: an_hour_ago)[1]
    assert (outcome.replayed, outcome.left) == (0, 2)
    assert world.event_ids(world.inbox) == []
    assert _replay(world, ReplayFilter())[1].replayed == 2  # a run started now takes both


def test_replaying_twice_changes_nothing_downstream_and_the_audit_log_lists_both(world: Dlq) -> None:
    ids = [world.park(f"evt-{n}", PARKED_NOT_FOUND) for n in range(3)]
    kept = world.park("evt-other", PARKED_AUTH)
    selection = ReplayFilter(causes=frozenset({"record_not_found"}))

    first, _ = _replay(world, selection)
    downstream = world.event_ids(world.inbox)
    second, outcome = _replay(world, selection)

    assert downstream == ["evt-0", "evt-1", "evt-2"]
    assert outcome.replayed == 0 and outcome.left == 1
    assert world.event_ids(world.inbox) == []  # nothing more arrived downstream
    assert [m["MessageId"] for m in world.drain(world.dlq)] == [kept]

    history = world.audit.history()
    assert [r.run_id for r in history] == [second.run_id, first.run_id]  # newest first
    recorded_first, recorded_second = history[1], history[0]
    for run in history:
        assert run.caller.arn.startswith("arn:aws:") and run.caller.account == "123456789012"
        assert run.store == "pssync-test-ClosedWonInboxDlq" and run.replay_kind == "redrive"
        assert run.filters == {"cause": ["record_not_found"]} and run.status is RunStatus.COMPLETED
        assert run.finished_at is not None and run.finished_at >= run.started_at
    assert sorted(m.message_id for m in recorded_first.messages) == sorted(ids)
    assert sorted(recorded_first.event_ids) == ["evt-0", "evt-1", "evt-2"]
    assert {m.outcome for m in recorded_first.messages} == {MessageOutcome.REPLAYED}
    assert recorded_first.left == 1
    assert recorded_second.messages == [] and recorded_second.left == 1
    assert world.audit.run(first.run_id).event_ids == recorded_first.event_ids


def test_a_replay_that_cannot_be_recorded_does_not_start(world: Dlq) -> None:
    world.park("evt-1")
    world.audit = ReplayAuditLog("no-such-table", world.aws.clients["dynamodb"])
    with pytest.raises(ClientError, match="ResourceNotFound"):
        _replay(world)
    assert world.event_ids(world.inbox) == [] and len(world.drain(world.dlq)) == 1


def test_limit_and_rate_are_honoured_and_recorded(world: Dlq) -> None:
    for n in range(5):
        world.park(f"evt-{n}")
    waits: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(2.0, lambda: now[0], sleep)

    run, outcome = _replay(world, limit=3, limiter=limiter)

    assert outcome.replayed == 3 and outcome.left == 2
    assert waits == [0.5, 0.5]  # 2 per second: the 2nd and 3rd sends wait 0.5 s each
    assert len(world.event_ids(world.inbox)) == 3 and len(world.drain(world.dlq)) == 2
    assert (run.limit, run.rate) == (3, 2.0)


def test_an_unreplayable_message_is_recorded_and_stays(world: Dlq) -> None:
    sqs = world.sqs
    orphan = sqs.create_queue(QueueName="pssync-test-OrphanDlq", tags={"pssync:replay": "redrive"})[
        "QueueUrl"
    ]
    sqs.send_message(QueueUrl=orphan, MessageBody=json.dumps(_bus_event("evt-orphan")))
    import boto3

    caller = caller_identity(boto3.client("sts", region_name="us-east-1"))
    run, outcome = audited_replay(world.ops, world.audit, caller, world.ops.store(orphan))

    assert outcome.skipped == 1 and [m.outcome for m in run.messages] == [MessageOutcome.SKIPPED]
    assert "no replay target" in run.messages[0].detail
    assert len(world.drain(orphan)) == 1


def test_the_audit_table_is_found_by_name_next_to_the_store(world: Dlq) -> None:
    ddb = world.aws.clients["dynamodb"]
    assert find_audit_table(ddb) == AUDIT_TABLE
    other = "pssync-prod-TablesReplayAuditTable9Z8Y-QRS"
    ddb.create_table(
        TableName=other,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert find_audit_table(ddb, near="pssync-prod-QueuesExceptionsQueue") == other
    assert find_audit_table(ddb, near="pssync-test-ClosedWonInboxDlq") == AUDIT_TABLE
    with pytest.raises(LookupError, match="--audit-table"):
        find_audit_table(ddb)


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "400"})


def test_the_cli_replays_selectively_and_dlq_history_prints_both_runs(world: Dlq) -> None:
    world.park("evt-wanted", PARKED_NOT_FOUND)
    world.park("evt-unwanted", PARKED_AUTH)

    dry = _cli("dlq", "replay", world.dlq, "--cause", "RecordNotFound", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would replay 1" in dry.output and "left 1" in dry.output
    assert world.audit.history() == []  # a dry run moves nothing and records nothing

    first = _cli("dlq", "replay", world.dlq, "--cause", "RecordNotFound", "--rate", "50")
    second = _cli("dlq", "replay", world.dlq, "--cause", "RecordNotFound")
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert "replayed 1, skipped 0, errors 0, left 1" in first.output
    assert "replayed 0, skipped 0, errors 0, left 1" in second.output
    assert "recorded as replay run" in first.output

    history = _cli("dlq", "history", "--limit", "5")
    assert history.exit_code == 0, history.output
    runs = world.audit.history()
    assert len(runs) == 2
    for run in runs:
        assert run.run_id in history.output
    assert history.output.count("pssync-test-ClosedWonInboxDlq") == 2
    assert runs[0].caller.arn in history.output and "evt-wanted" in history.output
    assert '{"cause":["RecordNotFound"]}' in history.output and "completed" in history.output

    detail = _cli("dlq", "history", "--run", runs[1].run_id)
    assert detail.exit_code == 0, detail.output
    assert "evt-wanted" in detail.output and "replayed" in detail.output

    bad = _cli("dlq", "replay", world.dlq, "--older-than", "soon")
    assert bad.exit_code != 0 and "not an age" in bad.output
