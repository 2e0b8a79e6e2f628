"""The interface every inbound scheme implements, and the HTTP answers schemes share."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from pssync.errors import MalformedDelivery, UnsupportedMediaType
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


# What a JSON body from a sender may hold. Deeper nesting or longer integer literals than any vendor sends
# are refused (400) before they can exhaust the stack or the int parser anywhere downstream.
MAX_JSON_DEPTH = 64
MAX_JSON_INTEGER_DIGITS = 64
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _bounded_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_JSON_INTEGER_DIGITS:
        raise ValueError(f"integer literal of {len(literal)} characters")
    return int(literal)


def parse_json_body(body: bytes | str, *, parse_float: Any = None) -> Any:
    """A sender's JSON, or MalformedDelivery (400): never an exception a sender can turn into a 5xx.

    Strict UTF-8 first (`json.loads(bytes)` would let lone surrogates through with 'surrogatepass'),
    integer literals and nesting bounded, and no lone surrogate from a `\\uD8xx` escape (it would crash
    serialisation later, when the event is published).
    """
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        raise MalformedDelivery("body is not valid UTF-8") from None
    try:
        document = json.loads(text, parse_int=_bounded_int, parse_float=parse_float)
    except RecursionError:
        raise MalformedDelivery(f"body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as error:  # JSONDecodeError, and our integer bound
        raise MalformedDelivery(f"body is not valid JSON: {error}") from None
    # Nesting cannot exceed the number of opening brackets: most bodies are refused or cleared by a count.
    brackets = text.count("{") + text.count("[")
    if brackets > MAX_JSON_DEPTH and _depth_exceeds(document, MAX_JSON_DEPTH):
        raise MalformedDelivery(f"body is nested deeper than {MAX_JSON_DEPTH} levels")
    if _SURROGATE_ESCAPE.search(text) and _holds_lone_surrogate(document):
        raise MalformedDelivery("body holds a lone UTF-16 surrogate escape")
    return document


def _holds_lone_surrogate(document: Any) -> bool:
    """Whether any key or string cannot be encoded as UTF-8. Iterative, and it looks at strings only: a
    document parsed with parse_float=Decimal (Dataverse) is not JSON-serialisable, so serialising it to
    check made a TypeError, a 502, of any surrogate escape (scorecard R4)."""
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def _depth_exceeds(document: Any, limit: int) -> bool:
    """Iterative, so checking a deep document cannot itself exhaust the stack."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


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

    media_type: str  # the Content-Type its vendor sends; anything else is refused with 415

    def verify(
        self, request: RawRequest, source: SourceConfig, secrets: SigningSecrets | None, now: datetime
    ) -> VerifiedDelivery: ...

    def normalise(self, context: NormaliseContext) -> list[NormalisedEvent]: ...

    def acknowledge(self, result: IngestResult) -> HttpReply: ...


def check_media_type(request: RawRequest, expected: str) -> None:
    """The one Content-Type the scheme's vendor sends, with no charset other than UTF-8 (415 otherwise)."""
    values = request.headers.get("content-type", [])
    if len(values) != 1:
        raise UnsupportedMediaType(f"send exactly one Content-Type: {expected}")
    media_type, _, parameters = values[0].partition(";")
    charset = next(
        (v.strip().strip('"').lower() for k, _, v in (p.partition("=") for p in parameters.split(";"))
         if k.strip().lower() == "charset"),
        "utf-8",
    )  # fmt: skip
    if media_type.strip().lower() != expected or charset != "utf-8":
        raise UnsupportedMediaType(f"Content-Type {values[0]!r} is not {expected} (UTF-8)")
