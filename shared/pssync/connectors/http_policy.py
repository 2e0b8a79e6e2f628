"""The retry and time policy of vendor calls: plain data, importable without httpx (cold start).

Besides each call's own deadline, every call made during a Lambda invocation fits the invocation: the
handler stack (`pssync.handlers.stack`) registers the context's remaining time with `invocation_time`, and
the vendor HTTP client ends each call `invocation_reserve_seconds` before the function would be killed, as
a typed transient error the workflow retries, instead of the container dying mid-command.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class CallPolicy:
    """How long one call may take and how it is retried: one per vendor API (see pssync.wiring)."""

    timeout_seconds: float = 5.0  # one attempt
    connect_timeout_seconds: float = 3.0
    deadline_seconds: float = 10.0  # the whole call, retries and waits included
    max_attempts: int = 3
    backoff_base_seconds: float = 0.25  # full jitter: uniform in [0, min(cap, base * 2^(n-1))]
    backoff_cap_seconds: float = 8.0
    max_retry_after_seconds: float = 30.0
    # Left of the invocation after any vendor call, for what follows it: recording the delivery,
    # releasing the concurrency slot and the record's writer lease, returning the step's result.
    invocation_reserve_seconds: float = 3.0


_seconds_left: ContextVar[Callable[[], float] | None] = ContextVar(
    "pssync_invocation_seconds_left", default=None
)


@contextmanager
def invocation_time(seconds_left: Callable[[], float]) -> Iterator[None]:
    """Vendor calls inside the block end before `seconds_left()` runs out (less each policy's reserve)."""
    token = _seconds_left.set(seconds_left)
    try:
        yield
    finally:
        _seconds_left.reset(token)


def invocation_seconds_left() -> float | None:
    """Seconds left in the current invocation; None outside one (CLI, tests, benchmarks)."""
    seconds_left = _seconds_left.get()
    return None if seconds_left is None else seconds_left()
