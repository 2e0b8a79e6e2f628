"""HubSpot webhooks (app subscriptions): signature v3, legacy v1/v2 on request, thin event batches.

Verification (https://developers.hubspot.com/docs/api/webhooks/validating-requests):
- v3: `X-HubSpot-Signature-v3` = base64(HMAC-SHA256(client secret, method + URI + body + timestamp)),
  `X-HubSpot-Request-Timestamp` in epoch milliseconds, refused when more than `tolerance_seconds` old or
  ahead. The URI is the URL HubSpot called: `source.public_url` (plus the query string we received) when
  configured, since API Gateway only shows us the path; a fixed set of percent-escapes is decoded first.
- v1/v2 (only with `legacy_signatures`): `X-HubSpot-Signature` = hex SHA-256 of secret + body (v1) or
  secret + method + URI + body (v2), selected by `X-HubSpot-Signature-Version`. No timestamp.

Normalisation: the body is an array of up to 100 thin events. Every event's `portalId` must be one of
ours (403 otherwise, for the whole delivery). Events from our own writes (`changeSource` or `sourceId`
in `own_client_ids`) are dropped. `appId` is deliberately not compared: it is the id of the app that
*receives* the webhook, i.e. ours on every event. A `deal.propertyChange` of `dealstage` to
`closedwon` becomes a ClosedWonSignalled (the closed-won resolver reads the deal behind a queue and
books it); a `deal.propertyChange` of a property that can change the contract (`AMENDABLE_PROPERTIES`:
subscribe to each) becomes a ClosedWonSignalled of kind `changed` (the resolver reads the deal, drops
it unless it is won, and amends its contract only when the terms differ from the head version);
everything else (owner, probability, description, ...) is acknowledged without an event.
One signal per deal and delivery: HubSpot sends one event per changed property (a deal saved closed won
with a new amount is two events in one batch), and the resolver reads the whole deal anyway; the
closed-won event, else the latest change, stands for the deal (two signals racing to book one deal
would be refused as a second booking of the same contract).
Dedupe id per event: portalId-subscriptionId-eventId-occurredAt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pssync.errors import (
    MalformedDelivery,
    SignatureInvalid,
    StaleDelivery,
    UnknownTenant,
    UnprocessableDelivery,
)
from pssync.model.contract import ContractTerms
from pssync.model.events import ClosedWonSignalled
from pssync.model.sources import SourceConfig
from pssync.ports import IngestResult, JsonReader, NormalisedEvent, RecordFetcher, SigningSecrets
from pssync.sources.base import (
    HttpReply,
    NormaliseContext,
    fingerprint_of,
    json_acknowledgement,
    parse_json_body,
)
from pssync.sources.crm_terms import (
    ContractMappingError,
    WonRecord,
    check_amount,
    checked_id,
    read_record,
    terms_from_json,
    with_crm_identity,
)
from pssync.sources.request import RawRequest
from pssync.sources.verification import VerifiedDelivery, epoch_instant, matches_any

MAX_EVENTS_PER_DELIVERY = 100
CLOSED_WON_STAGES = frozenset({"closedwon"})
# Deal properties whose change can change the contract: the SOW terms, and the amount and currency the
# terms are checked against (line items roll up into `amount`). Dates live in the SOW terms.
AMENDABLE_PROPERTIES = frozenset({"pssync_contract_json", "amount", "deal_currency_code"})
# HubSpot decodes exactly these escapes before signing (its docs list them); others stay encoded.
_URI_DECODES = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


class HubSpotEvent(BaseModel):
    """One thin event. Unknown fields are kept out of the model but stay in the fingerprint."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: int = Field(alias="eventId")
    subscription_id: int = Field(alias="subscriptionId")
    portal_id: int = Field(alias="portalId")
    app_id: int | None = Field(None, alias="appId")
    occurred_at: int = Field(alias="occurredAt", ge=0)
    subscription_type: str = Field(alias="subscriptionType")
    attempt_number: int = Field(0, alias="attemptNumber")
    object_id: int | None = Field(None, alias="objectId")
    property_name: str | None = Field(None, alias="propertyName")
    property_value: str | None = Field(None, alias="propertyValue")
    change_source: str | None = Field(None, alias="changeSource")
    source_id: str | None = Field(None, alias="sourceId")

    @property
    def dedupe_id(self) -> str:
        return f"{self.portal_id}-{self.subscription_id}-{self.event_id}-{self.occurred_at}"

    @property
    def closes_deal_won(self) -> bool:
        return (
            self.subscription_type == "deal.propertyChange"
            and self.property_name == "dealstage"
            and self.property_value in CLOSED_WON_STAGES
            and self.object_id is not None
        )

    @property
    def may_amend_deal(self) -> bool:
        """A change that may amend the deal's contract, if the deal is won: the resolver reads and decides."""
        return (
            self.subscription_type == "deal.propertyChange"
            and self.property_name in AMENDABLE_PROPERTIES
            and self.object_id is not None
        )


