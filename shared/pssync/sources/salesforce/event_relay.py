"""Salesforce Platform Events and Change Data Capture delivered by Event Relay to an EventBridge partner bus.

There is no HTTP endpoint and no signature: the partner event source itself is the proof of origin (only
Salesforce can publish to `aws.partner/salesforce.com/<orgId>/<channelId>`), and the organisation id in it
must still be one of the source's tenants.

Dedupe id: the Salesforce event UUID (`detail.id` of the relayed event, or `EventUuid` in the payload). It is
stable across Event Relay redeliveries and across SQS redeliveries; the EventBridge envelope `id` is used only
when neither is present, and the SQS message id never (it changes on every send).
A CDC event can name several records (`recordIds`): it fans out to one canonical event per record, with
source event id `<event uuid>:<record id>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pssync.errors import MalformedDelivery, UnknownTenant, UnprocessableDelivery
from pssync.model.contract import ContractTerms
from pssync.model.events import ContractBooked, ContractBookedData, canonical_event_id
from pssync.model.sources import SignatureScheme, SourceConfig, SourceRegistry
from pssync.ports import NormalisedEvent, RecordFetcher
from pssync.sources.base import fingerprint_of
from pssync.sources.salesforce.records import (
    CLOSED_WON_STAGES,
    CONTRACT_TERMS_FIELD,
    OPPORTUNITY,
    contract_terms_from_opportunity,
    is_won,
)
from pssync.sources.verification import epoch_instant

PARTNER_SOURCE_PREFIX = "aws.partner/salesforce.com/"
OPPORTUNITY_CHANGE_EVENT = "OpportunityChangeEvent"
CLOSED_WON_EVENT = "Opportunity_Closed_Won__e"
# Stage changes are what can make an opportunity won; other updates of an opportunity are not a booking.
_WIN_FIELDS = frozenset({"StageName", "IsWon"})
_GAP_PREFIX = "GAP_"


def org_id_of(envelope: Mapping[str, Any]) -> str | None:
    """From the partner event source name, else from the payload (OrgId / OrganizationId)."""
    source = str(envelope.get("source", ""))
    if source.startswith(PARTNER_SOURCE_PREFIX):
        parts = source[len(PARTNER_SOURCE_PREFIX) :].split("/")
        if parts and parts[0]:
            return parts[0]
    payload = _payload(envelope)
    for key in ("OrgId", "OrganizationId"):
        if isinstance(payload.get(key), str) and payload[key]:
            return str(payload[key])
    return None


def event_uuid_of(envelope: Mapping[str, Any]) -> str:
    detail = envelope.get("detail") or {}
    for candidate in (detail.get("id"), _payload(envelope).get("EventUuid"), envelope.get("id")):
        if isinstance(candidate, str) and candidate:
            return candidate
    raise MalformedDelivery("relayed event carries no event UUID (detail.id, EventUuid or id)")


def same_org(org_id: str, tenant: str) -> bool:
    """Salesforce org ids come as 15 or 18 characters; the first 15 identify the org (case-sensitive)."""
    return org_id == tenant or (len(org_id) >= 15 and len(tenant) >= 15 and org_id[:15] == tenant[:15])


def relay_source_for(registry: SourceRegistry, org_id: str | None) -> SourceConfig:
    """The salesforce-event-relay source whose tenants name this organisation."""
    for source in registry:
        relay = source.scheme is SignatureScheme.SALESFORCE_EVENT_RELAY
        if relay and org_id and any(same_org(org_id, tenant) for tenant in source.tenants):
            return source
    raise UnknownTenant(f"no salesforce-event-relay source lists organisation {org_id!r}")


def _payload(envelope: Mapping[str, Any]) -> dict[str, Any]:
    detail = envelope.get("detail")
    if not isinstance(detail, dict):
        return {}
    payload = detail.get("payload")
    return payload if isinstance(payload, dict) else {}


def _client_ids(change_origin: str) -> set[str]:
    """`com/salesforce/api/rest/61.0;client=<id>` -> {<id>}."""
    ids = set()
    for part in change_origin.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "client" and value:
            ids.add(value)
    return ids


def _ms(value: Any) -> datetime:
    return epoch_instant(value, milliseconds=True, what="commitTimestamp")


def _instant(value: Any, fallback: datetime) -> datetime:
    if not isinstance(value, str) or not value:
        return fallback
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class EventRelayNormaliser:
    """One relayed EventBridge event in, zero or more ContractBooked events out.

    `fetcher` reads the authoritative Opportunity for thin events (CDC UPDATE, UNDELETE and GAP_*, and
    platform events without terms); it is injected so tests pass a fake and the Lambda the CRM connector.
    """

    def __init__(self, fetcher: RecordFetcher | None = None) -> None:
        self._fetcher = fetcher

    def normalise(
        self, source: SourceConfig, envelope: Mapping[str, Any], received_at: datetime
    ) -> list[NormalisedEvent]:
        org_id = org_id_of(envelope)
        if org_id is None or not any(same_org(org_id, tenant) for tenant in source.tenants):
            raise UnknownTenant(f"organisation {org_id!r} is not a tenant of source {source.name}")
        detail = envelope.get("detail")
        if not isinstance(detail, dict) or not isinstance(detail.get("payload"), dict):
            raise MalformedDelivery("relayed event has no detail.payload object")
        payload: dict[str, Any] = detail["payload"]
        detail_type = str(envelope.get("detail-type", ""))
        if "ChangeEventHeader" in payload:
            return self._change_event(source, envelope, payload, received_at)
        if detail_type == CLOSED_WON_EVENT or detail.get("schema", "").endswith(CLOSED_WON_EVENT):
            return self._closed_won_event(source, envelope, payload, received_at)
        return []  # other platform events on the channel are not ours to interpret

    # --- Change Data Capture -------------------------------------------------------------------------

    def _change_event(
        self,
        source: SourceConfig,
        envelope: Mapping[str, Any],
        payload: dict[str, Any],
        received_at: datetime,
    ) -> list[NormalisedEvent]:
        header = payload["ChangeEventHeader"]
        if not isinstance(header, dict):
            raise MalformedDelivery("ChangeEventHeader is not an object")
        if header.get("entityName") != OPPORTUNITY:
            return []
        if _client_ids(str(header.get("changeOrigin") or "")) & set(source.own_client_ids):
            return []  # our own write coming back: no sync loop
        change_type = str(header.get("changeType", ""))
        record_ids = [str(r) for r in header.get("recordIds") or [] if r]
        if not record_ids:
            raise MalformedDelivery("ChangeEventHeader.recordIds is empty")
        if change_type in ("DELETE", "GAP_DELETE"):
            return []  # a deleted opportunity books nothing
        changed = set(header.get("changedFields") or [])
        fields = {k: v for k, v in payload.items() if k != "ChangeEventHeader"}
        if change_type == "UPDATE":
            if not changed & _WIN_FIELDS:
                return []
            if "StageName" in fields and not is_won(fields):
                return []  # moved to another stage: nothing to fetch
        committed_at = _ms(header.get("commitTimestamp"))
        version = (
            f"{header.get('commitTimestamp')}:{header.get('commitNumber')}:"
            f"{header.get('transactionKey')}:{header.get('sequenceNumber')}"
        )
        event_uuid = event_uuid_of(envelope)
        thin = change_type.startswith(_GAP_PREFIX) or change_type in ("UPDATE", "UNDELETE")
        results = []
        for record_id in record_ids:
            record = self._fetch(record_id) if thin else {**fields, "Id": record_id}
            if not is_won(record):
                continue
            if CONTRACT_TERMS_FIELD not in record:
                record = self._fetch(record_id)  # a CREATE without the terms field: ask the CRM
            terms = contract_terms_from_opportunity(record)
            source_event_id = f"{event_uuid}:{record_id}"
            results.append(
                NormalisedEvent(
                    event=_contract_booked(
                        source, source_event_id, version, terms, committed_at, committed_at, received_at
                    ),
                    fingerprint=fingerprint_of({"detail": envelope.get("detail"), "record_id": record_id}),
                )
            )
        return results

    # --- the custom platform event -------------------------------------------------------------------

    def _closed_won_event(
        self,
        source: SourceConfig,
        envelope: Mapping[str, Any],
        payload: dict[str, Any],
        received_at: datetime,
    ) -> list[NormalisedEvent]:
        opportunity_id = payload.get("Opportunity_Id__c")
        if not isinstance(opportunity_id, str) or not opportunity_id:
            raise MalformedDelivery(f"{CLOSED_WON_EVENT} has no Opportunity_Id__c")
        stage = payload.get("Stage__c")
        if stage is not None and stage not in CLOSED_WON_STAGES:
            return []
        occurred_at = _instant(payload.get("CreatedDate") or envelope.get("time"), received_at)
        closed_won_at = _instant(payload.get("Closed_Won_At__c"), occurred_at)
        if payload.get("Contract_Terms__c") is not None:
            terms_json = payload["Contract_Terms__c"]
            record: Mapping[str, Any] = {"Id": opportunity_id, CONTRACT_TERMS_FIELD: terms_json}
        else:
            record = self._fetch(opportunity_id)
        terms = contract_terms_from_opportunity(record)
        version = str(payload.get("Source_Version__c") or payload.get("CreatedDate") or "") or None
        event = _contract_booked(
            source, event_uuid_of(envelope), version, terms, closed_won_at, occurred_at, received_at
        )
        return [NormalisedEvent(event=event, fingerprint=fingerprint_of(envelope.get("detail")))]

    def _fetch(self, opportunity_id: str) -> dict[str, Any]:
        if self._fetcher is None:
            raise UnprocessableDelivery(
                f"opportunity {opportunity_id} must be fetched, but the source has no CRM API configured"
            )
        return self._fetcher.fetch(OPPORTUNITY, opportunity_id)


def _contract_booked(
    source: SourceConfig,
    source_event_id: str,
    source_version: str | None,
    terms: ContractTerms,
    closed_won_at: datetime,
    occurred_at: datetime,
    received_at: datetime,
) -> ContractBooked:
    event_id = canonical_event_id(source.name, source_event_id)
    return ContractBooked(
        event_id=event_id,
        source=source.name,
        source_system=source.system,
        source_event_id=source_event_id,
        source_version=source_version,
        correlation_id=event_id,
        occurred_at=occurred_at,
        received_at=received_at,
        data=ContractBookedData(closed_won_at=closed_won_at, contract=terms),
    )
