"""Small interfaces between the domain and I/O. Adapters implement them for AWS, fakes for tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pssync.ingest.verification import SigningSecrets
from pssync.model.events import EventEnvelope, Lineage


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SecretsPort(Protocol):
    def signing_secrets(self, secret_id: str) -> SigningSecrets: ...


class EventPublisher(Protocol):
    def publish(self, events: Sequence[EventEnvelope]) -> None: ...


class RawPayloadStore(Protocol):
    """Keeps every accepted delivery's raw bytes (lineage); content-addressed, so redeliveries overwrite."""

    def put(self, source: str, delivery_id: str, body: bytes, received_at: datetime) -> Lineage: ...


@dataclass(frozen=True)
class DedupeOutcome:
    value: str
    first: bool


class Deduplicator(Protocol):
    """Run `action` once per key for the idempotency window; later calls get the first result."""

    def once(self, key: str, fingerprint: str, action: Callable[[], str]) -> DedupeOutcome: ...


@dataclass(frozen=True)
class StoredVersion:
    aggregate: str
    aggregate_id: str
    version: int
    body: dict[str, Any]
    caused_by_event_id: str
    correlation_id: str
    recorded_at: str


class VersionStore(Protocol):
    """Append-only version history per aggregate (contract, project, billing/revenue schedule)."""

    def append(
        self,
        aggregate: str,
        aggregate_id: str,
        *,
        expected_version: int,
        body: dict[str, Any],
        caused_by_event_id: str,
        correlation_id: str,
        recorded_at: str,
    ) -> StoredVersion:
        """Write version expected_version + 1. Raises VersionConflict if the head moved."""
        ...

    def head(self, aggregate: str, aggregate_id: str) -> StoredVersion | None: ...

    def get(self, aggregate: str, aggregate_id: str, version: int) -> StoredVersion | None: ...

    def history(self, aggregate: str, aggregate_id: str) -> list[StoredVersion]: ...


class VersionConflict(Exception):
    def __init__(self, aggregate: str, aggregate_id: str, expected_version: int) -> None:
        super().__init__(f"{aggregate} {aggregate_id}: head is no longer version {expected_version}")
        self.expected_version = expected_version
