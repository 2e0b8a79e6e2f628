"""Starting a workflow from a queued canonical event: one execution per business event.

The execution name is derived from the business event id, so a redelivered or replayed message
finds the execution that already exists instead of starting a second one. An ops replay of a
failed execution asks for a new attempt number, which is part of the name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from pssync.errors import BusinessRuleViolation
from pssync.model.events import CANONICAL_EVENTS, EventEnvelope, event_type_of

ATTEMPT_KEY = "pssync-attempt"
_EVENT_MODELS = {event_type_of(m): m for m in CANONICAL_EVENTS}


class WorkflowStarter(Protocol):
    def start(self, name: str, input_document: str) -> tuple[str, bool]:
        """Returns (execution arn, newly started)."""
        ...


@dataclass(frozen=True)
class StartedWorkflow:
    execution_name: str
    execution_arn: str
    newly_started: bool
    event_id: str


def execution_name(event_type: str, event_id: str, attempt: int) -> str:
    base = f"{event_type}-{event_id}" if attempt == 0 else f"{event_type}-{event_id}-a{attempt}"
    return re.sub(r"[^A-Za-z0-9_-]", "-", base)[:80]


def parse_bus_event(message_body: str) -> tuple[EventEnvelope, int]:
    """An EventBridge event as the rule delivered it to SQS (or as `pssync dlq replay` re-sent it)."""
    try:
        document: dict[str, Any] = json.loads(message_body)
        model = _EVENT_MODELS[document["detail-type"]]
        event = model.model_validate(document["detail"])
        attempt = int(document.get(ATTEMPT_KEY, 0))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, ValidationError) as error:
        raise BusinessRuleViolation(
            f"queued message is not a canonical event: {error}", code="bad_message"
        ) from None
    return event, attempt


# Which canonical event starts which workflow: a message in the wrong inbox is refused, not run.
WORKFLOW_EVENT_TYPES = {"provision-engagement": "ContractBooked", "propagate-amendment": "ContractAmended"}


def start_workflow(message_body: str, starter: WorkflowStarter, workflow: str) -> StartedWorkflow:
    event, attempt = parse_bus_event(message_body)
    event_type = str(getattr(event, "event_type"))  # noqa: B009
    if WORKFLOW_EVENT_TYPES.get(workflow) != event_type:
        raise BusinessRuleViolation(f"{event_type} does not start workflow {workflow}", code="wrong_inbox")
    name = execution_name(event_type, event.event_id, attempt)
    arn, newly = starter.start(name, json.dumps({"event": event.model_dump(mode="json"), "attempt": attempt}))
    return StartedWorkflow(
        execution_name=name, execution_arn=arn, newly_started=newly, event_id=event.event_id
    )
