"""Which dead letters a replay takes, and how fast. Pure: no I/O (the clock and the sleep are passed in).

A dead letter is described by the facts an operator selects on: the business event id, its type, the
source it came from, why it failed (the `pssync-error` / `pssync-reason` attributes a consumer parks a
record with, or the `Error` a workflow's Catch recorded and the error type inside its `Cause`) and how
long it has waited (SQS's SentTimestamp). Filters of different kinds must all match; several values
of one kind match any of them. A message that does not match is left where it is, untouched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
# Below one message per 100 s a single message could outlast the hold on the others; SQS's own API
# limits keep anything above a few hundred per second from mattering.
MIN_RATE = 0.01
MAX_RATE = 1000.0
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class DeadLetterFacts:
    """What a dead-lettered message says about itself, for selecting it (not for replaying it)."""

    message_id: str
    event_id: str | None = None
    event_type: str | None = None
    sources: frozenset[str] = frozenset()  # the configured source name and its system
    causes: frozenset[str] = frozenset()
    sent_at: datetime | None = None


def facts_of(
    message_id: str, body: str, attributes: Mapping[str, str] | None = None, sent_at: datetime | None = None
) -> DeadLetterFacts:
    """Facts from the body (an EventBridge event, a queued event or a workflow exception record) and the
    parking attributes. A body that is not JSON still has its causes and age."""
    attributes = attributes or {}
    causes = {attributes[name] for name in ("pssync-error", "pssync-reason") if attributes.get(name)}
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        document = None
    if not isinstance(document, dict):
        return DeadLetterFacts(message_id, causes=frozenset(causes), sent_at=sent_at)
    event = _event_of(document)
    causes |= _workflow_causes(document.get("error"))
    sources = {str(event[key]) for key in ("source", "source_system") if isinstance(event.get(key), str)}
    event_type = document.get("detail-type") or event.get("event_type")
    return DeadLetterFacts(
        message_id=message_id,
        event_id=str(event["event_id"]) if isinstance(event.get("event_id"), str) else None,
        event_type=str(event_type) if isinstance(event_type, str) else None,
        sources=frozenset(sources),
        causes=frozenset(causes),
        sent_at=sent_at,
    )


def _event_of(document: dict[str, Any]) -> dict[str, Any]:
    for key in ("detail", "event"):  # EventBridge / queued event; workflow exception record
        if isinstance(document.get(key), dict):
            return dict(document[key])
    return {}


def _workflow_causes(error: Any) -> set[str]:
    """The Catch's `Error` and, when the Cause is a Lambda error document, its `errorType`."""
    if not isinstance(error, dict):
        return set()
    causes = {str(error["Error"])} if error.get("Error") else set()
    cause = error.get("Cause")
    try:
        document = json.loads(cause) if isinstance(cause, str) else None
    except json.JSONDecodeError:
        document = None
    if isinstance(document, dict) and document.get("errorType"):
        causes.add(str(document["errorType"]))
    return causes


def sent_at_of(attributes: Mapping[str, str]) -> datetime | None:
    """SQS's SentTimestamp (epoch milliseconds) as an aware datetime."""
    raw = attributes.get("SentTimestamp")
    if not raw or not raw.isdigit():
        return None
    return datetime.fromtimestamp(int(raw) / 1000, tz=UTC)


def parse_age(text: str) -> timedelta:
    """`90s`, `30m`, `2h`, `1.5d`, `1w`."""
    match = _AGE.match(text)
    if match is None:
        raise ValueError(f"not an age: {text!r} (a number and a unit s, m, h, d or w, e.g. 30m or 2d)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]  # fractions allowed: 1.5d
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class ReplayFilter:
    """Empty means everything. Kinds are ANDed; values of one kind are ORed."""

    causes: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    event_types: frozenset[str] = frozenset()
    event_ids: frozenset[str] = frozenset()
    older_than: timedelta | None = None
    newer_than: timedelta | None = None

    @property
    def is_empty(self) -> bool:
        return self == ReplayFilter()

    def matches(self, facts: DeadLetterFacts, now: datetime) -> bool:
        if self.causes and not self.causes & facts.causes:
            return False
        if self.sources and not self.sources & facts.sources:
            return False
        if self.event_types and facts.event_type not in self.event_types:
            return False
        if self.event_ids and facts.event_id not in self.event_ids:
            return False
        if self.older_than is not None or self.newer_than is not None:
            if facts.sent_at is None:
                return False  # an age filter never takes a message whose age is unknown
            age = now - facts.sent_at
            if self.older_than is not None and age < self.older_than:
                return False
            if self.newer_than is not None and age > self.newer_than:
                return False
        return True

    def describe(self) -> dict[str, Any]:
        """For the audit record and the progress line: only what was set, in plain JSON values."""
        described: dict[str, Any] = {
            name: sorted(values)
            for name, values in (
                ("cause", self.causes),
                ("source", self.sources),
                ("event_type", self.event_types),
                ("event_id", self.event_ids),
            )
            if values
        }
        for name, age in (("older_than", self.older_than), ("newer_than", self.newer_than)):
            if age is not None:
                described[name] = f"{int(age.total_seconds())}s"
        return described


@dataclass
class RateLimiter:
    """At most `per_second` calls to `wait` return per second (None: no limit), spaced evenly."""

    per_second: float | None
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    _next: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.per_second is not None and not MIN_RATE <= self.per_second <= MAX_RATE:
            raise ValueError(f"the rate must be between {MIN_RATE} and {MAX_RATE} messages per second")

    def batch_size(self, most: int, seconds: float) -> int:
        """How many messages this rate handles in `seconds`, between 1 and `most`."""
        if self.per_second is None:
            return most
        return max(1, min(most, int(self.per_second * seconds)))

    def wait(self) -> None:
        if self.per_second is None:
            return
        now = self.clock()
        if self._next is not None and now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + 1 / self.per_second
