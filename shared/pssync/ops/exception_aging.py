"""Exception aging by workflow stage and cause: what sits in the exceptions queue and the dead-letter
queues, grouped by (workflow, stage, cause), with how many and how old the oldest is.

SQS's own ApproximateAgeOfOldestMessage is per queue; finance asks "which step, failing why, has been
waiting how long", which only the messages say (a workflow's exception record names its workflow, failed
step and error; a parked record carries its function and typed cause as message attributes). Pure apart
from `peek`, which reads a queue without consuming it (every message is made visible again at once).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pssync.observability import ExceptionGroup
from pssync.ops.selection import sent_at_of

UNKNOWN = "unknown"
PEEK_VISIBILITY_SECONDS = 30  # the longest a peeked message stays hidden if the peek is cut short
PEEK_LIMIT = 1000  # per queue and run: a store deeper than this is counted from its first thousand


@dataclass(frozen=True)
class PeekedMessage:
    store: str  # the queue's name
    body: str
    attributes: dict[str, str]  # message attributes (`pssync-*`)
    sent_at: datetime | None
    message_id: str = ""


def classify(message: PeekedMessage) -> tuple[str, str, str]:
    """(workflow, stage, cause). A workflow exception record names them; a parked record names its
    function and typed error; otherwise the queue is the workflow and the stage is `delivery`."""
    try:
        document = json.loads(message.body)
    except json.JSONDecodeError:
        document = None
    document = document if isinstance(document, dict) else {}
    attributes = message.attributes
    workflow = str(document.get("workflow") or message.store)
    stage = str(document.get("failed_step") or attributes.get("pssync-function") or "delivery")
    cause = (
        document.get("cause")
        or attributes.get("pssync-reason")
        or attributes.get("pssync-error")
        or _error_type(document.get("error"))
        or UNKNOWN
    )
    return workflow, stage, str(cause)


def _error_type(error: Any) -> str | None:
    """Step Functions puts the Lambda's error document in `Cause`; its errorType is the typed cause."""
    if not isinstance(error, dict):
        return None
    try:
        inner = json.loads(error["Cause"]) if isinstance(error.get("Cause"), str) else None
    except json.JSONDecodeError:
        inner = None
    if isinstance(inner, dict) and inner.get("errorType"):
        return str(inner["errorType"])
    return str(error["Error"]) if error.get("Error") else None


def exception_groups(messages: Iterable[PeekedMessage], now: datetime) -> list[ExceptionGroup]:
    """One group per (workflow, stage, cause), sorted; a message without a sent time counts as age 0."""
    counts: dict[tuple[str, str, str], int] = {}
    oldest: dict[tuple[str, str, str], float] = {}
    for message in messages:
        key = classify(message)
        age = 0.0 if message.sent_at is None else max(0.0, (now - message.sent_at).total_seconds())
        counts[key] = counts.get(key, 0) + 1
        oldest[key] = max(oldest.get(key, 0.0), age)
    return [
        ExceptionGroup(
            workflow=w, stage=s, cause=c, count=counts[(w, s, c)], oldest_age_seconds=oldest[(w, s, c)]
        )
        for w, s, c in sorted(counts)
    ]


def peek(
    sqs: Any,
    name: str,
    url: str,
    limit: int | None = PEEK_LIMIT,
    visibility_seconds: int = PEEK_VISIBILITY_SECONDS,
) -> Iterator[PeekedMessage]:
    """Every message of the queue (up to `limit`; None reads to its end) without consuming it: each is
    held only while the rest of the queue is read (so none is counted twice), then made visible again,
    unchanged. The one reader behind `pssync dlq show`, exception aging and the finance report."""
    seen: set[str] = set()
    handles: list[str] = []
    try:
        while limit is None or len(seen) < limit:
            batch = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10 if limit is None else min(10, limit - len(seen)),
                VisibilityTimeout=visibility_seconds,
                WaitTimeSeconds=0,
                AttributeNames=["SentTimestamp"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            fresh = [m for m in batch if m["MessageId"] not in seen]
            if not fresh:
                break
            for message in fresh:
                seen.add(message["MessageId"])
                handles.append(message["ReceiptHandle"])
                yield PeekedMessage(
                    store=name,
                    body=message["Body"],
                    attributes={
                        key: str(value.get("StringValue", ""))
                        for key, value in (message.get("MessageAttributes") or {}).items()
                    },
                    sent_at=sent_at_of(message.get("Attributes") or {}),
                    message_id=message["MessageId"],
                )
    finally:
        for start in range(0, len(handles), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for n, handle in enumerate(handles[start : start + 10])
            ]
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
