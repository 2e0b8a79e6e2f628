"""The local runtime's wait clock: a Wait state returns when the test-controlled clock reaches its deadline.

No timed assertions: every wait below is a hang guard (a generous bound that only stops a broken test).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

from pssync.local.wait_clock import WaitClock, install_wait_clock

HANG_GUARD_SECONDS = 60
FAR_AHEAD = datetime(2036, 1, 1, tzinfo=UTC)  # ten years: only the clock can get there


def _waiter(
    clock: WaitClock, deadline: datetime, still_waiting: Any = lambda: True
) -> tuple[threading.Thread, list[bool]]:
    outcome: list[bool] = []
    thread = threading.Thread(
        target=lambda: outcome.append(clock.wait_until(deadline, still_waiting)), daemon=True
    )
    thread.start()
    return thread, outcome


def test_a_wait_returns_when_the_clock_reaches_its_deadline_not_before() -> None:
    clock = WaitClock(poll_seconds=0.05)
    thread, outcome = _waiter(clock, FAR_AHEAD)
    clock.advance(timedelta(days=1))
    thread.join(timeout=0.5)  # a day later is still years early: the waiter must still be waiting
    assert thread.is_alive() and outcome == []
    clock.advance_to(FAR_AHEAD)
    thread.join(timeout=HANG_GUARD_SECONDS)
    assert outcome == [True]


def test_a_past_deadline_returns_at_once_and_a_stopped_waiter_gives_up() -> None:
    clock = WaitClock(poll_seconds=0.05)
    assert clock.wait_until(datetime(2020, 1, 1, tzinfo=UTC), lambda: True) is True
    running = threading.Event()
    running.set()
    thread, outcome = _waiter(clock, FAR_AHEAD, running.is_set)
    running.clear()  # StopExecution: the execution is no longer running
    thread.join(timeout=HANG_GUARD_SECONDS)
    assert outcome == [False]


def test_the_clock_never_moves_backwards_and_resets_to_real_time() -> None:
    clock = WaitClock()
    clock.advance_to(FAR_AHEAD)
    clock.advance_to(datetime(2030, 1, 1, tzinfo=UTC))  # earlier than now on this clock: no move
    assert clock.now() >= FAR_AHEAD
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))
    clock.reset()
    assert clock.now() < FAR_AHEAD


# --- moto's interpreter ---------------------------------------------------------------------------------


@pytest.fixture
def sfn(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(WaitFunction, "_eval_body", WaitFunction._eval_body)  # restored after the test
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name="us-east-1")


def _machine(sfn: Any) -> str:
    definition = {
        "StartAt": "Timer",
        "States": {
            "Timer": {"Type": "Wait", "TimestampPath": "$.fires_at", "Next": "Fired"},
            "Fired": {"Type": "Succeed"},
        },
    }
    role = "arn:aws:iam::123456789012:role/sfn"
    return str(
        sfn.create_state_machine(name="timer", definition=json.dumps(definition), roleArn=role)[
            "stateMachineArn"
        ]
    )


def _status_when_settled(sfn: Any, arn: str, *, settled: set[str]) -> str:
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while time.monotonic() < deadline:
        status = str(sfn.describe_execution(executionArn=arn)["status"])
        if status in settled:
            return status
        time.sleep(0.05)
    raise TimeoutError(f"execution {arn} did not reach {settled}")


def _wait_entered(sfn: Any, arn: str) -> None:
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while time.monotonic() < deadline:
        events = sfn.get_execution_history(executionArn=arn)["events"]
        if any(e["type"] == "WaitStateEntered" for e in events):
            return
        time.sleep(0.05)
    raise TimeoutError("the Wait state was never entered")


def test_moto_wait_states_follow_the_installed_clock(sfn: Any) -> None:
    clock = install_wait_clock(WaitClock(poll_seconds=0.05))
    machine = _machine(sfn)
    timer = sfn.start_execution(
        stateMachineArn=machine, name="t", input=json.dumps({"fires_at": "2036-01-01T00:00:00Z"})
    )
    past = sfn.start_execution(
        stateMachineArn=machine, name="p", input=json.dumps({"fires_at": "2020-01-01T00:00:00Z"})
    )
    assert _status_when_settled(sfn, past["executionArn"], settled={"SUCCEEDED", "FAILED"}) == "SUCCEEDED"
    _wait_entered(sfn, timer["executionArn"])
    clock.advance_to(FAR_AHEAD - timedelta(days=1))
    assert sfn.describe_execution(executionArn=timer["executionArn"])["status"] == "RUNNING"
    clock.advance_to(FAR_AHEAD)
    assert _status_when_settled(sfn, timer["executionArn"], settled={"SUCCEEDED", "FAILED"}) == "SUCCEEDED"


def test_a_bad_timestamp_still_fails_the_execution_as_on_aws(sfn: Any) -> None:
    install_wait_clock(WaitClock(poll_seconds=0.05))
    machine = _machine(sfn)
    bad = sfn.start_execution(
        stateMachineArn=machine, name="b", input=json.dumps({"fires_at": "next tuesday"})
    )
    assert _status_when_settled(sfn, bad["executionArn"], settled={"SUCCEEDED", "FAILED"}) == "FAILED"


def test_installing_again_replaces_the_clock(sfn: Any) -> None:
    install_wait_clock(WaitClock())
    latest = install_wait_clock(WaitClock(poll_seconds=0.05))
    machine = _machine(sfn)
    timer = sfn.start_execution(
        stateMachineArn=machine, name="r", input=json.dumps({"fires_at": "2036-01-01T00:00:00Z"})
    )
    _wait_entered(sfn, timer["executionArn"])
    latest.advance_to(FAR_AHEAD)
    assert _status_when_settled(sfn, timer["executionArn"], settled={"SUCCEEDED", "FAILED"}) == "SUCCEEDED"
