"""The interface every inbound scheme implements, and what it hands back to the ingest service."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from pssync.ingest.request import RawRequest
from pssync.ingest.sources import SourceConfig
from pssync.ingest.verification import SigningSecrets, VerifiedDelivery
from pssync.model.events import EventEnvelope


class RecordFetcher(Protocol):
    """Fetches the authoritative record behind a thin event (HubSpot deal, Salesforce opportunity)."""

    def fetch(self, object_type: str, object_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class NormaliseContext:
    source: SourceConfig
    delivery: VerifiedDelivery
    body: bytes
    received_at: datetime


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


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


def fingerprint_of(document: Any) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


class AcceptedEventBody(BaseModel):
    event_id: str
    event_type: str
    duplicate: bool = Field(description="Already accepted earlier: nothing new was published")


class AcceptedResponse(BaseModel):
    """The 202 body: every canonical event the delivery produced (none when it maps to no business event)."""

    delivery_id: str
    event_id: str | None = Field(
        description="The first event's id: the whole answer for single-event sources"
    )
    duplicate: bool = Field(description="True when every event of the delivery was already accepted")
    events: list[AcceptedEventBody]


class ErrorResponse(BaseModel):
    """Every refusal: a stable machine-readable code and a message naming what is wrong."""

    error: str = Field(examples=["signature_invalid", "stale_timestamp", "payload_too_large"])
    message: str


def json_acknowledgement(result: IngestResult) -> HttpReply:
    """202 with every canonical event id; `event_id` / `duplicate` summarise single-event deliveries."""
    first = result.events[0] if result.events else None
    document = AcceptedResponse(
        delivery_id=result.delivery_id,
        event_id=first.event_id if first else None,
        duplicate=result.all_duplicates,
        events=[AcceptedEventBody(**e.__dict__) for e in result.events],
    )
    return HttpReply(status=202, body=document.model_dump_json().encode())


class InboundScheme(Protocol):
    """One per vendor mechanism. Verification must fail closed and compare in constant time."""

    def verify(
        self, request: RawRequest, source: SourceConfig, secrets: SigningSecrets | None, now: datetime
    ) -> VerifiedDelivery: ...

    def normalise(self, context: NormaliseContext) -> list[NormalisedEvent]: ...

    def acknowledge(self, result: IngestResult) -> HttpReply: ...
