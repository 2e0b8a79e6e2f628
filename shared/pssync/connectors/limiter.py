"""A vendor account's concurrency limit, shared by every Lambda container that writes to it.

NetSuite answers 429 once an account has more web-service requests in flight than its limit (a handful
without SuiteCloud Plus). Retrying after a 429 works, but under load most attempts are then wasted and a
burst of workflow steps turns into a storm of retries: instead, a command takes one of the account's slots
before it talks to the vendor and gives it back after. A connector's writes for one command are sequential,
so one slot per command is one request in flight at most.

`ConcurrencyLimiter` is the port (DynamoDB leases in `pssync.adapters.leases`; `InProcessLimiter` for
tests and single-process use); `LimitedConnector` puts any live connector behind it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from pssync.errors import TransientDownstreamError
from pssync.model.commands import ConnectorCommand
from pssync.ports import RecordedCommand


class ConcurrencyLimiter(Protocol):
    """Slots per key (a vendor account): `with limiter.slot(key):` holds one for the block.

    Raises TransientDownstreamError when no slot frees up within the limiter's wait budget (the workflow
    step retries later), never blocks without end; a holder that dies must not keep its slot for ever.
    """

    def slot(self, key: str) -> AbstractContextManager[None]: ...


class InProcessLimiter:
    """Slots counted in this process only (tests, benchmarks, a single worker)."""

    def __init__(self, limit: int, wait_seconds: float = 30.0) -> None:
        self.limit = limit
        self._wait_seconds = wait_seconds
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self.in_use = 0
        self.max_in_use = 0

    @contextmanager
    def slot(self, key: str) -> Iterator[None]:
        with self._lock:
            semaphore = self._semaphores.setdefault(key, threading.BoundedSemaphore(self.limit))
        if not semaphore.acquire(timeout=self._wait_seconds):
            raise TransientDownstreamError(f"all {self.limit} slots of {key} stayed busy")
        with self._lock:
            self.in_use += 1
            self.max_in_use = max(self.max_in_use, self.in_use)
        try:
            yield
        finally:
            with self._lock:
                self.in_use -= 1
            semaphore.release()


class LiveConnector(Protocol):
    vendor: str

    def send(self, command: ConnectorCommand, recorded_at: str) -> RecordedCommand: ...

    def mismatches(self, command: ConnectorCommand) -> list[str]: ...


class LimitedConnector:
    """A live connector whose every call holds one of its account's slots."""

    def __init__(self, inner: LiveConnector, limiter: ConcurrencyLimiter, account_key: str) -> None:
        self.vendor = inner.vendor
        self._inner = inner
        self._limiter = limiter
        self.account_key = account_key

    def send(self, command: ConnectorCommand, recorded_at: str) -> RecordedCommand:
        with self._limiter.slot(self.account_key):
            return self._inner.send(command, recorded_at)

    def mismatches(self, command: ConnectorCommand) -> list[str]:
        with self._limiter.slot(self.account_key):
            return self._inner.mismatches(command)
