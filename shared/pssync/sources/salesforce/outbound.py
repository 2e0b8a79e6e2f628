"""Salesforce Outbound Messages (workflow / flow SOAP notifications).

Outbound messages cannot be signed. What we check, all before anything is written:
- a shared key, compared in constant time with the current and previous secret. Salesforce cannot add
  headers to an outbound message, but its endpoint URL is free-form, so the key normally travels as the
  query parameter `?key=<secret>` of the configured endpoint URL; a proxy or test client may send it in
  header `x-pssync-key` instead. Exactly one of the two must be present (both, or either repeated, is
  refused: no ambiguity about which one was checked);
- the `OrganizationId` of the envelope is one of `tenants` (15- or 18-character id), else 403;
- the body must be UTF-8, decoded strictly and whole, without a BOM or another declared encoding; the
  XML is parsed with defusedxml, which refuses any DTD, entity declaration or external reference (400):
  no entity expansion can change what a notification says.

Each `Notification` is deduplicated on its `Id`. Salesforce sends only the record's latest data (a retry
can carry newer field values under the same notification id), so a closed-won Opportunity (StageName
`Closed Won` or IsWon `true`) becomes a ClosedWonSignalled; the closed-won resolver reads the record
behind a queue and books it (or drops it if it was reopened). The fingerprint covers the notification's
identity (Id, sObject type and Id), not its field values, for the same reason. Own writes: when the
message includes `LastModifiedById` and it is in `own_client_ids` (our integration user), it is dropped.
The reply is the SOAP Ack Salesforce expects; anything else makes it retry (for up to 24 h).
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from pssync.errors import (
    MalformedDelivery,
    SignatureInvalid,
    UnknownTenant,
    UnprocessableDelivery,
)
from pssync.model.events import ClosedWonSignalled
from pssync.model.sources import SourceConfig
from pssync.ports import IngestResult, NormalisedEvent, SigningSecrets
from pssync.sources.base import HttpReply, NormaliseContext, fingerprint_of
from pssync.sources.request import RawRequest
from pssync.sources.salesforce.records import (
    CLOSED_WON_STAGES,
    SALESFORCE_ID,
    salesforce_datetime,
    salesforce_iso,
)
from pssync.sources.verification import VerifiedDelivery, matches_any

KEY_HEADER = "x-pssync-key"
KEY_QUERY_PARAMETER = "key"
OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
MAX_NOTIFICATIONS = 100
SOAP_ACK = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    b"<soapenv:Body>"
    b'<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack></notificationsResponse>'
    b"</soapenv:Body></soapenv:Envelope>"
)


class SalesforceOutboundScheme:
    media_type = "text/xml"

    def verify(
        self, request: RawRequest, source: SourceConfig, secrets: SigningSecrets | None, now: datetime
    ) -> VerifiedDelivery:
        if secrets is None:
            raise SignatureInvalid("no key is configured for this source")
        offered = _offered_key(request).encode()
        if not matches_any(offered, [s.encode() for s in secrets.all()]):
            raise SignatureInvalid("the outbound message key matches no configured key")
        notifications = _notifications(request.body)
        organisation = _text(notifications, "OrganizationId")
        if not organisation:
            raise MalformedDelivery("the envelope has no OrganizationId")
        if organisation not in source.tenants and organisation[:15] not in source.tenants:
            raise UnknownTenant(f"organisation {organisation} is not configured for this source")
        return VerifiedDelivery(delivery_id=hashlib.sha256(request.body).hexdigest(), sent_at=None)

    def normalise(self, context: NormaliseContext) -> list[NormalisedEvent]:
        notifications = _notifications(context.body)
        items = notifications.findall(f"{{{OUTBOUND_NS}}}Notification")
        if not items:
            raise MalformedDelivery("the envelope holds no Notification")
        if len(items) > MAX_NOTIFICATIONS:
            raise MalformedDelivery(f"{len(items)} notifications; Salesforce sends at most 100")
        own = set(context.source.own_client_ids)
        normalised = []
        for item in items:
            notification_id = _text(item, "Id")
            record = item.find(f"{{{OUTBOUND_NS}}}sObject")
            if not notification_id or record is None:
                raise MalformedDelivery("every Notification needs an Id and an sObject")
            fields = _fields(record)
            object_type = record.get(XSI_TYPE, "").rpartition(":")[2]
            if object_type != "Opportunity" or not fields.get("Id"):
                continue
            if fields.get("LastModifiedById") in own:
                continue  # our own write coming back: no sync loop
            if fields.get("StageName") not in CLOSED_WON_STAGES and fields.get("IsWon") != "true":
                continue
            event = _closed_won_signal(context, notification_id, fields)
            identity = {"Id": notification_id, "sObject": object_type, "sObjectId": fields["Id"]}
            normalised.append(NormalisedEvent(event=event, fingerprint=fingerprint_of(identity)))
        return normalised

    def acknowledge(self, result: IngestResult) -> HttpReply:
        return HttpReply(status=200, body=SOAP_ACK, headers={"Content-Type": "text/xml; charset=utf-8"})


def _offered_key(request: RawRequest) -> str:
    in_header = request.headers.get(KEY_HEADER, [])
    in_query = parse_qs(urlsplit(request.url).query, keep_blank_values=True).get(KEY_QUERY_PARAMETER, [])
    if in_header and in_query:
        raise SignatureInvalid(f"send the key in {KEY_HEADER} or ?{KEY_QUERY_PARAMETER}=, not both")
    offered = in_header or in_query
    if len(offered) != 1 or not offered[0].strip():
        raise SignatureInvalid(
            f"the key ({KEY_HEADER} or ?{KEY_QUERY_PARAMETER}=) must be present exactly once"
        )
    return offered[0].strip()


def _notifications(body: bytes) -> ET.Element:
    # Salesforce sends UTF-8. Decoded strictly and whole: a multi-byte character may sit anywhere, and
    # another encoding (UTF-16 without a BOM, say) must not reach the parser looking like something else.
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedDelivery("the SOAP body must be UTF-8") from None
    if "\x00" in text:  # XML has no NUL; UTF-16 of ASCII is "valid UTF-8" with a NUL in every other byte
        raise MalformedDelivery("the SOAP body must be UTF-8")
    declared = re.match(r"""\s*<\?xml[^>]*encoding\s*=\s*["']([^"']+)["']""", text[:200])
    if text.startswith("\ufeff") or (declared and declared.group(1).lower().replace("_", "-") != "utf-8"):
        raise MalformedDelivery("the SOAP body must be UTF-8 without a BOM")
    try:
        root: ET.Element = SafeET.fromstring(
            body, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException:
        raise MalformedDelivery("DTDs, entities and external references are not accepted") from None
    except ET.ParseError:
        raise MalformedDelivery("body is not well-formed XML") from None
    if root.tag != f"{{{SOAP_NS}}}Envelope":
        raise MalformedDelivery("body is not a SOAP 1.1 envelope")
    notifications = root.find(f"{{{SOAP_NS}}}Body/{{{OUTBOUND_NS}}}notifications")
    if notifications is None:
        raise MalformedDelivery("the SOAP body holds no outbound-message notifications")
    return notifications


def _text(element: ET.Element, name: str) -> str:
    child = element.find(f"{{{OUTBOUND_NS}}}{name}")
    return (child.text or "").strip() if child is not None else ""


def _fields(record: ET.Element) -> dict[str, str]:
    """sObject fields by local name (enterprise namespace `urn:sobject.enterprise.soap.sforce.com`)."""
    return {child.tag.rpartition("}")[2]: (child.text or "").strip() for child in record}


def _closed_won_signal(
    context: NormaliseContext, notification_id: str, fields: dict[str, str]
) -> ClosedWonSignalled:
    """The opportunity is read by the closed-won resolver behind a queue (and dropped there if reopened)."""
    if not SALESFORCE_ID.fullmatch(fields["Id"]):
        raise UnprocessableDelivery(f"opportunity id {fields['Id']!r} is not a Salesforce id")
    notified_at = salesforce_datetime(fields.get("LastModifiedDate")) or context.received_at
    source = context.source
    return ClosedWonSignalled.of(
        source=source.name,
        source_system=source.system,
        source_event_id=notification_id,
        source_version=salesforce_iso(notified_at),
        closed_won_at=notified_at,
        received_at=context.received_at,
        record_type="salesforce-opportunity",
        record_id=fields["Id"],
    )
