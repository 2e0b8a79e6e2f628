"""Scheduled on the first day of each month per configured legal entity: request the close of the month
before, as `pssync close request` does (a duplicate finds the running or finished execution)."""

from typing import Any

from pssync.adapters.aws import StepFunctionsExecutions
from pssync.config import AwsClientSettings, load_settings
from pssync.handlers.stack import lambda_handler
from pssync.observability import logger
from pssync.ports import SystemClock
from pssync.wiring import client
from pssync.workflows import period_close


class RequestCloseSettings(AwsClientSettings):
    close_state_machine_arn: str


@lambda_handler()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = load_settings(RequestCloseSettings)
    executions = StepFunctionsExecutions(settings.close_state_machine_arn, client("stepfunctions"))
    document = period_close.request_input(
        "close",
        str(event["legal_entity"]),
        period_close.previous_period(SystemClock().now().date()),
        requested_by="schedule",
    )
    decision = period_close.submit_request(document, executions.status, executions.start)
    logger.info(
        "period close requested",
        extra={"execution_name": decision.name, "started": decision.start, "status": decision.status},
    )
    return decision.model_dump(mode="json")
