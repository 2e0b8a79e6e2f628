"""Redrive a dead-letter queue with SQS's own message move task where it applies; else the replay loop.

SQS `StartMessageMoveTask` moves every message of a DLQ back to a queue inside SQS: no message passes
through the operator's machine, it keeps each message's body and attributes, and it is the only
redrive that scales to millions of messages. It cannot select (it moves everything, oldest first) and
it only moves between queues, so it applies when all of these hold:
- the store is a `redrive` DLQ (not the bus DLQ, whose events go back onto the bus, nor the exceptions
  queue, whose records are rewritten as attempt N+1), with a known source queue;
- no filter, no limit, not a dry run (a dry run of a move task cannot say what it would take);
- the endpoint implements it: moto 5.2 does not (docs/toolchain.md), so the local runtime uses the loop.
Otherwise `DeadLetterOps.replay`'s receive / send / delete loop runs. Both are audited the same way
(`pssync dlq history`): a move task is one run whose single entry is the task and what it moved.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pssync.ops.audit import Caller, ReplayAuditLog, ReplayRun, RunStatus, audited_replay, new_run, recorded
from pssync.ops.dead_letters import (
    DeadLetterOps,
    DeadLetterStore,
    MessageOutcome,
    ReplayedMessage,
    ReplayOutcome,
)
from pssync.ops.replay import ReplayKind
from pssync.ops.selection import RateLimiter, ReplayFilter

# SQS's bounds for MaxNumberOfMessagesPerSecond (StartMessageMoveTask API reference).
MOVE_TASK_MAX_RATE = 500
MOVE_TASK_TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
# Error codes meaning "this endpoint has no such action" (an emulator, or an old region), not a refusal:
# only these fall back to the loop; an access denial or a running task is reported, never worked around.
_NOT_IMPLEMENTED_CODES = frozenset(
    {"InvalidAction", "UnsupportedOperation", "NotImplemented", "UnknownOperation"}
)


class RedriveMethod(StrEnum):
    MOVE_TASK = "move-task"
    RECEIVE_LOOP = "receive-loop"


class MethodRequest(StrEnum):
    AUTO = "auto"
    MOVE_TASK = "move-task"
    RECEIVE_LOOP = "receive-loop"


class MoveTaskNotApplicable(ValueError):
    """`--method move-task` was asked for a replay a move task cannot do."""


@dataclass(frozen=True)
class MethodChoice:
    method: RedriveMethod
    reason: str


def choose_method(
    store: DeadLetterStore,
    *,
    selection: ReplayFilter | None,
    limit: int | None,
    dry_run: bool,
    rate: float | None,
    move_task_available: bool,
    requested: MethodRequest = MethodRequest.AUTO,
) -> MethodChoice:
    """Move task when it does exactly what was asked (everything, back to the source queue), else the loop.

    Pure: `move_task_available` says whether the endpoint implements StartMessageMoveTask."""
    blockers = []
    if store.kind is not ReplayKind.REDRIVE:
        blockers.append(f"a {store.kind.value} store is not moved queue to queue")
    elif not store.target:
        blockers.append("the source queue is not known")
    if selection is not None and not selection.is_empty:
        blockers.append("a filter selects messages (a move task moves all)")
    if limit is not None:
        blockers.append("a limit is set (a move task moves all)")
    if dry_run:
        blockers.append("a dry run lists messages (a move task cannot)")
    if rate is not None and rate < 1:
        blockers.append("the rate is below SQS's minimum of 1 message per second for a move task")
    if not move_task_available:
        blockers.append("this endpoint does not implement StartMessageMoveTask (the local runtime)")
    if requested is MethodRequest.RECEIVE_LOOP:
        return MethodChoice(RedriveMethod.RECEIVE_LOOP, "asked for")
    if blockers:
        if requested is MethodRequest.MOVE_TASK:
            raise MoveTaskNotApplicable("a move task cannot do this replay: " + "; ".join(blockers))
        return MethodChoice(RedriveMethod.RECEIVE_LOOP, "; ".join(blockers))
    return MethodChoice(RedriveMethod.MOVE_TASK, "a redrive of everything to the source queue")


@dataclass(frozen=True)
class MoveTaskResult:
    task_handle: str
    status: str
    moved: int
    to_move: int | None
    failure: str | None = None


class MessageMover:
    """StartMessageMoveTask, then ListMessageMoveTasks until the task ends (or `wait` is False)."""

    def __init__(
        self,
        sqs: Any,
        *,
        sleep: Callable[[float], None] = time.sleep,
        poll_seconds: float = 2.0,
    ) -> None:
        self._sqs = sqs
        self._sleep = sleep
        self._poll_seconds = poll_seconds

    def queue_arn(self, url: str) -> str:
        attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        return str(attributes["QueueArn"])

    def move(
        self,
        store: DeadLetterStore,
        *,
        rate: float | None = None,
        wait: bool = True,
        on_progress: Callable[[int, int | None], None] | None = None,
    ) -> MoveTaskResult:
        if store.target is None:
            raise MoveTaskNotApplicable(f"{store.name}: the source queue is not known")
        source_arn = self.queue_arn(store.url)
        request: dict[str, Any] = {"SourceArn": source_arn, "DestinationArn": self.queue_arn(store.target)}
        if rate is not None:
            request["MaxNumberOfMessagesPerSecond"] = max(1, min(MOVE_TASK_MAX_RATE, int(rate)))
        handle = str(self._sqs.start_message_move_task(**request)["TaskHandle"])
        while True:
            task = self._task(source_arn, handle)
            status = str(task.get("Status", "RUNNING"))
            moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
            to_move = task.get("ApproximateNumberOfMessagesToMove")
            if on_progress:
                on_progress(moved, None if to_move is None else int(to_move))
            if status in MOVE_TASK_TERMINAL or not wait:
                return MoveTaskResult(
                    task_handle=handle,
                    status=status,
                    moved=moved,
                    to_move=None if to_move is None else int(to_move),
                    failure=task.get("FailureReason"),
                )
            self._sleep(self._poll_seconds)

    def _task(self, source_arn: str, handle: str) -> dict[str, Any]:
        """The task as SQS lists it: the most recent tasks of the source (at most 10 are kept)."""
        tasks = self._sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=10).get("Results", [])
        for task in tasks:
            if task.get("TaskHandle") == handle:
                return dict(task)
        # The newest task is ours while it runs; SQS lists no handle for a task that has ended.
        return dict(tasks[0]) if tasks else {"Status": "RUNNING"}


def is_not_implemented(error: Exception) -> bool:
    """A botocore ClientError (duck-typed: this layer imports no SDK) saying the action does not exist."""
    response = getattr(error, "response", None)
    code = (response or {}).get("Error", {}).get("Code", "") if isinstance(response, dict) else ""
    return code in _NOT_IMPLEMENTED_CODES or "not been implemented" in str(error)


def audited_move(
    mover: MessageMover,
    audit: ReplayAuditLog,
    caller: Caller,
    store: DeadLetterStore,
    *,
    rate: float | None = None,
    wait: bool = True,
    on_progress: Callable[[int, int | None], None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[ReplayRun, MoveTaskResult | None]:
    """Record the run, start the move task, record its handle and what it moved, whatever happens."""
    run = new_run(caller, store, ReplayFilter(), None, rate, now(), method=RedriveMethod.MOVE_TASK.value)
    result: MoveTaskResult | None = None
    with recorded(audit, run, now):
        result = mover.move(store, rate=rate, wait=wait, on_progress=on_progress)
        run.status = RunStatus.FAILED if result.status in ("FAILED", "CANCELLED") else RunStatus.COMPLETED
        run.failure = result.failure if result.status != "COMPLETED" and result.failure else None
        run.moved = result.moved
        detail = f"{result.status}: moved {result.moved}" + (
            f" of {result.to_move}" if result.to_move is not None else ""
        )
        run.messages = [
            ReplayedMessage(
                result.task_handle,
                None,
                MessageOutcome.ERROR if result.status in ("FAILED", "CANCELLED") else MessageOutcome.REPLAYED,
                detail + (f" ({result.failure})" if result.failure else ""),
            )
        ]
    return run, result


@dataclass
class RedriveOutcome:
    """What a redrive did: the loop's per-message outcome, or the move task's result."""

    choice: MethodChoice
    run: ReplayRun | None
    loop: ReplayOutcome | None = None
    move: MoveTaskResult | None = None


def audited_redrive(
    ops: DeadLetterOps,
    mover: MessageMover,
    audit: ReplayAuditLog,
    caller: Caller,
    store: DeadLetterStore,
    *,
    move_task_available: bool,
    requested: MethodRequest = MethodRequest.AUTO,
    selection: ReplayFilter | None = None,
    limit: int | None = None,
    limiter: RateLimiter | None = None,
    progress: Callable[[ReplayedMessage | None], None] | None = None,
    move_progress: Callable[[int, int | None], None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RedriveOutcome:
    """`pssync dlq replay` without --dry-run: the chosen method, audited. A move task the endpoint turns
    out not to implement (in auto mode) is recorded as a failed run, then the loop runs."""
    rate = None if limiter is None else limiter.per_second
    choice = choose_method(
        store,
        selection=selection,
        limit=limit,
        dry_run=False,
        rate=rate,
        move_task_available=move_task_available,
        requested=requested,
    )
    if choice.method is RedriveMethod.MOVE_TASK:
        try:
            run, result = audited_move(
                mover, audit, caller, store, rate=rate, on_progress=move_progress, now=now
            )
            return RedriveOutcome(choice, run, move=result)
        except Exception as error:
            if requested is MethodRequest.MOVE_TASK or not is_not_implemented(error):
                raise
            choice = MethodChoice(
                RedriveMethod.RECEIVE_LOOP, f"StartMessageMoveTask not implemented: {error}"
            )
    run, outcome = audited_replay(
        ops,
        audit,
        caller,
        store,
        selection=selection,
        limit=limit,
        limiter=limiter,
        progress=progress,
        now=now,
    )
    return RedriveOutcome(choice, run, loop=outcome)
