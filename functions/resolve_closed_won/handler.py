"""Closed-won queue -> ContractBooked: read the CRM record behind each ClosedWonSignalled and book it once.

Partial batch failures: a signal whose record cannot be read or mapped (CRM down, token revoked, terms
missing) is retried by SQS and parked in the queue's DLQ after maxReceiveCount, where `pssync dlq replay`
sends it back once the cause is fixed; the other signals of the batch are acknowledged.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from pssync.adapters.wiring import closed_won_resolver, deduplicator
from pssync.config import IngestSettings, load_settings
from pssync.errors import BusinessRuleViolation
from pssync.model.events import ClosedWonSignalled
from pssync.observability import logger
from pssync.workflows.starter import parse_bus_event

processor = BatchProcessor(event_type=EventType.SQS)


def resolve_one(record: SQSRecord) -> None:
    signal, _ = parse_bus_event(record.body)
    if not isinstance(signal, ClosedWonSignalled):
        raise BusinessRuleViolation(f"{signal.event_id} is not a ClosedWonSignalled", code="bad_message")
    resolution = closed_won_resolver(load_settings(IngestSettings)).resolve(signal)
    logger.info(
        "closed-won signal resolved",
        extra={"signal": signal.event_id, "source": signal.source, **resolution.__dict__},
    )


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    deduplicator(load_settings(IngestSettings)).config.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=resolve_one, processor=processor, context=context
    )
