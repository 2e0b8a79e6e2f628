"""Closed-won signals -> ContractBooked or ContractAmended: read the CRM record behind a thin event, then
book it once, amend its contract, or do nothing.

HubSpot, Salesforce outbound messages and a thin Dataverse Win say only "this deal closed won" (or "this
won deal changed"); amount, dates and the SOW terms must be read from the CRM. That read happens here,
behind a queue, not in the webhook: HubSpot gives up on an answer after 5 s, and a quarter-end batch of
100 closed-won deals is 100 reads. The webhook keeps the raw delivery, dedupes on the source's event id
and publishes a `ClosedWonSignalled`; this resolver reads the record with retries, and a record that
cannot be read or mapped (CRM down, token revoked, SOW terms missing) fails its queue message, is
retried, and is parked in the DLQ for `pssync dlq replay` once the cause is fixed, instead of being
refused to a sender that will not send it again.

What the record is now decides, whatever kind of signal brought it (a signal can be resolved days later):
- not won (any more): dropped, with the reason;
- won, and no version of its contract is recorded: booked, once per signal (dedupe key
  `<source>:<source event id>:booked`) under the id a direct booking would have had, so downstream
  execution names do not depend on the path;
- won and booked: its terms (the booking's mapping) are diffed against the contract's head version
  (pssync.ingest.crm_amendments); a contractual change is published once per signal as a
  ContractAmended (`<source>:<source event id>:amended`), which the propagate-amendment workflow's version
  guard orders by the record's last-modified stamp; no contractual change publishes nothing.
A signal whose booking or amendment is recorded already (a redelivery, a replay) publishes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pssync.errors import BusinessRuleViolation, TransientDownstreamError
from pssync.ingest.crm_amendments import (
    CONTRACT_AGGREGATE,
    contractual_changes,
    crm_amendment,
    head_effective_date,
)
from pssync.ingest.service import check_canonical_size
from pssync.model.contract import ContractTerms
from pssync.model.events import ClosedWonSignalled, ContractBookedData, EventEnvelope
from pssync.model.queued import QueuedEvent
from pssync.model.sources import SourceConfig, SourceRegistry
from pssync.ports import Deduplicator, EventPublisher, RecordFetcher, StoredVersion, VersionStore
from pssync.sources import won_record_reader_for
from pssync.sources.crm_terms import ContractMappingError, WonRecord

FetcherFactory = Callable[[SourceConfig], RecordFetcher | None]
# One signal per invocation (the inbox's batch size is 1): 20 s of the 30 s timeout for its reads, so a
# CRM that asks to wait (429 Retry-After at quarter end) is waited for instead of failing the message.
READ_BUDGET_SECONDS = 20.0

Outcome = Literal["booked", "amended", "unchanged", "not_won"]


@dataclass(frozen=True)
class Resolution:
    signal: str
    source: str
    outcome: Outcome
    event_id: str | None  # the ContractBooked / ContractAmended this signal resolved to, if any
    published: bool  # False: published or recorded before (a redelivery or replay), or nothing to publish
    reason: str

    @property
    def dropped(self) -> bool:
        """The record is no longer won: nothing to book or amend."""
        return self.outcome == "not_won"


class ClosedWonResolver:
    def __init__(
        self,
        registry: SourceRegistry,
        fetchers: FetcherFactory,
        deduplicator: Deduplicator,
        publisher: EventPublisher,
        contracts: VersionStore,
    ) -> None:
        """`contracts`: the business table's versions, read only (the head version decides between booking
        and amending)."""
        self._registry = registry
        self._fetchers = fetchers
        self._deduplicator = deduplicator
        self._publisher = publisher
        self._contracts = contracts

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
        record = won_record_reader_for(signal.data.record_type)(signal, fetcher)
        if record is None:
            return Resolution(
                signal.event_id, source.name, "not_won", None, False, "the deal is not won (any more)"
            )
        history = self._contracts.history(CONTRACT_AGGREGATE, record.terms.contract_id)
        if not history:
            return self._book(signal, source, record)
        mine = _recorded_by(history, {signal.booking_event_id, signal.amendment_event_id})
        if mine is not None:
            outcome: Outcome = "booked" if mine.caused_by_event_id == signal.booking_event_id else "amended"
            return Resolution(
                signal.event_id, source.name, outcome, mine.caused_by_event_id, False,
                f"recorded before as v{mine.version}",
            )  # fmt: skip
        return self._amend(signal, source, record, history[-1])

    def _book(self, signal: ClosedWonSignalled, source: SourceConfig, record: WonRecord) -> Resolution:
        booked = signal.booking(
            ContractBookedData(closed_won_at=signal.data.closed_won_at, contract=record.terms),
            record.booking_version,
        )
        # The signal's id as fingerprint: a replay after the CRM record changed is still the same booking
        # (later changes to a booked deal are amendments, not a second booking).
        published = self._publish_once(f"{source.name}:{signal.source_event_id}:booked", signal, booked)
        return Resolution(
            signal.event_id, source.name, "booked", booked.event_id, published, "no contract is recorded yet"
        )

    def _amend(
        self, signal: ClosedWonSignalled, source: SourceConfig, record: WonRecord, head: StoredVersion
    ) -> Resolution:
        head_terms = ContractTerms.model_validate(head.body["terms"])
        booked_from = head_terms.crm_opportunity_id
        if booked_from and booked_from != record.terms.crm_opportunity_id:
            raise ContractMappingError(
                f"contract {head_terms.contract_id} belongs to CRM record {booked_from}, not to "
                f"{signal.data.record_type} {signal.data.record_id}: its SOW terms name the wrong contract"
            )
        changes = contractual_changes(head_terms, record.terms)
        if not changes:
            return Resolution(
                signal.event_id, source.name, "unchanged", None, False,
                f"nothing contractual differs from v{head.version}",
            )  # fmt: skip
        amended = crm_amendment(
            signal, record, head_effective=head_effective_date(head.body, head_terms), changes=changes
        )
        published = self._publish_once(f"{source.name}:{signal.source_event_id}:amended", signal, amended)
        return Resolution(
            signal.event_id, source.name, "amended", amended.event_id, published,
            f"{', '.join(changes)} differ from v{head.version}",
        )  # fmt: skip

    def _publish_once(self, key: str, signal: ClosedWonSignalled, event: EventEnvelope) -> bool:
        check_canonical_size(event)

        def publish() -> str:
            self._publisher.publish([event])
            return event.event_id

        return self._deduplicator.once(key=key, fingerprint=signal.event_id, action=publish).first


def _recorded_by(history: list[StoredVersion], event_ids: set[str]) -> StoredVersion | None:
    return next((v for v in history if v.caused_by_event_id in event_ids), None)
