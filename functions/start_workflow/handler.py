"""SQS inbox -> StartExecution, named after the business event (partial batch failures reported)."""

from __future__ import annotations

from typing import Any

from pssync.config import DeadLetterSettings, StartWorkflowSettings, load_settings
from pssync.handlers.records import QueuedEventRecord
from pssync.handlers.stack import lambda_handler, sqs_batch
from pssync.observability import logger
from pssync.wiring import dead_letter_parking, workflow_starter
from pssync.workflows.starter import start_workflow


def start_one(record: QueuedEventRecord) -> None:
    settings = load_settings(StartWorkflowSettings)
    started = start_workflow(
        record.body, workflow_starter(settings), settings.workflow_name, settings.starts_on
    )
    logger.info(
        "workflow started" if started.newly_started else "workflow already started",
        extra={"execution_name": started.execution_name, "event_id": started.event_id},
    )


@lambda_handler()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    parking = dead_letter_parking(load_settings(DeadLetterSettings), context.function_name)
    return sqs_batch(event, context, QueuedEventRecord, start_one, parking)
