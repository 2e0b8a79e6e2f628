"""How a dead-lettered message goes back into the system. Pure: no I/O.

Three kinds of dead-letter store, told apart by the queue's `pssync:replay` tag:
- `redrive`: a queue's own DLQ; the message goes back to its source queue unchanged.
- `bus`: EventBridge could not deliver to a target; the event is put on the bus again, so the rules
  route it as the first time.
- `workflow-exceptions`: a workflow step failed for good; the original event goes back to the
  workflow's inbox as attempt N+1, which starts a fresh execution under a new name.
Replays never double-apply because everything downstream is keyed on the business event id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pssync.model.queued import ATTEMPT_KEY

REPLAY_TAG = "pssync:replay"
REPLAY_TARGET_TAG = "pssync:replay-target"
WORKFLOW_TAG = "pssync:workflow"


class ReplayKind(StrEnum):
    REDRIVE = "redrive"
    BUS = "bus"
    WORKFLOW_EXCEPTIONS = "workflow-exceptions"


class UnreplayableMessage(ValueError):
    pass


@dataclass(frozen=True)
class ToQueue:
    queue: str  # URL, or a workflow name to be looked up by its inbox tag
    body: str
    by_workflow: bool = False


@dataclass(frozen=True)
class ToBus:
    bus_name: str
    entry: dict[str, Any]


Replay = ToQueue | ToBus


@dataclass(frozen=True)
class MessageSummary:
    event_id: str | None
    event_type: str | None
    contract_id: str | None
    failed_step: str | None
    error: str | None
    attempt: int | None


def _event_of(document: dict[str, Any]) -> dict[str, Any]:
    if "detail" in document:
        return dict(document["detail"])
    if "event" in document:
        return dict(document["event"])
    return {}


def summarise(body: str, attributes: dict[str, str] | None = None) -> MessageSummary:
    """What a dead-lettered message is and why it failed, without a stack trace.

    The cause comes from the message attributes a consumer parks a record with (`pssync-*`), or from the
    error a workflow's Catch recorded (Step Functions puts the Lambda's error document in `Cause`).
    """
    attributes = attributes or {}
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        return MessageSummary(None, None, None, attributes.get("pssync-function"), "not JSON", None)
    if not isinstance(document, dict):
        return MessageSummary(None, None, None, attributes.get("pssync-function"), "not a JSON object", None)
    event = _event_of(document)
    data = event.get("data") or {}
    contract = data.get("contract") or {}
    record = (
        f"{data['record_type']} {data['record_id']}"
        if "record_id" in data and "record_type" in data
        else None
    )
    return MessageSummary(
        event_id=event.get("event_id"),
        event_type=document.get("detail-type") or event.get("event_type"),
        contract_id=contract.get("contract_id") or record,
        failed_step=document.get("failed_step") or attributes.get("pssync-function"),
        error=_workflow_error(document.get("error")) or _parked_cause(attributes),
        attempt=document.get("attempt", document.get(ATTEMPT_KEY)),
    )


def _parked_cause(attributes: dict[str, str]) -> str | None:
    if "pssync-error" not in attributes:
        return None
    reason = attributes.get("pssync-reason", "")
    receives = attributes.get("pssync-receives")
    return f"{attributes['pssync-error']} ({reason}): {attributes.get('pssync-message', '')}" + (
        f" [after {receives} receives]" if receives else ""
    )


def _workflow_error(error: Any) -> str | None:
    if not isinstance(error, dict) or not error:
        return None
    name, cause = error.get("Error"), error.get("Cause")
    try:
        document = json.loads(cause) if isinstance(cause, str) else None
    except json.JSONDecodeError:
        document = None
    if isinstance(document, dict) and "errorMessage" in document:
        return f"{document.get('errorType', name)}: {document['errorMessage']}"  # the trace stays in the log
    return f"{name}: {str(cause or '')[:300]}"


def plan(kind: ReplayKind, target: str | None, body: str) -> Replay:
    if kind is ReplayKind.REDRIVE:
        if not target:
            raise UnreplayableMessage("redrive queue has no replay target tag")
        return ToQueue(queue=target, body=body)
    try:
        document = json.loads(body)
    except json.JSONDecodeError as error:
        raise UnreplayableMessage(f"message is not JSON: {error}") from None
    if kind is ReplayKind.BUS:
        if not target:
            raise UnreplayableMessage("bus DLQ has no replay target tag")
        try:
            entry = {
                "Source": document["source"],
                "DetailType": document["detail-type"],
                "Detail": json.dumps(document["detail"]),
                "EventBusName": target,
            }
        except KeyError as missing:
            raise UnreplayableMessage(f"not an EventBridge event: missing {missing}") from None
        return ToBus(bus_name=target, entry=entry)
    try:
        event = document["event"]
        workflow = document["workflow"]
        attempt = int(document.get("attempt") or 0) + 1
    except (KeyError, TypeError, ValueError) as error:
        raise UnreplayableMessage(f"not a workflow exception record: {error}") from None
    bus_shaped = {
        "detail-type": event["event_type"],
        "source": "pssync.replay",
        "detail": event,
        ATTEMPT_KEY: attempt,
    }
    return ToQueue(queue=workflow, body=json.dumps(bus_shaped), by_workflow=True)
