"""Event Relay buffer queue -> ContractBooked: one SQS record is one relayed EventBridge event.

Partial batch failures: a record that fails (unknown organisation, malformed, CRM or bus unavailable) is
retried by SQS and lands in the buffer's DLQ after maxReceiveCount; the others are acknowledged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pssync.config import DeadLetterSettings, EventRelaySettings, load_settings
from pssync.handlers.records import RelayedEventRecord
from pssync.handlers.stack import lambda_handler, sqs_batch
from pssync.ingest.event_relay import READ_BUDGET_SECONDS, relay_event
from pssync.observability import logger
from pssync.wiring import crm_fetchers, dead_letter_parking, deduplicator, ingest_service


def relay_one(record: RelayedEventRecord) -> None:
    service = ingest_service(load_settings(EventRelaySettings))
    result, envelope = relay_event(
        record.body, service.registry, service, crm_fetchers(READ_BUDGET_SECONDS), datetime.now(UTC)
    )
    logger.info(
        "relayed event accepted",
        extra={
            "source": result.source,
            "delivery_id": result.delivery_id,
            "detail_type": envelope.get("detail-type"),
            "events": [e.__dict__ for e in result.events],
        },
    )


@lambda_handler()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    deduplicator(load_settings(EventRelaySettings)).config.register_lambda_context(context)
    parking = dead_letter_parking(load_settings(DeadLetterSettings), context.function_name)
    return sqs_batch(event, context, RelayedEventRecord, relay_one, parking)
