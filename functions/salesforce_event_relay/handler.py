"""Event Relay buffer queue -> ContractBooked: one SQS record is one relayed EventBridge event.

Partial batch failures: a record that fails (unknown organisation, malformed, CRM or bus unavailable) is
retried by SQS and lands in the buffer's DLQ after maxReceiveCount; the others are acknowledged.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from pssync.adapters.wiring import crm_fetchers, deduplicator, ingest_service
from pssync.config import EventRelaySettings, load_settings
from pssync.errors import MalformedDelivery
from pssync.ingest.event_relay import (
    READ_BUDGET_SECONDS,
    EventRelayNormaliser,
    event_uuid_of,
    org_id_of,
    relay_source_for,
)
from pssync.observability import logger

processor = BatchProcessor(event_type=EventType.SQS)


def relay_one(record: SQSRecord) -> None:
    settings = load_settings(EventRelaySettings)
    service = ingest_service(settings)
    try:
        envelope = json.loads(record.body)
    except json.JSONDecodeError:
        raise MalformedDelivery("buffered message is not a JSON EventBridge event") from None
    source = relay_source_for(service.registry, org_id_of(envelope))
    received_at = datetime.now(UTC)
    normalised = EventRelayNormaliser(crm_fetchers(READ_BUDGET_SECONDS)(source)).normalise(
        source, envelope, received_at
    )
    result = service.accept(
        source, event_uuid_of(envelope), record.body.encode("utf-8"), normalised, received_at
    )
    logger.info(
        "relayed event accepted",
        extra={
            "source": source.name,
            "delivery_id": result.delivery_id,
            "detail_type": envelope.get("detail-type"),
            "events": [e.__dict__ for e in result.events],
        },
    )


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    deduplicator(load_settings(EventRelaySettings)).config.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=relay_one, processor=processor, context=context
    )
