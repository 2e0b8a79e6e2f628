"""Every interface between the use cases and I/O, with the small values they exchange.

Adapters implement them for AWS (`pssync.adapters`), the vendor HTTP client for SaaS APIs
(`pssync.connectors`), fakes for unit tests (`tests/fakes.py`). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pssync.errors import PssyncError
from pssync.model.commands import ConnectorCommand, Target
from pssync.model.events import EventEnvelope, Lineage
from pssync.model.sources import SourceConfig

# --- time ------------------------------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


# --- secrets ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningSecrets:
    """The current secret and, during a rotation, the previous one: both verify."""

    current: str
    previous: str | None = None

    def all(self) -> list[str]:
        return [s for s in (self.current, self.previous) if s]


class SecretsPort(Protocol):
    def signing_secrets(self, secret_id: str) -> SigningSecrets: ...


TokenSource = Callable[[str], str]
"""Secret id -> bearer token (Secrets Manager in production, a literal in tests)."""


# --- publishing, lineage, dedupe --------------------------------------------------------------------


class EventPublisher(Protocol):
    def publish(self, events: Sequence[EventEnvelope]) -> None: ...


class RawPayloadStore(Protocol):
    """Keeps every accepted delivery's raw bytes (lineage); content-addressed and written once."""

    def put(self, source: str, delivery_id: str, body: bytes, received_at: datetime) -> Lineage: ...


@dataclass(frozen=True)
class DedupeOutcome:
    value: str
    first: bool


class Deduplicator(Protocol):
    """Run `action` once per key for the idempotency window; later calls get the first result."""

    def once(self, key: str, fingerprint: str, action: Callable[[], str]) -> DedupeOutcome: ...


# --- ingest ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NormalisedEvent:
    """A canonical event plus the fingerprint its dedupe record validates.

    The fingerprint covers what the source sent for this event, minus what changes on a retry, so a
    redelivery is a duplicate and only a different body under the same id is a conflict.
    """

    event: EventEnvelope
    fingerprint: str


@dataclass(frozen=True)
class AcceptedEvent:
    event_id: str
    event_type: str
    duplicate: bool


@dataclass(frozen=True)
class IngestResult:
    source: str
    delivery_id: str
    events: list[AcceptedEvent] = field(default_factory=list)

    @property
    def all_duplicates(self) -> bool:
        return bool(self.events) and all(e.duplicate for e in self.events)


class Acceptor(Protocol):
    """IngestService.accept: raw payload lineage, per-event dedupe, publish."""

    def accept(
        self,
        source: SourceConfig,
        delivery_id: str,
        raw_body: bytes,
        normalised: list[NormalisedEvent],
        received_at: datetime,
    ) -> IngestResult: ...


# --- vendor reads ----------------------------------------------------------------------------------


class JsonReader(Protocol):
    """GET a JSON object from a vendor API (the vendor HTTP client, or a per-record budget view of it)."""

    def get_json(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]: ...


class RecordFetcher(Protocol):
    """Fetches the authoritative record behind a thin event (HubSpot deal, Salesforce opportunity)."""

    def fetch(self, object_type: str, object_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class FeedRead:
    """Events created in a window; `complete` is False when max_pages ran out before the last page."""

    events: list[dict[str, Any]]
    complete: bool
    pages_needed: int | None = None  # when cut short: how many pages the source says the window holds


class EventFeed(Protocol):
    """A pollable feed of subscribed events (Kantata OX has no push webhooks)."""

    def subscribed_events(
        self,
        created_after: datetime,
        event_types: Sequence[str],
        *,
        created_before: datetime | None = None,
        max_pages: int = 20,
    ) -> FeedRead: ...


@dataclass(frozen=True)
class Cursor:
    source: str
    position: datetime | None
    version: int = 0


class CursorConflict(PssyncError):
    code = "cursor_conflict"


class CursorStore(Protocol):
    def get(self, source: str) -> Cursor: ...

    def advance(self, cursor: Cursor, position: datetime, updated_at: datetime) -> Cursor:
        """Write `position` if the stored cursor is still `cursor`; raises CursorConflict otherwise."""
        ...


# --- versions --------------------------------------------------------------------------------------


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


# --- commands to PSA / ERP, workflows --------------------------------------------------------------


@dataclass(frozen=True)
class RecordedCommand:
    command: ConnectorCommand
    first_time: bool


@dataclass(frozen=True)
class VersionClaim:
    """The outcome of claiming a target record's high-water mark for one contract version.

    `granted`: the version is the newest claimed so far (or the same again: a redelivery) and may be
    written. Otherwise `held` is the newer version that was claimed, or `busy` says another version's live
    write holds the record right now (try again shortly). `token` releases a granted writer lease.
    """

    granted: bool
    held: int
    busy: bool = False
    token: str | None = None


class DeliveryLogPort(Protocol):
    """What was sent (or would be) to each PSA / ERP record, and the never-regress guard's marks."""

    def record(self, command: ConnectorCommand, recorded_at: str) -> RecordedCommand: ...

    def commands_for(self, target: Target, external_id: str) -> list[ConnectorCommand]:
        """Every command recorded for one target record, in any order."""
        ...

    def record_refusal(self, command: ConnectorCommand, held_version: int, recorded_at: str) -> None:
        """Keep a refusal (idempotent on the command id): operators see what was not sent and why."""
        ...

    def claim_version(
        self, command: ConnectorCommand, version: int, recorded_at: str, *, writer_lease_seconds: float | None
    ) -> VersionClaim:
        """Atomically raise the record's (target, operation, external id) high-water mark to `version`
        unless a newer version holds it. With `writer_lease_seconds` the claim also takes the record's
        writer lease (one live write per record at a time, so an older write can never land after a
        newer one); it is refused as `busy` while another claim's lease runs."""
        ...

    def release_claim(self, command: ConnectorCommand, token: str) -> None:
        """End the writer lease `token` took (only if it is still that claim's); the mark stays."""
        ...


class Connector(Protocol):
    """Sends one command to a system of record; must be safe to call twice with the same command."""

    def send(self, command: ConnectorCommand, recorded_at: str) -> RecordedCommand: ...


class DeadLetterParking(Protocol):
    def park(self, body: str, receive_count: int, error: BaseException) -> bool:
        """Move a record that failed its last allowed receive to its DLQ with the cause; False before."""
        ...


class WorkflowStarter(Protocol):
    def start(self, name: str, input_document: str) -> tuple[str, bool]:
        """Returns (execution arn, newly started)."""
        ...


# --- period close ----------------------------------------------------------------------------------

from collections.abc import Iterator  # noqa: E402  (kept with the period-close ports it serves)


class AggregateHeads(Protocol):
    """Every aggregate of one kind at its latest version, streamed page by page (the close planner)."""

    def heads(self, aggregate: str) -> Iterator[StoredVersion]: ...


class JsonObjects(Protocol):
    """JSON documents under keys: a close's shard files, its manifest and its shard results."""

    def put_json(self, key: str, document: Any) -> None: ...

    def get_json(self, key: str) -> Any: ...

    def keys(self, prefix: str) -> Iterator[str]: ...


class MessagePeek(Protocol):
    """Every message body of some queues, read without consuming them (the close gate)."""

    def bodies(self) -> Iterator[str]: ...
