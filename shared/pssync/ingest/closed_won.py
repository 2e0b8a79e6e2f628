"""Closed-won signals -> ContractBooked: read the CRM record behind a thin event, then book it once.

HubSpot, Salesforce outbound messages and a thin Dataverse Win say only "this deal closed won"; amount,
dates and the SOW terms must be read from the CRM. That read happens here, behind a queue, not in the
webhook: HubSpot gives up on an answer after 5 s, and a quarter-end batch of 100 closed-won deals is 100
reads. The webhook keeps
the raw delivery, dedupes on the source's event id and publishes a `ClosedWonSignalled`; this resolver
reads the record with retries, and a record that cannot be read or mapped (CRM down, token revoked, SOW
terms missing) fails its queue message, is retried, and is parked in the DLQ for `pssync dlq replay`
once the cause is fixed, instead of being refused to a sender that will not send it again.

The booking is published once per signal (dedupe key `<source>:<source event id>:booked`) under the id a
direct booking would have had, so downstream execution names do not depend on the path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pssync.errors import BusinessRuleViolation, TransientDownstreamError
from pssync.ingest.service import check_canonical_size
from pssync.model.events import ClosedWonSignalled
from pssync.model.queued import QueuedEvent
from pssync.model.sources import SourceConfig, SourceRegistry
from pssync.ports import Deduplicator, EventPublisher, RecordFetcher
from pssync.sources import booker_for

FetcherFactory = Callable[[SourceConfig], RecordFetcher | None]
# One signal per invocation (the inbox's batch size is 1): 20 s of the 30 s timeout for its reads, so a
# CRM that asks to wait (429 Retry-After at quarter end) is waited for instead of failing the message.
READ_BUDGET_SECONDS = 20.0


@dataclass(frozen=True)
class Resolution:
    signal: str
    source: str
    booking_event_id: str
    published: bool  # False: booked before (a redelivery or replay), or dropped
    dropped: bool  # the record is no longer won: nothing to book


# A signal can be resolved days later (retries, a DLQ replay): what counts is the record's state now,
# which each vendor's booker reads (pssync.sources.<vendor>).


class ClosedWonResolver:
    def __init__(
        self,
        registry: SourceRegistry,
        fetchers: FetcherFactory,
        deduplicator: Deduplicator,
        publisher: EventPublisher,
    ) -> None:
        self._registry = registry
        self._fetchers = fetchers
        self._deduplicator = deduplicator
        self._publisher = publisher

    def resolve_queued(self, queued: QueuedEvent) -> Resolution:
        """A message of the closed-won inbox: it must hold a ClosedWonSignalled."""
        signal = queued.canonical()
        if not isinstance(signal, ClosedWonSignalled):
            raise BusinessRuleViolation(f"{signal.event_id} is not a ClosedWonSignalled", code="bad_message")
        return self.resolve(signal)

    def resolve(self, signal: ClosedWonSignalled) -> Resolution:
        """Raises on anything that should be retried and, if it persists, parked (the caller's queue)."""
        source = self._registry.get(signal.source)
        fetcher = self._fetchers(source)
        if fetcher is None:
            # Configuration: retried, then parked; replay once the source has its crm_api.
            raise TransientDownstreamError(f"source {source.name} has no crm_api to read the deal from")
        booked = booker_for(signal.data.record_type)(signal, fetcher)
        if booked is None:
            return Resolution(
                signal.event_id, source.name, signal.booking_event_id, published=False, dropped=True
            )
        check_canonical_size(booked)

        def publish() -> str:
            self._publisher.publish([booked])
            return booked.event_id

        # The signal's id as fingerprint: a replay after the CRM record changed is still the same booking
        # (later changes to a booked deal are amendments, not a second booking).
        outcome = self._deduplicator.once(
            key=f"{source.name}:{signal.source_event_id}:booked", fingerprint=signal.event_id, action=publish
        )
        return Resolution(signal.event_id, source.name, outcome.value, published=outcome.first, dropped=False)
