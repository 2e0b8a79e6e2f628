"""Verification primitives shared by every scheme: secrets with rotation, constant-time comparison."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class SigningSecrets:
    """The current secret and, during a rotation, the previous one: both verify."""

    current: str
    previous: str | None = None

    def all(self) -> list[str]:
        return [s for s in (self.current, self.previous) if s]


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
