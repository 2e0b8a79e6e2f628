"""The one handler stack: every Lambda function is decorated by `lambda_handler`, in the same order.

- Logger (Powertools) with the Lambda context and the correlation id of the function's trigger: the
  API Gateway request id, the canonical event's correlation id for workflow steps and queued events
  (set per record), the EventBridge event id for schedules. Keys from one invocation never leak into the
  next (`clear_state`).
- Metrics with the cold-start metric; everything added during the invocation is flushed at its end.
- The invocation's remaining time (the context's `get_remaining_time_in_millis`) bounds every vendor call
  made inside it (`pssync.connectors.http_policy.invocation_time`): a slow vendor ends as a typed
  transient error before the function's timeout kills the container mid-command.
- Tracer (X-Ray) only when tracing is on for the function (`PSSYNC_TRACING=active`, set by CDK with
  `Tracing.ACTIVE`). The Tracer is built lazily: it costs about 130 ms of cold start even when disabled
  (docs/decisions.md, 2026-11-30).

An exception escaping a handler is logged with its type and trace before the runtime sees it, so every
failure has a line in the function's log. SQS consumers use `sqs_batch`: Powertools `BatchProcessor` with a
typed record model and partial batch failures; a record failing its last receive is parked in the queue's
DLQ with its typed cause (message attributes that `pssync dlq show` prints).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, wraps
from typing import TYPE_CHECKING, Any, TypeVar

from pssync.config import HandlerSettings, load_settings
from pssync.connectors.http_policy import invocation_time
from pssync.observability import logger, metrics
from pssync.ports import DeadLetterParking

if TYPE_CHECKING:  # the parser's event models cost init time; only SQS consumers load them (records.py)
    from aws_lambda_powertools.utilities.parser.models import SqsRecordModel

LambdaHandler = Callable[[dict[str, Any], Any], Any]
TRACING_ENV = "PSSYNC_TRACING"
Record = TypeVar("Record", bound="SqsRecordModel")


def tracing_on() -> bool:
    return load_settings(HandlerSettings).sdk_tracing


@cache
def _tracer() -> Any:
    from aws_lambda_powertools import Tracer

    return Tracer(service="pssync")


def lambda_handler(*, correlation_id_path: str | None = None) -> Callable[[LambdaHandler], LambdaHandler]:
    """Decorates a handler with the stack above; `correlation_id_path` is a JMESPath into the event."""

    def decorate(handler: LambdaHandler) -> LambdaHandler:
        @wraps(handler)
        def logged(event: dict[str, Any], context: Any) -> Any:
            remaining_millis = getattr(context, "get_remaining_time_in_millis", None)
            try:
                if remaining_millis is None:  # a test calling the handler without a Lambda context
                    return handler(event, context)
                with invocation_time(lambda: remaining_millis() / 1000):
                    return handler(event, context)
            except Exception as error:
                cause = {"error": type(error).__name__, "reason": getattr(error, "code", None)}
                logger.exception("invocation failed", extra=cause)
                raise

        wrapped: LambdaHandler = logged
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
    parking: DeadLetterParking | None = None,
) -> dict[str, Any]:
    """Runs `record_handler` per record, parsed into `model`; a failed record (its parsing included) is
    logged with its cause and reported, so SQS retries only it; on its last receive it is parked in the
    queue's DLQ with its cause instead."""
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    def handle(record: SQSRecord) -> None:  # Powertools passes it as `record=`
        try:
            record_handler(model.model_validate(record.raw_event))
        except Exception as error:
            receives = int(record.attributes.approximate_receive_count or 1)
            cause = {
                "message_id": record.message_id,
                "error": type(error).__name__,
                "reason": getattr(error, "code", None),
            }
            logger.exception("record failed", extra={**cause, "receives": receives})
            if parking is not None and parking.park(record.body, receives, error):
                logger.warning("record parked in its dead-letter queue", extra=cause)
                return
            raise

    processor = BatchProcessor(event_type=EventType.SQS)
    response = process_partial_response(
        event=event, record_handler=handle, processor=processor, context=context
    )
    return dict(response)
