"""Move task or receive loop: the choice, the move task against a fake SQS, and its audit record."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pssync.ops.audit import Caller, ReplayRun, RunStatus
from pssync.ops.dead_letters import DeadLetterStore, MessageOutcome
from pssync.ops.message_move import (
    MessageMover,
    MethodRequest,
    MoveTaskNotApplicable,
    RedriveMethod,
    audited_redrive,
    choose_method,
)
from pssync.ops.replay import ReplayKind
from pssync.ops.selection import RateLimiter, ReplayFilter

ACCOUNT = "123456789012"
INBOX = f"https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/pssync-dev-Inbox"
INBOX_DLQ = f"https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/pssync-dev-InboxDlq"
CALLER = Caller(arn=f"arn:aws:iam::{ACCOUNT}:user/ops", account=ACCOUNT, user_id="AIDA")


def _store(kind: ReplayKind = ReplayKind.REDRIVE, target: str | None = INBOX) -> DeadLetterStore:
    return DeadLetterStore(
        name=INBOX_DLQ.rsplit("/", 1)[-1], url=INBOX_DLQ, kind=kind, target=target, depth=7
    )


def _choose(store: DeadLetterStore | None = None, **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "selection": None,
        "limit": None,
        "dry_run": False,
        "rate": None,
        "move_task_available": True,
    }
    arguments.update(overrides)
    return choose_method(store or _store(), **arguments)


def test_a_redrive_of_everything_on_aws_is_a_move_task() -> None:
    assert _choose().method is RedriveMethod.MOVE_TASK
    assert _choose(rate=5.0, selection=ReplayFilter()).method is RedriveMethod.MOVE_TASK


@pytest.mark.parametrize(
    ("store", "overrides", "because"),
    [
        (_store(ReplayKind.BUS, "pssync-dev"), {}, "bus store"),
        (_store(ReplayKind.WORKFLOW_EXCEPTIONS, None), {}, "workflow-exceptions store"),
        (_store(target=None), {}, "source queue is not known"),
        (_store(), {"selection": ReplayFilter(causes=frozenset({"Timeout"}))}, "a filter"),
        (_store(), {"limit": 10}, "a limit"),
        (_store(), {"dry_run": True}, "a dry run"),
        (_store(), {"rate": 0.5}, "below SQS's minimum"),
        (_store(), {"move_task_available": False}, "local runtime"),
    ],
)
def test_anything_a_move_task_cannot_do_takes_the_loop_and_says_why(
    store: DeadLetterStore, overrides: dict[str, Any], because: str
) -> None:
    choice = _choose(store, **overrides)
    assert choice.method is RedriveMethod.RECEIVE_LOOP
    assert because in choice.reason
    with pytest.raises(MoveTaskNotApplicable, match=because):
        _choose(store, requested=MethodRequest.MOVE_TASK, **overrides)


def test_the_loop_can_be_asked_for_even_when_a_move_task_applies() -> None:
    choice = _choose(requested=MethodRequest.RECEIVE_LOOP)
    assert (choice.method, choice.reason) == (RedriveMethod.RECEIVE_LOOP, "asked for")


class FakeSqs:
    """The SQS calls a move task makes: a task that reports progress twice, then its end."""

    def __init__(self, *, statuses: list[dict[str, Any]], implemented: bool = True) -> None:
        self.statuses = statuses
        self.implemented = implemented
        self.started: list[dict[str, Any]] = []

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        name = QueueUrl.rsplit("/", 1)[-1]
        return {"Attributes": {"QueueArn": f"arn:aws:sqs:eu-west-1:{ACCOUNT}:{name}"}}

    def start_message_move_task(self, **request: Any) -> dict[str, Any]:
        if not self.implemented:
            raise NotImplementedFault()
        self.started.append(request)
        return {"TaskHandle": "task-1"}

    def list_message_move_tasks(self, SourceArn: str, MaxResults: int) -> dict[str, Any]:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"Results": [{"TaskHandle": "task-1", "SourceArn": SourceArn, **status}]}


class NotImplementedFault(Exception):
    """What botocore raises for moto's unimplemented action (a ClientError with this response)."""

    response = {"Error": {"Code": "InvalidAction", "Message": "start_message_move_task"}}


class FakeAudit:
    def __init__(self) -> None:
        self.begun: list[str] = []
        self.finished: list[ReplayRun] = []

    def begin(self, run: ReplayRun) -> None:
        self.begun.append(run.run_id)

    def finish(self, run: ReplayRun) -> None:
        self.finished.append(run)


class LoopOps:
    """DeadLetterOps' replay, counting the calls: the loop's own behaviour is tested elsewhere."""

    def __init__(self) -> None:
        self.calls = 0

    def replay(self, store: DeadLetterStore, **kwargs: Any) -> Any:
        self.calls += 1
        return kwargs["into"]


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at


