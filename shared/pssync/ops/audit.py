"""The replay audit log: who replayed what from which dead-letter store, when, with which filters, and
what came of each message. Kept in the stack's `ReplayAuditTable` (DynamoDB, point-in-time recovery,
retained outside dev), written by the operator's `pssync dlq replay` and listed by `pssync dlq history`.

A run is recorded before its first message moves (a replay that cannot be recorded does not start),
and completed at the end, even when it fails or is interrupted. Items:
- `pk = RUNS`, `sk = <started at>#<run id>`: the run (caller, store, filters, counts, status), newest last
  in sort order, so the history is one Query in reverse.
- `pk = RUN#<run id>`, `sk = MSG#<n>`: the run's messages, `CHUNK` at a time (an item is at most 400 KB).
Records are JSON text in one attribute: the CLI reads them back, nothing queries inside them.

I/O goes through the clients passed in (DynamoDB, STS); dry runs are not recorded (nothing moves).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pssync.ops.dead_letters import (
    DeadLetterOps,
    DeadLetterStore,
    MessageOutcome,
    ReplayedMessage,
    ReplayOutcome,
)
from pssync.ops.selection import RateLimiter, ReplayFilter

AUDIT_TABLE_FRAGMENT = "ReplayAuditTable"  # in the table's name, locally and as CloudFormation names it
AUDIT_TABLE_ENV = "PSSYNC_REPLAY_AUDIT_TABLE"
RUNS_PK = "RUNS"
CHUNK = 500


class RunStatus(StrEnum):
    RUNNING = "running"  # recorded at the start; stays so only if the process died mid-run
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


@dataclass(frozen=True)
class Caller:
    """The AWS identity that ran the replay, as STS GetCallerIdentity states it."""

    arn: str
    account: str
    user_id: str


def caller_identity(sts: Any) -> Caller:
    identity = sts.get_caller_identity()
    return Caller(arn=identity["Arn"], account=identity["Account"], user_id=identity["UserId"])


@dataclass
class ReplayRun:
    run_id: str
    started_at: str
    caller: Caller
    store: str
    store_url: str
    replay_kind: str
    target: str | None
    filters: dict[str, Any]
    limit: int | None
    rate: float | None
    status: RunStatus = RunStatus.RUNNING
    finished_at: str | None = None
    failure: str | None = None
    left: int = 0
    # How the messages moved: the receive / send / delete loop, an SQS move task, or an archive replay
    # (runs recorded before the field existed were all loops).
    method: str = "receive-loop"
    moved: int | None = None  # a move task's or an archive replay's own count, when it reports one
    messages: list[ReplayedMessage] = field(default_factory=list)

    def count(self, outcome: MessageOutcome) -> int:
        return sum(1 for m in self.messages if m.outcome is outcome)

    @property
    def event_ids(self) -> list[str]:
        return [m.event_id for m in self.messages if m.event_id]

    def header(self) -> dict[str, Any]:
        record = asdict(self)
        del record["messages"]
        record["counts"] = {outcome.value: self.count(outcome) for outcome in MessageOutcome}
        return record

    @classmethod
    def from_records(cls, header: dict[str, Any], messages: list[dict[str, Any]]) -> ReplayRun:
        header = {k: v for k, v in header.items() if k != "counts"}
        return cls(
            **{**header, "caller": Caller(**header["caller"]), "status": RunStatus(header["status"])},
            messages=[
                ReplayedMessage(m["message_id"], m["event_id"], MessageOutcome(m["outcome"]), m["detail"])
                for m in messages
            ],
        )


class ReplayAuditLog:
    def __init__(self, table_name: str, dynamodb: Any) -> None:
        self.table_name = table_name
        self._ddb = dynamodb

    def begin(self, run: ReplayRun) -> None:
        self._ddb.put_item(
            TableName=self.table_name,
            Item=self._header_item(run),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def finish(self, run: ReplayRun) -> None:
        entries = [asdict(m) for m in run.messages]
        for n, start in enumerate(range(0, len(entries), CHUNK)):
            self._ddb.put_item(
                TableName=self.table_name,
                Item={
                    "pk": {"S": f"RUN#{run.run_id}"},
                    "sk": {"S": f"MSG#{n:05d}"},
                    "messages": {"S": json.dumps(entries[start : start + CHUNK], separators=(",", ":"))},
                },
            )
        self._ddb.put_item(TableName=self.table_name, Item=self._header_item(run))

    def history(self, limit: int = 20) -> list[ReplayRun]:
        """The latest `limit` runs, newest first, each with its messages."""
        items = self._ddb.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": RUNS_PK}},
            ScanIndexForward=False,
            Limit=limit,
        ).get("Items", [])
        return [self._run(item) for item in items]

    def run(self, run_id: str) -> ReplayRun:
        for page in self._pages(RUNS_PK):
            for item in page:
                if item.get("run_id", {}).get("S") == run_id:
                    return self._run(item)
        raise KeyError(f"no replay run {run_id}")

    def _run(self, item: dict[str, Any]) -> ReplayRun:
        header = json.loads(item["record"]["S"])
        messages = [
            entry
            for page in self._pages(f"RUN#{header['run_id']}")
            for chunk in page
            for entry in json.loads(chunk["messages"]["S"])
        ]
        return ReplayRun.from_records(header, messages)

    def _pages(self, pk: str) -> Iterator[list[dict[str, Any]]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
        }
        while True:
            page = self._ddb.query(**kwargs)
            yield page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @staticmethod
    def _header_item(run: ReplayRun) -> dict[str, Any]:
        return {
            "pk": {"S": RUNS_PK},
            "sk": {"S": f"{run.started_at}#{run.run_id}"},
            "run_id": {"S": run.run_id},
            "status": {"S": run.status.value},
            "record": {"S": json.dumps(run.header(), separators=(",", ":"))},
        }


def _shared_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def find_audit_table(dynamodb: Any, near: str = "") -> str:
    """The one table whose name holds `ReplayAuditTable`; with several stacks in an account, the one
    sharing the longest name prefix with `near` (a dead-letter queue's name: CloudFormation starts both
    with the stack name). The CLI's `--audit-table` (or PSSYNC_REPLAY_AUDIT_TABLE) names it outright."""
    names = [
        name
        for page in dynamodb.get_paginator("list_tables").paginate()
        for name in page.get("TableNames", [])
        if AUDIT_TABLE_FRAGMENT in name
    ]
    if len(names) > 1 and near:
        best = max(_shared_prefix(name, near) for name in names)
        names = [name for name in names if _shared_prefix(name, near) == best]
    if len(names) == 1:
        return str(names[0])
    found = "none" if not names else ", ".join(sorted(names))
    raise LookupError(
        f"cannot tell which replay audit table to use (found: {found}); pass --audit-table or set "
        f"{AUDIT_TABLE_ENV}"
    )


