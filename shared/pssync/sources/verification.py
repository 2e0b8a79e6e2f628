"""Verification primitives shared by every scheme: secrets with rotation, constant-time comparison."""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from pssync.errors import MalformedDelivery


@dataclass(frozen=True)
class VerifiedDelivery:
    """What verification establishes: the sender's delivery id (dedupe basis) and when it was sent."""

    delivery_id: str
    sent_at: datetime | None


def matches_any(expected: bytes, offered: Iterable[bytes]) -> bool:
    """Constant-time against each offered value, without stopping at the first miss."""
    matched = False
    for candidate in offered:
        matched |= hmac.compare_digest(expected, candidate)
    return matched


_EPOCH_DIGITS = re.compile(r"[0-9]{1,16}")


def epoch_instant(value: object, *, milliseconds: bool, what: str) -> datetime:
    """An epoch timestamp from untrusted input, or MalformedDelivery (400) — never a crash.

    Only ASCII digits are accepted (`"²".isdigit()` is true in Python), and out-of-range values that
    `fromtimestamp` cannot represent are refused instead of raising OverflowError / OSError.
    """
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _EPOCH_DIGITS.fullmatch(text):
        raise MalformedDelivery(f"{what} must be epoch {'milliseconds' if milliseconds else 'seconds'}")
    try:
        return datetime.fromtimestamp(int(text) / (1000 if milliseconds else 1), tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedDelivery(f"{what} is out of range") from None
