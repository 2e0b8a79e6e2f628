"""In-memory implementations of the ports, for unit tests (same interfaces as the AWS adapters)."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pssync.errors import DeliveryInProgress, UnprocessableDelivery
from pssync.model.commands import ConnectorCommand, Target
from pssync.model.events import EventEnvelope, Lineage
from pssync.ports import (
    Cursor,
    CursorConflict,
    DedupeOutcome,
    RecordedCommand,
    SigningSecrets,
    StoredVersion,
    VersionClaim,
    VersionConflict,
)


@dataclass
class FixedClock:
    instant: datetime = field(default_factory=lambda: datetime(2026, 11, 20, 10, 15, 30, tzinfo=UTC))

    def now(self) -> datetime:
        return self.instant


@dataclass
class FakeSecrets:
    by_id: dict[str, SigningSecrets]

    def signing_secrets(self, secret_id: str) -> SigningSecrets:
        return self.by_id[secret_id]


@dataclass
class RecordingPublisher:
    published: list[EventEnvelope] = field(default_factory=list)
    fail_with: Exception | None = None

    def publish(self, events: Sequence[EventEnvelope]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.published.extend(events)


@dataclass
class InMemoryDeduplicator:
    """Like Powertools: the first run's result is kept; a failed run leaves no record."""

    records: dict[str, tuple[str, str]] = field(default_factory=dict)
    in_progress: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def once(self, key: str, fingerprint: str, action: Callable[[], str]) -> DedupeOutcome:
        with self.lock:
            if key in self.records:
                stored_fingerprint, value = self.records[key]
                if stored_fingerprint != fingerprint:
                    raise UnprocessableDelivery("this delivery id was already used with a different body")
                return DedupeOutcome(value=value, first=False)
            if key in self.in_progress:
                raise DeliveryInProgress("in progress")
            self.in_progress.add(key)
        try:
            value = action()
        finally:
            with self.lock:
                self.in_progress.discard(key)
        with self.lock:
            self.records[key] = (fingerprint, value)
        return DedupeOutcome(value=value, first=True)


@dataclass
class InMemoryVersionStore:
    versions: dict[tuple[str, str], list[StoredVersion]] = field(default_factory=dict)

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
        history = self.versions.setdefault((aggregate, aggregate_id), [])
        if len(history) != expected_version:
            raise VersionConflict(aggregate, aggregate_id, expected_version)
        stored = StoredVersion(
            aggregate,
            aggregate_id,
            expected_version + 1,
            body,
            caused_by_event_id,
            correlation_id,
            recorded_at,
        )
        history.append(stored)
        return stored

    def head(self, aggregate: str, aggregate_id: str) -> StoredVersion | None:
        history = self.versions.get((aggregate, aggregate_id), [])
        return history[-1] if history else None

    def get(self, aggregate: str, aggregate_id: str, version: int) -> StoredVersion | None:
        history = self.versions.get((aggregate, aggregate_id), [])
        return history[version - 1] if 0 < version <= len(history) else None

    def history(self, aggregate: str, aggregate_id: str) -> list[StoredVersion]:
        return list(self.versions.get((aggregate, aggregate_id), []))


@dataclass
class HeldMark:
    """A record's high-water mark, as DynamoDBDeliveryLog keeps it (`held#<operation>`)."""

    held: int
    writer: str | None = None
    writer_until: float = 0.0


@dataclass
class InMemoryDeliveryLog:
    """The delivery log with the guard's marks; thread-safe, so races can be run against it too."""

    commands: dict[str, ConnectorCommand] = field(default_factory=dict)
    refusals: dict[str, int] = field(default_factory=dict)  # command id -> the version the target held
    marks: dict[tuple[Target, str, str], HeldMark] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, command: ConnectorCommand, recorded_at: str) -> RecordedCommand:
        with self.lock:
            if command.command_id in self.commands:
                return RecordedCommand(command=command, first_time=False)
            self.commands[command.command_id] = command
            return RecordedCommand(command=command, first_time=True)

    def commands_for(self, target: Target, external_id: str) -> list[ConnectorCommand]:
        with self.lock:
            return [c for c in self.commands.values() if c.target == target and c.external_id == external_id]

    def record_refusal(self, command: ConnectorCommand, held_version: int, recorded_at: str) -> None:
        with self.lock:
            self.refusals.setdefault(command.command_id, held_version)

    def claim_version(
        self, command: ConnectorCommand, version: int, recorded_at: str, *, writer_lease_seconds: float | None
    ) -> VersionClaim:
        key = (command.target, command.operation, command.external_id)
        with self.lock:
            mark = self.marks.get(key)
            if mark is not None and mark.held > version:
                return VersionClaim(granted=False, held=mark.held)
            mark = self.marks.setdefault(key, HeldMark(version))
            if writer_lease_seconds is None:  # a shadow claim: the mark only, no writer lease
                mark.held = version
                return VersionClaim(granted=True, held=version)
            now = self.clock()
            if mark.writer is not None and mark.writer_until >= now:
                return VersionClaim(granted=False, held=mark.held, busy=True)
            token = f"{command.command_id}#{uuid.uuid4().hex}"
            mark.held, mark.writer, mark.writer_until = version, token, now + writer_lease_seconds
            return VersionClaim(granted=True, held=version, token=token)

    def release_claim(self, command: ConnectorCommand, token: str) -> None:
        with self.lock:
            mark = self.marks.get((command.target, command.operation, command.external_id))
            if mark is not None and mark.writer == token:
                mark.writer, mark.writer_until = None, 0.0

    def held(self, command: ConnectorCommand) -> int | None:
        """The version the record's mark holds (tests)."""
        mark = self.marks.get((command.target, command.operation, command.external_id))
        return None if mark is None else mark.held


