"""The retry and time policy of vendor calls: plain data, importable without httpx (cold start)."""

from __future__ import annotations

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
