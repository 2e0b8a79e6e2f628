"""Standard Webhooks (https://www.standardwebhooks.com): senders we control.

NetSuite SuiteScript outboxes, Salesforce Apex / Flow, Dataverse plug-ins and our own replays sign with
HMAC-SHA256 over `id.timestamp.body` and send `v1,<base64>` signatures. The `standardwebhooks` library
computes the signature (secret decoding, message layout); the timestamp window is ours because it is
configured per source and a stale delivery must read 400, not 401.
"""

from __future__ import annotations

from base64 import b64decode
from binascii import Error as Base64Error
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

from pssync.errors import MalformedDelivery, SignatureInvalid, StaleDelivery, UnprocessableDelivery
from pssync.model.contract import ContractTerms
from pssync.model.events import (
    ContractAmended,
    ContractAmendedData,
    ContractBooked,
    ContractBookedData,
    EventEnvelope,
    ExpenseApproved,
    ExpenseApprovedData,
    InvoicePosted,
    InvoicePostedData,
    MilestoneCompleted,
    MilestoneCompletedData,
    PaymentReceived,
    PaymentReceivedData,
    TimeApproved,
    TimeApprovedData,
    canonical_event_id,
)
from pssync.model.sources import SourceConfig
from pssync.ports import IngestResult, NormalisedEvent, SigningSecrets
from pssync.sources.base import (
    HttpReply,
    NormaliseContext,
    fingerprint_of,
    json_acknowledgement,
    parse_json_body,
)
from pssync.sources.request import RawRequest
from pssync.sources.verification import VerifiedDelivery, epoch_instant, matches_any


class ContractBookedNotice(BaseModel):
    """`data` of a `contract.booked` message from a sender we control (Apex, SuiteScript, plug-in)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    closed_won_at: AwareDatetime
    source_version: str | None = Field(None, description="e.g. the opportunity's LastModifiedDate")
    contract: ContractTerms


class StandardWebhooksMessage(BaseModel):
    """The payload shape Standard Webhooks recommends: type, timestamp, data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal[
        "contract.booked",
        "contract.amended",
        "time.approved",
        "expense.approved",
        "milestone.completed",
        "invoice.posted",
        "payment.received",
    ]
    timestamp: AwareDatetime
    data: dict[str, Any]


def describe_validation_error(error: ValidationError, prefix: str = "") -> str:
    """`field.path: message; ...` so the sender sees exactly which field is wrong."""
    parts = []
    for item in error.errors(include_url=False):
        path = ".".join(str(p) for p in (prefix, *item["loc"]) if p != "")
        parts.append(f"{path or '<root>'}: {item['msg']}")
    return "; ".join(parts)


class StandardWebhooksScheme:
    media_type = "application/json"

    def verify(
        self, request: RawRequest, source: SourceConfig, secrets: SigningSecrets | None, now: datetime
    ) -> VerifiedDelivery:
        if secrets is None:
            raise SignatureInvalid("no signing secret is configured for this source")
        delivery_id = request.single_header("webhook-id")
        timestamp_text = request.single_header("webhook-timestamp")
        signature_header = request.single_header("webhook-signature")
        sent_at = epoch_instant(timestamp_text, milliseconds=False, what="webhook-timestamp")
        skew = abs((now - sent_at).total_seconds())
        if skew > source.tolerance_seconds:
            raise StaleDelivery(
                f"webhook-timestamp is {int(skew)} s away from now (limit {source.tolerance_seconds} s)"
            )
        try:
            body = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedDelivery("body is not UTF-8") from None

        offered = _offered_v1_signatures(signature_header)
        for secret in secrets.all():
            try:
                expected = Webhook(secret).sign(msg_id=delivery_id, timestamp=sent_at, data=body)
            except (EmptyWebhookSecretError, Base64Error, ValueError):
                continue  # a malformed configured secret verifies nothing; the other may
            if matches_any(b64decode(expected.split(",", 1)[1]), offered):
                return VerifiedDelivery(delivery_id=delivery_id, sent_at=sent_at)
        raise SignatureInvalid("no webhook-signature matches a configured secret")

    def normalise(self, context: NormaliseContext) -> list[NormalisedEvent]:
        document = parse_json_body(context.body)
        if not isinstance(document, dict):
            raise MalformedDelivery("body must be a JSON object")
        try:
            message = StandardWebhooksMessage.model_validate(document)
        except ValidationError as error:
            raise UnprocessableDelivery(describe_validation_error(error)) from None
        try:
            event = _build(message, context)
        except ValidationError as error:
            raise UnprocessableDelivery(describe_validation_error(error, prefix="data")) from None
        return [NormalisedEvent(event=event, fingerprint=fingerprint_of(document))]

    def acknowledge(self, result: IngestResult) -> HttpReply:
        return json_acknowledgement(result)


def _build(message: StandardWebhooksMessage, context: NormaliseContext) -> EventEnvelope:
    source, delivery = context.source, context.delivery
    event_id = canonical_event_id(source.name, delivery.delivery_id)
    data = dict(message.data)
    source_version = data.pop("source_version", None)
    common: dict[str, Any] = {
        "event_id": event_id,
        "source": source.name,
        "source_system": source.system,
        "source_event_id": delivery.delivery_id,
        "source_version": source_version,
        "correlation_id": event_id,
        "occurred_at": message.timestamp,
        "received_at": context.received_at,
    }
    match message.type:
        case "contract.booked":
            notice = ContractBookedNotice.model_validate({**data, "source_version": source_version})
            return ContractBooked(
                **common,
                data=ContractBookedData(closed_won_at=notice.closed_won_at, contract=notice.contract),
            )
        case "contract.amended":
            return ContractAmended(**common, data=ContractAmendedData.model_validate(data))
        case "time.approved":
            return TimeApproved(**common, data=TimeApprovedData.model_validate(data))
        case "expense.approved":
            return ExpenseApproved(**common, data=ExpenseApprovedData.model_validate(data))
        case "milestone.completed":
            return MilestoneCompleted(**common, data=MilestoneCompletedData.model_validate(data))
        case "invoice.posted":
            return InvoicePosted(**common, data=InvoicePostedData.model_validate(data))
        case "payment.received":
            return PaymentReceived(**common, data=PaymentReceivedData.model_validate(data))
    raise UnprocessableDelivery(f"type {message.type} is not handled")  # pragma: no cover - Literal above


def _offered_v1_signatures(header: str) -> list[bytes]:
    signatures: list[bytes] = []
    for token in header.split():
        version, _, value = token.partition(",")
        if version != "v1" or not value:
            continue
        try:
            signatures.append(b64decode(value, validate=True))
        except (Base64Error, ValueError):
            continue
    if not signatures:
        raise SignatureInvalid("webhook-signature carries no v1 signature")
    return signatures
