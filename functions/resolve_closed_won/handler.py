"""Closed-won queue -> ContractBooked or ContractAmended: read the CRM record behind each
ClosedWonSignalled, book it once, or amend its contract when its terms changed.

Partial batch failures: a signal whose record cannot be read or mapped (CRM down, token revoked, terms
missing) is retried by SQS and parked in the queue's DLQ after maxReceiveCount, where `pssync dlq replay`
sends it back once the cause is fixed; the other signals of the batch are acknowledged.
"""

from __future__ import annotations

from typing import Any

from pssync.config import BusinessTableSettings, DeadLetterSettings, IngestSettings, load_settings
from pssync.handlers.records import QueuedEventRecord
from pssync.handlers.stack import lambda_handler, sqs_batch
from pssync.observability import logger
from pssync.wiring import dead_letter_parking, deduplicator, won_deal_resolver


def resolve_one(record: QueuedEventRecord) -> None:
    resolver = won_deal_resolver(load_settings(IngestSettings), load_settings(BusinessTableSettings))
    resolution = resolver.resolve_queued(record.body)
    logger.info("closed-won signal resolved", extra=resolution.__dict__)


@lambda_handler()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    deduplicator(load_settings(IngestSettings)).config.register_lambda_context(context)
    parking = dead_letter_parking(load_settings(DeadLetterSettings), context.function_name)
    return sqs_batch(event, context, QueuedEventRecord, resolve_one, parking)