def new_run(
    caller: Caller,
    store: DeadLetterStore,
    selection: ReplayFilter,
    limit: int | None,
    rate: float | None,
    started: datetime,
    *,
    method: str = "receive-loop",
) -> ReplayRun:
    """A run about to start on a dead-letter store (recorded by `ReplayAuditLog.begin`)."""
    return ReplayRun(
        run_id=str(uuid.uuid4()),
        started_at=started.isoformat(timespec="microseconds"),
        caller=caller,
        store=store.name,
        store_url=store.url,
        replay_kind=store.kind.value,
        target=store.target,
        filters=selection.describe(),
        limit=limit,
        rate=rate,
        method=method,
    )


@contextmanager
def recorded(audit: ReplayAuditLog, run: ReplayRun, now: Callable[[], datetime]) -> Iterator[ReplayRun]:
    """Record the run before anything moves (no record, no replay), and what came of it, whatever happens in
    between: the body sets the outcome; an interruption or an error is recorded as such and raised."""
    audit.begin(run)
    try:
        yield run
    except KeyboardInterrupt:
        run.status = RunStatus.INTERRUPTED
        raise
    except Exception as error:
        run.status, run.failure = RunStatus.FAILED, f"{type(error).__name__}: {error}"
        raise
    finally:
        run.finished_at = now().isoformat(timespec="microseconds")
        audit.finish(run)


def audited_replay(
    ops: DeadLetterOps,
    audit: ReplayAuditLog,
    caller: Caller,
    store: DeadLetterStore,
    *,
    selection: ReplayFilter | None = None,
    limit: int | None = None,
    limiter: RateLimiter | None = None,
    progress: Callable[[ReplayedMessage | None], None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[ReplayRun, ReplayOutcome]:
    """Record the run, replay, record what came of it, whatever happens in between."""
    selection = selection or ReplayFilter()
    run = new_run(caller, store, selection, limit, None if limiter is None else limiter.per_second, now())
    outcome = ReplayOutcome()
    with recorded(audit, run, now):
        try:
            ops.replay(
                store,
                selection=selection,
                limit=limit,
                limiter=limiter,
                progress=progress,
                now=now,
                into=outcome,
            )
            run.status = RunStatus.COMPLETED
        finally:
            run.messages, run.left = list(outcome.messages), outcome.left
    return run, outcome
