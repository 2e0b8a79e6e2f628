"""Open exceptions for the report: every message in the exceptions queue and the dead-letter queues (the
stores `pssync dlq list` finds by their `pssync:replay` tag), with its stage, cause and age.

Read without consuming, by the same `exception_aging.peek` that `pssync dlq show` and exception aging use,
with each message's SentTimestamp: the age is what the report is for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from pssync.ops.dead_letters import DeadLetterOps, DeadLetterStore
from pssync.ops.exception_aging import peek
from pssync.ops.finance_report.model import OpenException
from pssync.ops.replay import summarise
from pssync.ops.selection import facts_of

NO_CAUSE = "(no cause recorded: the function crashed or timed out; see its log)"
HOLD_SECONDS = 60  # long enough to read one queue to its end; released at once after


def open_exception(
    store: str,
    message_id: str,
    body: str,
    attributes: Mapping[str, str],
    sent_at: datetime | None,
    now: datetime,
) -> OpenException:
    """What one parked message is, where it failed and why: the stage is the workflow step that failed (a
    workflow exception) or the consumer that parked it; the cause is its error type(s) or reason code, the
    grouping key for aging (the full message stays in `pssync dlq show`)."""
    summary = summarise(body, dict(attributes))
    facts = facts_of(message_id, body, attributes, sent_at)
    cause = ", ".join(sorted(facts.causes)) or (summary.error or "")[:120] or NO_CAUSE
    return OpenException(
        store=store,
        message_id=message_id,
        event_id=summary.event_id,
        event_type=summary.event_type,
        contract_id=summary.contract_id or _named_contract(body),
        stage=summary.failed_step or f"{store} (consumer not recorded)",
        cause=cause,
        parked_at=sent_at,
        age_seconds=None if sent_at is None else max((now - sent_at).total_seconds(), 0.0),
    )


def _named_contract(body: str) -> str | None:
    """Events about a contract's delivery (time, milestones, invoices) name it by id, not by its terms."""
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    event: dict[str, Any] = next(
        (document[k] for k in ("detail", "event") if isinstance(document.get(k), dict)), {}
    )
    named = (event.get("data") or {}).get("contract_id") if isinstance(event.get("data"), dict) else None
    return named if isinstance(named, str) else None


class SqsOpenExceptions:
    """Every message of every dead-letter store (exceptions queue included), as OpenException."""

    def __init__(self, sqs: Any, events: Any, queue_prefix: str = "") -> None:
        self._sqs = sqs
        self._ops = DeadLetterOps(sqs, events)
        self._prefix = queue_prefix

    def read(self, now: datetime) -> list[OpenException]:
        return [e for store in self._ops.stores(self._prefix) if store.depth for e in self._read(store, now)]

    def _read(self, store: DeadLetterStore, now: datetime) -> Iterator[OpenException]:
        for message in peek(self._sqs, store.name, store.url, limit=None, visibility_seconds=HOLD_SECONDS):
            yield open_exception(
                store.name, message.message_id, message.body, message.attributes, message.sent_at, now
            )
