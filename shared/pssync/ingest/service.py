"""The ingest use case: one inbound delivery in, at most one canonical event out."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pssync.errors import PayloadTooLarge
from pssync.ingest.normalise import normalise_standard_webhooks
from pssync.ingest.request import RawRequest
from pssync.ingest.sources import SignatureScheme, SourceConfig, SourceRegistry
from pssync.ingest.verification import VERIFIERS, VerifiedDelivery
from pssync.model.events import EventEnvelope
from pssync.ports import Clock, Deduplicator, EventPublisher, SecretsPort

Normaliser = Callable[[SourceConfig, VerifiedDelivery, bytes, datetime], EventEnvelope]
NORMALISERS: dict[SignatureScheme, Normaliser] = {
    SignatureScheme.STANDARD_WEBHOOKS: normalise_standard_webhooks
}


@dataclass(frozen=True)
class IngestResult:
    event_id: str
    event_type: str | None
    duplicate: bool


class IngestService:
    def __init__(
        self,
        registry: SourceRegistry,
        secrets: SecretsPort,
        publisher: EventPublisher,
        deduplicator: Deduplicator,
        clock: Clock,
    ) -> None:
        self._registry = registry
        self._secrets = secrets
        self._publisher = publisher
        self._deduplicator = deduplicator
        self._clock = clock

    def ingest(self, source_name: str, request: RawRequest) -> IngestResult:
        """Verify, normalise, dedupe, publish. Raises IngestRejected subclasses; writes nothing then."""
        source = self._registry.get(source_name)
        if len(request.body) > source.max_body_bytes:
            raise PayloadTooLarge(f"body is {len(request.body)} bytes; the limit is {source.max_body_bytes}")
        now = self._clock.now()
        delivery = VERIFIERS[source.scheme].verify(
            request, source, self._secrets.signing_secrets(source.secret_id), now
        )
        event = NORMALISERS[source.scheme](source, delivery, request.body, now)

        def publish() -> str:
            self._publisher.publish([event])
            return event.event_id

        # The key is the source's own event id, never a transport id: redeliveries collapse onto it.
        outcome = self._deduplicator.once(
            key=f"{source.name}:{delivery.delivery_id}",
            fingerprint=hashlib.sha256(request.body).hexdigest(),
            action=publish,
        )
        return IngestResult(
            event_id=outcome.value,
            event_type=str(getattr(event, "event_type", "")) or None,
            duplicate=not outcome.first,
        )
