"""Vendor payload -> canonical event. One normaliser per signature scheme / payload family."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from pssync.errors import MalformedDelivery, UnprocessableDelivery
from pssync.ingest.sources import SourceConfig
from pssync.ingest.verification import VerifiedDelivery
from pssync.model.contract import ContractTerms
from pssync.model.events import ContractBooked, ContractBookedData, EventEnvelope, canonical_event_id


class ContractBookedNotice(BaseModel):
    """`data` of a `contract.booked` message from a sender we control (Apex, SuiteScript, plug-in)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    closed_won_at: AwareDatetime
    source_version: str | None = Field(None, description="e.g. the opportunity's LastModifiedDate")
    contract: ContractTerms


class StandardWebhooksMessage(BaseModel):
    """The payload shape Standard Webhooks recommends: type, timestamp, data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["contract.booked"]
    timestamp: AwareDatetime
    data: dict[str, Any]


def describe_validation_error(error: ValidationError, prefix: str = "") -> str:
    """`field.path: message; ...` so the sender sees exactly which field is wrong."""
    parts = []
    for item in error.errors(include_url=False):
        path = ".".join(str(p) for p in (prefix, *item["loc"]) if p != "")
        parts.append(f"{path or '<root>'}: {item['msg']}")
    return "; ".join(parts)


def normalise_standard_webhooks(
    source: SourceConfig, delivery: VerifiedDelivery, body: bytes, received_at: datetime
) -> EventEnvelope:
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MalformedDelivery("body is not valid JSON") from None
    if not isinstance(document, dict):
        raise MalformedDelivery("body must be a JSON object")
    try:
        message = StandardWebhooksMessage.model_validate(document)
    except ValidationError as error:
        raise UnprocessableDelivery(describe_validation_error(error)) from None
    try:
        notice = ContractBookedNotice.model_validate(message.data)
    except ValidationError as error:
        raise UnprocessableDelivery(describe_validation_error(error, prefix="data")) from None

    event_id = canonical_event_id(source.name, delivery.delivery_id)
    return ContractBooked(
        event_id=event_id,
        source=source.name,
        source_system=source.system,
        source_event_id=delivery.delivery_id,
        source_version=notice.source_version,
        correlation_id=event_id,
        occurred_at=message.timestamp,
        received_at=received_at,
        data=ContractBookedData(closed_won_at=notice.closed_won_at, contract=notice.contract),
    )
