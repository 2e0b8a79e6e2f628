"""What every outbound HTTP connector shares about retrying: Retry-After parsing (RFC 9110 §10.2.3)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def full_jitter_seconds(
    attempt: int, base_seconds: float, cap_seconds: float, rng: Callable[[], float]
) -> float:
    """'Full jitter' backoff: uniform in [0, min(cap, base * 2^(attempt-1))] (attempt counts from 1)."""
    ceiling_seconds = min(cap_seconds, base_seconds * 2.0 ** (attempt - 1))
    return rng() * ceiling_seconds
