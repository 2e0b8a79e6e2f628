"""SQS inbox -> StartExecution, named after the business event (partial batch failures reported)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from pssync.adapters.wiring import workflow_starter
from pssync.config import StartWorkflowSettings, load_settings
from pssync.observability import logger
from pssync.workflows.starter import start_workflow

processor = BatchProcessor(event_type=EventType.SQS)


def start_one(record: SQSRecord) -> None:
    settings = load_settings(StartWorkflowSettings)
    started = start_workflow(record.body, workflow_starter(settings), settings.workflow_name)
    logger.info(
        "workflow started" if started.newly_started else "workflow already started",
        extra={"execution_name": started.execution_name, "event_id": started.event_id},
    )


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=start_one, processor=processor, context=context
    )
