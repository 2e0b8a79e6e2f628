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

from pssync.connectors.crm import (
    contract_terms_from_dataverse_opportunity,
    contract_terms_from_hubspot_deal,
    contract_terms_from_salesforce_opportunity,
)
from pssync.errors import TransientDownstreamError
from pssync.ingest.schemes.base import RecordFetcher
from pssync.ingest.schemes.dataverse import OPPORTUNITY_WON
from pssync.ingest.schemes.hubspot import CLOSED_WON_STAGES
from pssync.ingest.schemes.salesforce_outbound import salesforce_datetime, salesforce_iso
from pssync.ingest.service import check_canonical_size
from pssync.ingest.sources import SourceConfig, SourceRegistry
from pssync.model.events import ClosedWonSignalled, ContractBooked, ContractBookedData
from pssync.ports import Deduplicator, EventPublisher

FetcherFactory = Callable[[SourceConfig], RecordFetcher | None]
# One signal per invocation (the inbox's batch size is 1): 20 s of the 30 s timeout for its reads, so a
# CRM that asks to wait (429 Retry-After at quarter end) is waited for instead of failing the message.
READ_BUDGET_SECONDS = 20.0


@dataclass(frozen=True)
class Resolution:
    booking_event_id: str
    published: bool  # False: booked before (a redelivery or replay), or dropped
    dropped: bool  # the record is no longer won: nothing to book


def _booking(
    signal: ClosedWonSignalled, data: ContractBookedData, source_version: str | None
) -> ContractBooked:
    return ContractBooked(
        event_id=signal.booking_event_id,
        source=signal.source,
        source_system=signal.source_system,
        source_event_id=signal.source_event_id,
        source_version=source_version,
        correlation_id=signal.correlation_id,
        causation_id=signal.event_id,
        occurred_at=signal.occurred_at,
        received_at=signal.received_at,
        lineage=signal.lineage,
        data=data,
    )


# A signal can be resolved days later (retries, a DLQ replay): what counts is the record's state now.


def book_hubspot_deal(signal: ClosedWonSignalled, fetcher: RecordFetcher) -> ContractBooked | None:
    deal = fetcher.fetch("deals", signal.data.record_id)
    stage = (deal.get("properties") or {}).get("dealstage")
    if stage is not None and stage not in CLOSED_WON_STAGES:
        return None  # moved out of closed won since HubSpot sent the event: not a booking
    data = ContractBookedData(
        closed_won_at=signal.data.closed_won_at, contract=contract_terms_from_hubspot_deal(deal)
    )
    return _booking(signal, data, signal.source_version)


def book_salesforce_opportunity(signal: ClosedWonSignalled, fetcher: RecordFetcher) -> ContractBooked | None:
    record = fetcher.fetch("Opportunity", signal.data.record_id)
    if record.get("IsWon") is False:
        return None  # reopened since the notification was sent: the latest state is not a booking
    # The record's own LastModifiedDate orders this booking against later amendments of the same deal.
    version = salesforce_datetime(record.get("LastModifiedDate")) or signal.occurred_at
    data = ContractBookedData(
        closed_won_at=signal.data.closed_won_at, contract=contract_terms_from_salesforce_opportunity(record)
    )
    return _booking(signal, data, salesforce_iso(version))


def book_dataverse_opportunity(signal: ClosedWonSignalled, fetcher: RecordFetcher) -> ContractBooked | None:
    record_id = signal.data.record_id
    record = fetcher.fetch("opportunity", record_id)
    if record.get("statecode", OPPORTUNITY_WON) != OPPORTUNITY_WON:
        return None  # reopened (or lost) since the Win: not a booking
    terms = contract_terms_from_dataverse_opportunity(record, record_id)
    data = ContractBookedData(closed_won_at=signal.data.closed_won_at, contract=terms)
    return _booking(signal, data, signal.source_version)


BOOKERS: dict[str, Callable[[ClosedWonSignalled, RecordFetcher], ContractBooked | None]] = {
    "hubspot-deal": book_hubspot_deal,
    "salesforce-opportunity": book_salesforce_opportunity,
    "dataverse-opportunity": book_dataverse_opportunity,
}


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

    def resolve(self, signal: ClosedWonSignalled) -> Resolution:
        """Raises on anything that should be retried and, if it persists, parked (the caller's queue)."""
        source = self._registry.get(signal.source)
        fetcher = self._fetchers(source)
        if fetcher is None:
            # Configuration: retried, then parked; replay once the source has its crm_api.
            raise TransientDownstreamError(f"source {source.name} has no crm_api to read the deal from")
        booked = BOOKERS[signal.data.record_type](signal, fetcher)
        if booked is None:
            return Resolution(signal.booking_event_id, published=False, dropped=True)
        check_canonical_size(booked)

        def publish() -> str:
            self._publisher.publish([booked])
            return booked.event_id

        # The signal's id as fingerprint: a replay after the CRM record changed is still the same booking
        # (later changes to a booked deal are amendments, not a second booking).
        outcome = self._deduplicator.once(
            key=f"{source.name}:{signal.source_event_id}:booked", fingerprint=signal.event_id, action=publish
        )
        return Resolution(outcome.value, published=outcome.first, dropped=False)