def v3_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> bytes:
    message = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest())


def legacy_signature(secret: str, version: str, method: str, uri: str, body: bytes) -> bytes:
    """v1: sha256(secret + body); v2: sha256(secret + method + URI + body); hex, no HMAC."""
    prefix = secret.encode() if version == "v1" else (secret + method + uri).encode()
    return hashlib.sha256(prefix + body).hexdigest().encode()


def signed_uri(request: RawRequest, source: SourceConfig) -> str:
    uri = request.url
    if source.public_url is not None:
        query = urlsplit(request.url).query
        uri = str(source.public_url) + (f"?{query}" if query else "")
    for escape, char in _URI_DECODES.items():
        uri = uri.replace(escape, char).replace(escape.lower(), char)
    return uri


class HubSpotScheme:
    media_type = "application/json"

    def verify(
        self, request: RawRequest, source: SourceConfig, secrets: SigningSecrets | None, now: datetime
    ) -> VerifiedDelivery:
        if secrets is None:
            raise SignatureInvalid("no client secret is configured for this source")
        delivery_id = hashlib.sha256(request.body).hexdigest()
        uri = signed_uri(request, source)
        if "x-hubspot-signature-v3" in request.headers or not source.legacy_signatures:
            signature = request.single_header("X-HubSpot-Signature-v3").encode()
            timestamp = request.single_header("X-HubSpot-Request-Timestamp")
            sent_at = epoch_instant(timestamp, milliseconds=True, what="X-HubSpot-Request-Timestamp")
            skew = (now - sent_at).total_seconds()
            if abs(skew) > source.tolerance_seconds:
                direction = "old" if skew > 0 else "in the future"
                raise StaleDelivery(
                    f"X-HubSpot-Request-Timestamp is {int(abs(skew))} s {direction} "
                    f"(limit {source.tolerance_seconds} s)"
                )
            expected = [v3_signature(s, request.method, uri, request.body, timestamp) for s in secrets.all()]
            if matches_any(signature, expected):
                return VerifiedDelivery(delivery_id=delivery_id, sent_at=sent_at)
            raise SignatureInvalid("X-HubSpot-Signature-v3 matches no configured client secret")

        signature = request.single_header("X-HubSpot-Signature").lower().encode()
        version = request.single_header("X-HubSpot-Signature-Version")
        if version not in ("v1", "v2"):
            raise SignatureInvalid("X-HubSpot-Signature-Version must be v1 or v2")
        expected = [legacy_signature(s, version, request.method, uri, request.body) for s in secrets.all()]
        if matches_any(signature, expected):
            return VerifiedDelivery(delivery_id=delivery_id, sent_at=None)
        raise SignatureInvalid(f"X-HubSpot-Signature ({version}) matches no configured client secret")

    def normalise(self, context: NormaliseContext) -> list[NormalisedEvent]:
        documents = _parse(context.body)
        try:
            events = [HubSpotEvent.model_validate(d) for d in documents]
        except ValidationError as error:
            raise UnprocessableDelivery(
                f"HubSpot event does not match the documented shape: {error}"
            ) from None
        # A deal event always names its deal: without objectId a closed-won change would be skipped
        # silently (a booking lost), so the whole delivery is refused, like any other shape error.
        nameless = [
            e.event_id for e in events if e.subscription_type.startswith("deal.") and e.object_id is None
        ]
        if nameless:
            raise UnprocessableDelivery(
                f"HubSpot event does not match the documented shape: deal event(s) {nameless} "
                "without objectId"
            )
        # Tenancy for the whole delivery before any fetch or write: one foreign portal refuses it all.
        foreign = sorted({str(e.portal_id) for e in events} - set(context.source.tenants))
        if foreign:
            raise UnknownTenant(f"portal(s) {', '.join(foreign)} are not configured for this source")
        own = set(context.source.own_client_ids)
        per_deal: dict[int, tuple[dict[str, Any], HubSpotEvent]] = {}
        for document, event in zip(documents, events, strict=True):
            if own & {event.change_source, event.source_id}:
                continue  # our own write coming back: no sync loop
            if not (event.closes_deal_won or event.may_amend_deal):
                continue  # acknowledged, but not a canonical business event
            deal = event.object_id
            if deal is None:  # cannot happen: nameless deal events refused the delivery above
                continue
            chosen = per_deal.get(deal)
            if chosen is None or _stands_for_the_deal(event, over=chosen[1]):
                per_deal[deal] = (document, event)
        return [_closed_won_signal(document, event, context) for document, event in per_deal.values()]

    def acknowledge(self, result: IngestResult) -> HttpReply:
        return json_acknowledgement(result)


