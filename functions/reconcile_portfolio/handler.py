"""Scheduled (daily): reconcile every engagement (or the event's `contract_ids`) as of today (or the
event's `as_of`); variances above tolerance go to the exceptions queue as typed records; the run's figures
become the reconciliation and deferred revenue variance metrics."""

from datetime import UTC, datetime
from typing import Any

from pydantic import field_validator

from pssync.adapters.aws import DynamoDBAggregateHeads
from pssync.config import BusinessTableSettings, load_settings
from pssync.handlers.stack import lambda_handler
from pssync.observability import emit_reconciliation
from pssync.ops.contract_view import Cutoff
from pssync.ops.reconcile import (
    DeliveryLogScan,
    ReconciliationTolerance,
    SqsExceptionQueue,
    run_reconciliation,
)
from pssync.wiring import client, version_store
from pssync.workflows.provision import CONTRACT


class ReconcileSettings(BusinessTableSettings):
    delivery_log_table_name: str
    exceptions_queue_url: str
    reconciliation_tolerance: str = ""  # JSON {"EUR": "5.00"}; kept as text: settings are hashable

    @field_validator("reconciliation_tolerance")
    @classmethod
    def _valid_tolerance(cls, value: str) -> str:
        ReconciliationTolerance.parse(value)  # a malformed tolerance stops the function at load, loudly
        return value


@lambda_handler()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = load_settings(ReconcileSettings)
    dynamodb = client("dynamodb")
    # The schedule reconciles every contract; `{"contract_ids": [...]}` re-checks some (after a fix).
    named = event.get("contract_ids")
    contract_ids = (
        [str(c) for c in named]
        if isinstance(named, list)
        else (
            h.aggregate_id
            for h in DynamoDBAggregateHeads(settings.business_table_name, dynamodb).heads(CONTRACT)
        )
    )
    run = run_reconciliation(
        version_store(settings),
        DeliveryLogScan(settings.delivery_log_table_name, dynamodb).logged_commands(),
        contract_ids,
        Cutoff.parse(event.get("as_of"), datetime.now(UTC)),
        ReconciliationTolerance.parse(settings.reconciliation_tolerance),
        SqsExceptionQueue(settings.exceptions_queue_url, client("sqs")),
    )
    emit_reconciliation(
        run.engagements, run.variances_by_cause, run.variance_amounts, run.deferred_revenue_variances
    )
    return run.model_dump(mode="json")
