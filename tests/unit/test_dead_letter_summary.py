"""`pssync dlq show` says what failed and why, without a stack trace (the trace stays in the log)."""

from __future__ import annotations

import json

from pssync.model import examples
from pssync.ops.replay import summarise


def test_a_workflow_exception_shows_the_error_and_message_but_not_the_trace() -> None:
    cause = {
        "errorType": "BusinessRuleViolation",
        "errorMessage": "billing schedule total differs from the transaction price",
        "stackTrace": ['  File "/var/task/handler.py", line 12, in handler\n'],
    }
    body = {
        "kind": "workflow_step_failed",
        "failed_step": "PublishErpBillingSchedule",
        "error": {"Error": "BusinessRuleViolation", "Cause": json.dumps(cause)},
        "event": examples.contract_booked().model_dump(mode="json"),
        "attempt": 0,
    }
    shown = summarise(json.dumps(body))
    assert shown.error == "BusinessRuleViolation: billing schedule total differs from the transaction price"
    assert shown.failed_step == "PublishErpBillingSchedule" and shown.contract_id == "C-2026-0412"


def test_a_parked_record_shows_its_cause_from_the_message_attributes() -> None:
    attributes = {
        "pssync-error": "RecordNotFound",
        "pssync-reason": "record_not_found",
        "pssync-message": "/crm/v3/objects/deals/42 does not exist in the CRM (404)",
        "pssync-function": "resolve_closed_won",
        "pssync-receives": "5",
    }
    shown = summarise("not json at all", attributes)
    assert shown.failed_step == "resolve_closed_won"
    shown = summarise(json.dumps({"detail-type": "X", "detail": {"event_id": "e1"}}), attributes)
    assert shown.error == (
        "RecordNotFound (record_not_found): /crm/v3/objects/deals/42 does not exist in the CRM (404)"
        " [after 5 receives]"
    )
    assert summarise(json.dumps({"detail": {}})).error is None  # nothing recorded: dlq show says so
