"""The interface every inbound scheme implements, and the HTTP answers schemes share."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from pssync.model.sources import SourceConfig
from pssync.ports import IngestResult, NormalisedEvent, SigningSecrets
from pssync.sources.request import RawRequest
from pssync.sources.verification import VerifiedDelivery


@dataclass(frozen=True)
class NormaliseContext:
    source: SourceConfig
    delivery: VerifiedDelivery
    body: bytes
    received_at: datetime


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