def test_a_move_task_moves_everything_to_the_source_queue_and_is_audited() -> None:
    sqs = FakeSqs(
        statuses=[
            {
                "Status": "RUNNING",
                "ApproximateNumberOfMessagesMoved": 3,
                "ApproximateNumberOfMessagesToMove": 7,
            },
            {
                "Status": "COMPLETED",
                "ApproximateNumberOfMessagesMoved": 7,
                "ApproximateNumberOfMessagesToMove": 7,
            },
        ]
    )
    sleeps: list[float] = []
    seen: list[tuple[int, int | None]] = []
    audit, ops = FakeAudit(), LoopOps()
    outcome = audited_redrive(
        ops,  # type: ignore[arg-type]
        MessageMover(sqs, sleep=sleeps.append, poll_seconds=2),
        audit,  # type: ignore[arg-type]
        CALLER,
        _store(),
        move_task_available=True,
        limiter=RateLimiter(20, clock=lambda: 0.0, sleep=lambda _: None),
        move_progress=lambda moved, total: seen.append((moved, total)),
        now=Clock(),
    )
    assert ops.calls == 0
    assert sqs.started == [
        {
            "SourceArn": f"arn:aws:sqs:eu-west-1:{ACCOUNT}:pssync-dev-InboxDlq",
            "DestinationArn": f"arn:aws:sqs:eu-west-1:{ACCOUNT}:pssync-dev-Inbox",
            "MaxNumberOfMessagesPerSecond": 20,
        }
    ]
    assert seen == [(3, 7), (7, 7)] and sleeps == [2]
    assert outcome.move is not None and (outcome.move.status, outcome.move.moved) == ("COMPLETED", 7)
    (run,) = audit.finished
    assert audit.begun == [run.run_id]
    assert (run.method, run.moved, run.status, run.rate) == ("move-task", 7, RunStatus.COMPLETED, 20)
    assert [(m.message_id, m.outcome, m.detail) for m in run.messages] == [
        ("task-1", MessageOutcome.REPLAYED, "COMPLETED: moved 7 of 7")
    ]
    assert json.loads(json.dumps(run.header()))["method"] == "move-task"


def test_a_failed_move_task_is_a_failed_run_with_sqs_reason() -> None:
    sqs = FakeSqs(
        statuses=[
            {
                "Status": "FAILED",
                "ApproximateNumberOfMessagesMoved": 2,
                "FailureReason": "AWS.SimpleQueueService.NonExistentQueue",
            }
        ]
    )
    audit = FakeAudit()
    outcome = audited_redrive(
        LoopOps(),  # type: ignore[arg-type]
        MessageMover(sqs, sleep=lambda _: None),
        audit,  # type: ignore[arg-type]
        CALLER,
        _store(),
        move_task_available=True,
    )
    (run,) = audit.finished
    assert run.status is RunStatus.FAILED and run.failure == "AWS.SimpleQueueService.NonExistentQueue"
    assert run.messages[0].outcome is MessageOutcome.ERROR
    assert outcome.move is not None and outcome.move.moved == 2


def test_an_endpoint_without_move_tasks_falls_back_to_the_loop_with_both_runs_audited() -> None:
    audit, ops = FakeAudit(), LoopOps()
    outcome = audited_redrive(
        ops,  # type: ignore[arg-type]
        MessageMover(FakeSqs(statuses=[{}], implemented=False), sleep=lambda _: None),
        audit,  # type: ignore[arg-type]
        CALLER,
        _store(),
        move_task_available=True,
    )
    assert ops.calls == 1 and outcome.choice.method is RedriveMethod.RECEIVE_LOOP
    assert "not implemented" in outcome.choice.reason
    assert [(r.method, r.status) for r in audit.finished] == [
        ("move-task", RunStatus.FAILED),
        ("receive-loop", RunStatus.COMPLETED),
    ]


def test_asking_for_a_move_task_on_an_endpoint_without_it_fails_loudly() -> None:
    with pytest.raises(NotImplementedFault):
        audited_redrive(
            LoopOps(),  # type: ignore[arg-type]
            MessageMover(FakeSqs(statuses=[{}], implemented=False), sleep=lambda _: None),
            FakeAudit(),  # type: ignore[arg-type]
            CALLER,
            _store(),
            move_task_available=True,
            requested=MethodRequest.MOVE_TASK,
        )


def test_a_filtered_replay_takes_the_loop_without_touching_move_tasks() -> None:
    sqs = FakeSqs(statuses=[{}])
    ops = LoopOps()
    outcome = audited_redrive(
        ops,  # type: ignore[arg-type]
        MessageMover(sqs, sleep=lambda _: None),
        FakeAudit(),  # type: ignore[arg-type]
        CALLER,
        _store(),
        move_task_available=True,
        selection=ReplayFilter(event_types=frozenset({"ContractBooked"})),
    )
    assert sqs.started == [] and ops.calls == 1
    assert outcome.choice.method is RedriveMethod.RECEIVE_LOOP
