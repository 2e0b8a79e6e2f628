"""The ingest use case: one inbound delivery in, zero or more canonical events out, each exactly once.

Order matters for "nothing is written on bad input": source, size, signature and schema are all checked
before the raw payload is kept, the dedupe record is written or anything is published.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from pssync.errors import PayloadTooLarge, UnknownSource, UnprocessableDelivery
from pssync.model.events import EventEnvelope
from pssync.model.sources import EVENT_OWNERS, SourceConfig, SourceRegistry
from pssync.ports import (
    AcceptedEvent,
    Clock,
    Deduplicator,
    EventPublisher,
    IngestResult,
    NormalisedEvent,
    RawPayloadStore,
    SecretsPort,
)
from pssync.sources import scheme_for
from pssync.sources.base import NormaliseContext, check_media_type
from pssync.sources.request import RawRequest

# Leaves room for lineage and the workflow's own state next to the event inside 256 KB.
MAX_CANONICAL_EVENT_BYTES = 200_000


class IngestService:
    def __init__(
        self,
        registry: SourceRegistry,
        secrets: SecretsPort,
        publisher: EventPublisher,
        deduplicator: Deduplicator,
        clock: Clock,
        raw_payloads: RawPayloadStore,
    ) -> None:
        self._registry = registry
        self._secrets = secrets
        self._publisher = publisher
        self._deduplicator = deduplicator
        self._clock = clock
        self._raw_payloads = raw_payloads

    @property
    def registry(self) -> SourceRegistry:
        return self._registry

    def ingest(self, source_name: str, request: RawRequest) -> IngestResult:
        """Verify, normalise, keep the raw payload, dedupe, publish. Raises IngestRejected subclasses."""
        source = self._registry.get(source_name)
        if not source.scheme.is_http:  # Event Relay and Kantata sources have no webhook endpoint
            raise UnknownSource(f"source {source_name!r} does not receive webhooks")
        scheme = scheme_for(source.scheme)
        if len(request.body) > source.max_body_bytes:
            raise PayloadTooLarge(f"body is {len(request.body)} bytes; the limit is {source.max_body_bytes}")
        check_media_type(request, scheme.media_type)
        now = self._clock.now()
        secrets = self._secrets.signing_secrets(source.secret_id) if source.secret_id else None
        delivery = scheme.verify(request, source, secrets, now)
        normalised = scheme.normalise(NormaliseContext(source, delivery, request.body, now))
        return self.accept(source, delivery.delivery_id, request.body, normalised, now)

    def accept(
        self,
        source: SourceConfig,
        delivery_id: str,
        raw_body: bytes,
        normalised: list[NormalisedEvent],
        received_at: datetime,
    ) -> IngestResult:
        """The part every entry point shares (webhooks, the Event Relay normaliser, the Kantata poller)."""
        if not normalised:
            return IngestResult(source=source.name, delivery_id=delivery_id)
        for item in normalised:  # before anything is written
            check_ownership(source, item.event)
            check_canonical_size(item.event)
        # The raw delivery is kept as part of accepting its first new event, inside the dedupe record's
        # action: a refused delivery (a delivery id reused with another body: 422) writes nothing, and
        # every published event still points at its raw bytes, which are stored before it is published.
        keep_raw = _once(lambda: self._raw_payloads.put(source.name, delivery_id, raw_body, received_at))
        accepted = []
        for item in normalised:
            event = item.event

            def publish(event: EventEnvelope = event) -> str:
                published = event.model_copy(update={"lineage": keep_raw()})
                self._publisher.publish([published])
                return published.event_id

            # The key is the source's own event id, never a transport id: redeliveries collapse onto it.
            outcome = self._deduplicator.once(
                key=f"{source.name}:{event.source_event_id}", fingerprint=item.fingerprint, action=publish
            )
            accepted.append(
                AcceptedEvent(
                    event_id=outcome.value, event_type=_event_type(event), duplicate=not outcome.first
                )
            )
        return IngestResult(source=source.name, delivery_id=delivery_id, events=accepted)


def check_ownership(source: SourceConfig, event: EventEnvelope) -> None:
    event_type = _event_type(event)
    if not source.may_emit(event_type):
        owner = EVENT_OWNERS.get(event_type)
        raise UnprocessableDelivery(
            f"source {source.name} ({source.system}) does not own {event_type}: "
            f"{'the ' + owner.upper() if owner else 'no source'} states that fact",
            code="not_owner",
        )


def check_canonical_size(event: EventEnvelope) -> None:
    """PutEvents entries and Step Functions state are capped at 256 KB: refuse what would not fit."""
    size = len(event.model_dump_json())
    if size > MAX_CANONICAL_EVENT_BYTES:
        raise PayloadTooLarge(
            f"canonical event {event.source_event_id} is {size} bytes; the limit is "
            f"{MAX_CANONICAL_EVENT_BYTES} (EventBridge and Step Functions cap payloads at 256 KB)"
        )


def _event_type(event: EventEnvelope) -> str:
    return str(getattr(event, "event_type"))  # noqa: B009 - a Literal field defined per subclass


T = TypeVar("T")


def _once(compute: Callable[[], T]) -> Callable[[], T]:
    """`compute` on the first call, its result after (one raw put per delivery, however many events)."""
    results: list[T] = []

    def first_result() -> T:
        if not results:
            results.append(compute())
        return results[0]

    return first_result