@dataclass
class InMemoryRawPayloads:
    objects: dict[str, bytes] = field(default_factory=dict)

    def put(self, source: str, delivery_id: str, body: bytes, received_at: datetime) -> Lineage:
        digest = hashlib.sha256(body).hexdigest()
        self.objects[f"raw/{source}/{digest}"] = body
        return Lineage(
            raw_payload_ref=f"memory://raw/{source}/{digest}", raw_sha256=digest, delivery_id=delivery_id
        )


@dataclass
class FakeRecordFetcher:
    """A RecordFetcher over canned CRM records keyed (object_type, object_id); records every call."""

    records: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    fail_with: Exception | None = None

    def fetch(self, object_type: str, object_id: str) -> dict[str, Any]:
        self.calls.append((object_type, object_id))
        if self.fail_with is not None:
            raise self.fail_with
        from pssync.sources.crm_terms import RecordNotFound

        try:
            return self.records[(object_type, object_id)]
        except KeyError:
            raise RecordNotFound(f"{object_type} {object_id} does not exist in the CRM (404)") from None


class InMemoryCursorStore:
    """The fake: same contract, for unit tests."""

    def __init__(self) -> None:
        self.items: dict[str, Cursor] = {}

    def get(self, source: str) -> Cursor:
        return self.items.get(source, Cursor(source=source, position=None, version=0))

    def advance(self, cursor: Cursor, position: datetime, updated_at: datetime) -> Cursor:
        if self.get(cursor.source).version != cursor.version:
            raise CursorConflict(f"cursor of {cursor.source} moved since version {cursor.version}")
        moved = Cursor(source=cursor.source, position=position, version=cursor.version + 1)
        self.items[cursor.source] = moved
        return moved


# --- period close ----------------------------------------------------------------------------------

import json  # noqa: E402  (kept with the period-close fakes they serve)
from collections.abc import Iterator  # noqa: E402


@dataclass
class InMemoryAggregateHeads:
    """The heads of an InMemoryVersionStore, in insertion order (the DynamoDB Scan has no order either)."""

    store: InMemoryVersionStore

    def heads(self, aggregate: str) -> Iterator[StoredVersion]:
        for (kind, _), history in list(self.store.versions.items()):
            if kind == aggregate and history:
                yield history[-1]


@dataclass
class InMemoryJsonObjects:
    bucket: str = "closes"
    documents: dict[str, Any] = field(default_factory=dict)

    def put_json(self, key: str, document: Any) -> None:
        self.documents[key] = json.loads(json.dumps(document))

    def get_json(self, key: str) -> Any:
        return json.loads(json.dumps(self.documents[key]))

    def keys(self, prefix: str) -> Iterator[str]:
        yield from sorted(k for k in self.documents if k.startswith(prefix))


@dataclass
class RecordingDelivery:
    """`deliver` for steps that post commands: a delivery log behind it, so a repeated key is not new."""

    log: InMemoryDeliveryLog = field(default_factory=lambda: InMemoryDeliveryLog())
    calls: int = 0

    def __call__(self, command: ConnectorCommand) -> Any:
        from pssync.workflows.provision import CommandReceipt

        self.calls += 1
        recorded = self.log.record(command, "2027-02-01T00:00:00+00:00")
        return CommandReceipt(
            command_id=command.command_id, external_id=command.external_id, newly_recorded=recorded.first_time
        )
