"""The one handler stack: every Lambda function is decorated by `lambda_handler`, in the same order.

- Logger (Powertools) with the Lambda context and the correlation id of the function's trigger: the
  API Gateway request id, the canonical event's correlation id for workflow steps and queued events
  (set per record), the EventBridge event id for schedules. Keys from one invocation never leak into the
  next (`clear_state`).
- Metrics with the cold-start metric; everything added during the invocation is flushed at its end.
- Tracer (X-Ray) only when tracing is on for the function (`PSSYNC_TRACING=active`, set by CDK with
  `Tracing.ACTIVE`). The Tracer is built lazily: it costs about 130 ms of cold start even when disabled
  (docs/decisions.md, 2026-11-30).

SQS consumers use `sqs_batch`: Powertools `BatchProcessor` with a typed record model and partial batch
failures, each record's failure logged with its typed cause.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from pssync.observability import logger, metrics

if TYPE_CHECKING:  # the parser's event models cost init time; only SQS consumers load them (records.py)
    from aws_lambda_powertools.utilities.parser.models import SqsRecordModel

LambdaHandler = Callable[[dict[str, Any], Any], Any]
TRACING_ENV = "PSSYNC_TRACING"
Record = TypeVar("Record", bound="SqsRecordModel")


def tracing_on() -> bool:
    return os.environ.get(TRACING_ENV, "").lower() == "active"


@cache
def _tracer() -> Any:
    from aws_lambda_powertools import Tracer

    return Tracer(service="pssync")


def lambda_handler(*, correlation_id_path: str | None = None) -> Callable[[LambdaHandler], LambdaHandler]:
    """Decorates a handler with the stack above; `correlation_id_path` is a JMESPath into the event."""

    def decorate(handler: LambdaHandler) -> LambdaHandler:
        wrapped = handler
        if tracing_on():
            wrapped = _tracer().capture_lambda_handler(wrapped, capture_response=False)
        wrapped = metrics.log_metrics(wrapped, capture_cold_start_metric=True)
        return logger.inject_lambda_context(
            wrapped, correlation_id_path=correlation_id_path, clear_state=True
        )

    return decorate


def sqs_batch(
    event: dict[str, Any],
    context: Any,
    model: type[Record],
    record_handler: Callable[[Record], None],
) -> dict[str, Any]:
    """Runs `record_handler` per record (parsed into `model`); failed records are reported, not raised,
    so SQS retries only them and parks them in the queue's DLQ after maxReceiveCount."""
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    def handle(record: Record) -> None:
        try:
            record_handler(record)
        except Exception as error:
            code = getattr(error, "code", None)
            cause = {"message_id": record.messageId, "error": type(error).__name__, "reason": code}
            logger.exception("record failed", extra=cause)
            raise

    processor = BatchProcessor(event_type=EventType.SQS, model=model)
    response = process_partial_response(
        event=event, record_handler=handle, processor=processor, context=context
    )
    return dict(response)