def _parse(body: bytes) -> list[dict[str, Any]]:
    document = parse_json_body(body)
    if not isinstance(document, list) or not all(isinstance(d, dict) for d in document):
        raise MalformedDelivery("body must be a JSON array of event objects")
    if not document:
        raise MalformedDelivery("body holds no events")
    if len(document) > MAX_EVENTS_PER_DELIVERY:
        raise MalformedDelivery(f"body holds {len(document)} events; HubSpot sends at most 100")
    return document


def _stands_for_the_deal(event: HubSpotEvent, *, over: HubSpotEvent) -> bool:
    """The closed-won event, else the latest change (ties: the first one sent)."""
    if event.closes_deal_won != over.closes_deal_won:
        return event.closes_deal_won
    return event.occurred_at > over.occurred_at


def _closed_won_signal(
    document: dict[str, Any], event: HubSpotEvent, context: NormaliseContext
) -> NormalisedEvent:
    """The deal is read by the closed-won resolver behind a queue: HubSpot waits 5 s, a batch holds 100."""
    occurred_at = epoch_instant(event.occurred_at, milliseconds=True, what="occurredAt")
    source = context.source
    signal = ClosedWonSignalled.of(
        source=source.name,
        source_system=source.system,
        source_event_id=event.dedupe_id,
        source_version=str(event.occurred_at),
        closed_won_at=occurred_at,
        received_at=context.received_at,
        record_type="hubspot-deal",
        record_id=str(event.object_id),
        kind="closed_won" if event.closes_deal_won else "changed",
    )
    # attemptNumber changes on every retry of the same event: outside the fingerprint, or each
    # redelivery would read as "same id, different body".
    sent = {k: v for k, v in document.items() if k != "attemptNumber"}
    return NormalisedEvent(event=signal, fingerprint=fingerprint_of(sent))


# --- the deal behind a thin event --------------------------------------------------------------------

DEAL_PROPERTIES = (
    "dealname",
    "amount",
    "deal_currency_code",
    "dealstage",
    "closedate",
    "hs_lastmodifieddate",
    "pssync_contract_json",
)


class HubSpotRecordFetcher:
    """`fetch("deals", id)`: GET /crm/v3/objects/deals/{id} with the properties and associations used."""

    def __init__(self, http: JsonReader) -> None:
        self._http = http

    def fetch(self, object_type: str, object_id: str) -> dict[str, Any]:
        if object_type != "deals":
            raise ValueError(f"HubSpot fetcher reads deals, not {object_type!r}")
        return read_record(
            self._http,
            f"/crm/v3/objects/deals/{quote(checked_id(object_id))}",
            {"properties": ",".join(DEAL_PROPERTIES), "associations": "line_items,companies"},
        )


def contract_terms_from_deal(deal: dict[str, Any]) -> ContractTerms:
    """HubSpot line items are only associated ids here and are not mapped: obligations, recognition and
    billing come from the SOW terms (see pssync.sources.crm_terms)."""
    properties = deal.get("properties") or {}
    deal_id = str(deal.get("id") or "")
    terms = terms_from_json(properties.get("pssync_contract_json"), f"HubSpot deal {deal_id}")
    check_amount(terms, properties.get("amount"), properties.get("deal_currency_code"), f"deal {deal_id}")
    companies = ((deal.get("associations") or {}).get("companies") or {}).get("results") or []
    primary = next((c for c in companies if c.get("type") == "deal_to_company"), None) or next(
        iter(companies), None
    )
    return with_crm_identity(terms, deal_id, "hubspot", str(primary["id"]) if primary else None)


def read_won_deal(signal: ClosedWonSignalled, fetcher: RecordFetcher) -> WonRecord | None:
    """The deal behind a signal as it is now (None: moved out of closed won since). A booking from it is
    ordered by the event's occurredAt, an amendment by the deal's `hs_lastmodifieddate`."""
    deal = fetcher.fetch("deals", signal.data.record_id)
    properties = deal.get("properties") or {}
    stage = properties.get("dealstage")
    if stage is not None and stage not in CLOSED_WON_STAGES:
        return None
    return WonRecord(
        terms=contract_terms_from_deal(deal),
        modified_at=_last_modified(properties.get("hs_lastmodifieddate"), str(deal.get("id") or "")),
        booking_version=signal.source_version,
    )


def _last_modified(value: Any, deal_id: str) -> datetime | None:
    """ISO 8601 in the CRM API's v3 answers; epoch milliseconds where HubSpot spells datetimes that way."""
    if value is None or value == "":
        return None
    text = str(value)
    try:
        if text.isdecimal():
            return epoch_instant(text, milliseconds=True, what="hs_lastmodifieddate")
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, MalformedDelivery):
        raise ContractMappingError(f"deal {deal_id}: hs_lastmodifieddate {text!r} is not a date") from None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)
