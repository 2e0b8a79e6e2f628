"""Starting a workflow from a queued canonical event: one execution per business event.

The execution name is derived from the business event id, so a redelivered or replayed message
finds the execution that already exists instead of starting a second one. An ops replay of a
failed execution asks for a new attempt number, which is part of the name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pssync.errors import BusinessRuleViolation
from pssync.model.events import EventEnvelope
from pssync.model.queued import QueuedEvent
from pssync.ports import WorkflowStarter


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
    queued = QueuedEvent.from_message(message_body)
    return queued.canonical(), queued.attempt


def start_workflow(
    queued: QueuedEvent, starter: WorkflowStarter, workflow: str, starts_on: frozenset[str]
) -> StartedWorkflow:
    """`starts_on`: the detail-types this workflow's inbox is for (from the stack); a message in the wrong
    inbox is refused, not run."""
    event, attempt = queued.canonical(), queued.attempt
    event_type = str(getattr(event, "event_type"))  # noqa: B009
    if event_type not in starts_on:
        raise BusinessRuleViolation(f"{event_type} does not start workflow {workflow}", code="wrong_inbox")
    name = execution_name(event_type, event.event_id, attempt)
    arn, newly = starter.start(name, json.dumps({"event": event.model_dump(mode="json"), "attempt": attempt}))
    return StartedWorkflow(
        execution_name=name, execution_arn=arn, newly_started=newly, event_id=event.event_id
    )
