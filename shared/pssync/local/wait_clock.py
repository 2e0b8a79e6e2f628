"""A clock the local runtime's Step Functions Wait states follow, so tests fire durable timers at will.

moto's interpreter runs a Wait state in the process that serves moto (the LocalRuntime's own process:
`MotoServer` is a thread there, and executions run on background threads of it) by sleeping in real time
(`WaitFunction._wait_interval`), and reads a `Timestamp`/`TimestampPath` against the naive local
`datetime.now()` (wrong off UTC). `install_wait_clock` replaces the evaluation of every wait function: a
Wait until T returns once `WaitClock.now()` reaches T. The clock is real UTC time plus an offset a test
moves forward (`advance`, `advance_to`), so offset 0 waits exactly as before, a deadline in the past fires
at once, and a stopped execution stops waiting. AWS is untouched: this module is local-runtime only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

POLL_SECONDS = 0.5  # how soon a stopped execution notices; clock moves wake waiters at once


class WaitClock:
    def __init__(self, poll_seconds: float = POLL_SECONDS) -> None:
        self._offset = timedelta(0)
        self._poll_seconds = poll_seconds
        self._moved = threading.Condition()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, by: timedelta) -> None:
        if by < timedelta(0):
            raise ValueError("the wait clock only moves forward")
        with self._moved:
            self._offset += by
            self._moved.notify_all()

    def advance_to(self, instant: datetime) -> None:
        """Move the clock to `instant` (aware), or leave it where it is when it is already later."""
        self.advance(max(timedelta(0), instant - self.now()))

    def reset(self) -> None:
        """Back to real time (timers not yet fired wait for their real deadline again)."""
        with self._moved:
            self._offset = timedelta(0)
            self._moved.notify_all()

    def wait_until(self, deadline: datetime, still_waiting: Callable[[], bool]) -> bool:
        """Block until the clock reaches `deadline` (True), or until `still_waiting()` is false (False)."""
        with self._moved:
            while True:
                remaining = (deadline - self.now()).total_seconds()
                if remaining <= 0:
                    return True
                if not still_waiting():
                    return False
                self._moved.wait(timeout=min(remaining, self._poll_seconds))


WAIT_CLOCK = WaitClock()  # the runtime's: moto and the test driving it share the process


def install_wait_clock(clock: WaitClock = WAIT_CLOCK) -> WaitClock:
    """Make moto's Wait states follow `clock` (idempotent; the last call's clock wins). Returns it."""
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
        WaitFunction,
    )

    def deadline(function: Any, env: Any) -> datetime:
        if isinstance(function, Timestamp):  # TimestampPath is one too
            function.string.eval(env=env)
            text = env.stack.pop()
            parsed = function._from_timestamp_string(timestamp=text)
            if parsed is None:
                raise FailureEventException(function._create_failure_event(env, text))
            return parsed.replace(tzinfo=UTC)  # the ASL timestamp ends in Z
        return clock.now() + timedelta(seconds=function._get_wait_seconds(env=env))

    def eval_body(self: Any, env: Any) -> None:
        clock.wait_until(deadline(self, env), env.is_running)

    WaitFunction._eval_body = eval_body  # type: ignore[method-assign]
    return clock
