"""Executions ending, as moto's Step Functions interpreter records them: a wait without polling.

Drivers that pace themselves on a workflow's end (the scorecard's closed loops, the e2e tests) polled
DescribeExecution twice a second per execution in flight; in a 16-job R1 run that was 13 % of the runtime
process's CPU (py-spy), the process that bounds the rate. moto's interpreter calls its worker
communication's `terminated()` once an execution's program has ended (succeeded, failed, timed out or
aborted), after setting the status: the runtime records the execution ARN there and wakes the waiters.
A waiter still confirms the status through the API (`LocalRuntime.wait_for_execution`), and re-checks it
every few seconds, so a missed signal costs time, never a wrong answer.
"""

from __future__ import annotations

import threading
from typing import Any

_PATCHED = "_pssync_records_execution_ends"


class ExecutionEnds:
    """The ARNs of the executions that have ended, and a condition waiters sleep on."""

    def __init__(self) -> None:
        self._ended: set[str] = set()
        self._changed = threading.Condition()

    def record(self, execution_arn: str) -> None:
        with self._changed:
            self._ended.add(execution_arn)
            self._changed.notify_all()

    def has_ended(self, execution_arn: str) -> bool:
        with self._changed:
            return execution_arn in self._ended

    def wait(self, execution_arn: str, timeout: float) -> bool:
        """True once the execution has ended; False if `timeout` seconds passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: execution_arn in self._ended, timeout=max(0.0, timeout))


_current: ExecutionEnds | None = None


def install(ends: ExecutionEnds) -> None:
    """Record every execution end in `ends` from now on (one runtime at a time, as for the Lambda host)."""
    global _current
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    _current = ends
    if getattr(BaseExecutionWorkerCommunication, _PATCHED, False):
        return
    original = BaseExecutionWorkerCommunication.terminated

    def terminated(self: Any) -> None:
        try:
            original(self)
        finally:
            sink = _current
            if sink is not None:
                sink.record(self.execution.exec_arn)

    BaseExecutionWorkerCommunication.terminated = terminated  # type: ignore[method-assign]
    setattr(BaseExecutionWorkerCommunication, _PATCHED, True)


def uninstall(ends: ExecutionEnds) -> None:
    global _current
    if _current is ends:
        _current = None
