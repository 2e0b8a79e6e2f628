"""Dead-letter stores on SQS: find them by tag, peek at them, move their messages back.

A message is deleted only after its replay was accepted (sent or put), so an interrupted replay
leaves it where it was; running the replay again is safe because replays never double-apply.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pssync.ops.exception_aging import peek
from pssync.ops.replay import (
    REPLAY_TAG,
    REPLAY_TARGET_TAG,
    WORKFLOW_TAG,
    MessageSummary,
    ReplayKind,
    ToBus,
    ToQueue,
    UnreplayableMessage,
    plan,
    summarise,
)
from pssync.ops.selection import RateLimiter, ReplayFilter, facts_of, sent_at_of


@dataclass(frozen=True)
class DeadLetterStore:
    name: str
    url: str
    kind: ReplayKind
    target: str | None
    depth: int


class MessageOutcome(StrEnum):
    REPLAYED = "replayed"
    WOULD_REPLAY = "would-replay"  # dry run
    SKIPPED = "skipped"  # cannot be replayed as it is (not an event, no target): left in the store
    ERROR = "error"  # sending or deleting failed: left in the store (a later replay is safe)


@dataclass(frozen=True)
class ReplayedMessage:
    message_id: str
    event_id: str | None
    outcome: MessageOutcome
    detail: str = ""


@dataclass
class ReplayOutcome:
    """What a replay run did to each message it took; `left` counts the ones the filters did not take."""

    messages: list[ReplayedMessage] = field(default_factory=list)
    left: int = 0

    def count(self, outcome: MessageOutcome) -> int:
        return sum(1 for m in self.messages if m.outcome is outcome)

    @property
    def replayed(self) -> int:
        return self.count(MessageOutcome.REPLAYED) + self.count(MessageOutcome.WOULD_REPLAY)

    @property
    def skipped(self) -> int:
        return self.count(MessageOutcome.SKIPPED)

    @property
    def errors(self) -> list[str]:
        return [
            f"{m.message_id}: {m.detail}"
            for m in self.messages
            if m.outcome in (MessageOutcome.SKIPPED, MessageOutcome.ERROR)
        ]


# A message a run does not replay is kept invisible only while the run looks at the rest (so the run
# does not see it again), then made visible again at once; a run killed outright releases it after this.
HOLD_SECONDS = 300
RECEIVE_BATCH = 10


class DeadLetterOps:
    def __init__(self, sqs: Any, events: Any) -> None:
        self._sqs = sqs
        self._events = events

    def _queues(self, prefix: str = "") -> Iterator[tuple[str, dict[str, str]]]:
        kwargs = {"QueueNamePrefix": prefix} if prefix else {}
        for page in self._sqs.get_paginator("list_queues").paginate(**kwargs):
            for url in page.get("QueueUrls", []):
                yield url, self._sqs.list_queue_tags(QueueUrl=url).get("Tags", {})

    def stores(self, prefix: str = "") -> list[DeadLetterStore]:
        found = []
        for url, tags in self._queues(prefix):
            if REPLAY_TAG not in tags:
                continue
            depth = int(
                self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
                    "Attributes"
                ]["ApproximateNumberOfMessages"]
            )
            kind = ReplayKind(tags[REPLAY_TAG])
            target = tags.get(REPLAY_TARGET_TAG)
            if kind is ReplayKind.REDRIVE and target is None:
                sources = self._sqs.list_dead_letter_source_queues(QueueUrl=url).get("queueUrls", [])
                target = sources[0] if len(sources) == 1 else None
            found.append(
                DeadLetterStore(name=url.rsplit("/", 1)[-1], url=url, kind=kind, target=target, depth=depth)
            )
        return sorted(found, key=lambda s: s.name)

    def store(self, name_or_url: str) -> DeadLetterStore:
        for store in self.stores():
            if name_or_url in (store.name, store.url):
                return store
        raise KeyError(f"no dead-letter store named {name_or_url}")

    def inbox_of(self, workflow: str) -> str:
        for url, tags in self._queues():
            if tags.get(WORKFLOW_TAG) == workflow:
                return url
        raise UnreplayableMessage(f"no inbox queue is tagged for workflow {workflow}")

    def peek(self, store: DeadLetterStore, limit: int = 10) -> list[MessageSummary]:
        """Read without consuming: every received message is made visible again at once."""
        return [summarise(m.body, m.attributes) for m in peek(self._sqs, store.name, store.url, limit)]

    def replay(
        self,
        store: DeadLetterStore,
        *,
        selection: ReplayFilter | None = None,
        limit: int | None = None,
        dry_run: bool = False,
        limiter: RateLimiter | None = None,
        progress: Callable[[ReplayedMessage | None], None] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
        into: ReplayOutcome | None = None,
    ) -> ReplayOutcome:
        """Replay the messages the filter takes (at most `limit`), at most `limiter`'s rate.

        Every message received is either replayed (sent, then deleted) or held and, at the end, made
        visible again unchanged: those the filter does not take, those over the limit, dry-run ones,
        and those that could not be replayed. `progress` is called once per message looked at (None
        for one the filter did not take). `into` collects the outcome as the run goes, so a caller
        still has it when the run is cut short.
        """
        selection = selection or ReplayFilter()
        outcome = ReplayOutcome() if into is None else into
        # A run replays what was parked before it started: a replayed message that fails again at once is
        # parked anew, and taking it in the same run would loop (the next run, or a fix, decides).
        started_at = now()
        held: dict[str, str] = {}  # message id -> latest receipt handle
        taken: set[str] = set()
        inboxes: dict[str, str] = {}
        renewed = clock()
        # A rate-limited run takes at most a minute's worth at a time, so a batch is done long before
        # its messages' hold runs out.
        batch_size = RECEIVE_BATCH if limiter is None else limiter.batch_size(RECEIVE_BATCH, 60)
        try:
            while True:
                batch = self._sqs.receive_message(
                    QueueUrl=store.url,
                    MaxNumberOfMessages=batch_size,
                    VisibilityTimeout=HOLD_SECONDS,
                    WaitTimeSeconds=0,
                    AttributeNames=["SentTimestamp"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
                fresh = [m for m in batch if m["MessageId"] not in held and m["MessageId"] not in taken]
                for message in batch:
                    if message["MessageId"] in held:
                        held[message["MessageId"]] = message["ReceiptHandle"]
                if not fresh:
                    break  # empty, or only messages this run already holds: every message was seen
                for message in fresh:
                    if clock() - renewed > HOLD_SECONDS / 2:  # a long run keeps holding what it left
                        self._set_visibility(store, held, HOLD_SECONDS)
                        renewed = clock()
                    sent_at = sent_at_of(message.get("Attributes") or {})
                    if sent_at is not None and sent_at > started_at:
                        held[message["MessageId"]] = message["ReceiptHandle"]
                        outcome.left += 1
                        if progress:
                            progress(None)
                        continue
                    result = self._one(
                        store,
                        message,
                        selection,
                        now(),
                        dry_run,
                        limiter,
                        inboxes,
                        full=limit is not None and outcome.replayed >= limit,
                    )
                    if result is None:
                        outcome.left += 1
                    else:
                        outcome.messages.append(result)
                    if result is not None and result.outcome is MessageOutcome.REPLAYED:
                        taken.add(message["MessageId"])
                    else:
                        held[message["MessageId"]] = message["ReceiptHandle"]
                    if progress:
                        progress(result)
        finally:
            self._set_visibility(store, held, 0)
        return outcome

    def _one(
        self,
        store: DeadLetterStore,
        message: dict[str, Any],
        selection: ReplayFilter,
        now: datetime,
        dry_run: bool,
        limiter: RateLimiter | None,
        inboxes: dict[str, str],
        *,
        full: bool,
    ) -> ReplayedMessage | None:
        attributes = {
            name: str(value.get("StringValue", ""))
            for name, value in (message.get("MessageAttributes") or {}).items()
        }
        facts = facts_of(
            message["MessageId"],
            message["Body"],
            attributes,
            sent_at_of(message.get("Attributes") or {}),
        )
        if full or not selection.matches(facts, now):
            return None

        def result(outcome: MessageOutcome, detail: str = "") -> ReplayedMessage:
            return ReplayedMessage(facts.message_id, facts.event_id, outcome, detail)

        try:
            action = plan(store.kind, store.target, message["Body"])
        except UnreplayableMessage as error:
            return result(MessageOutcome.SKIPPED, str(error))
        if dry_run:
            return result(MessageOutcome.WOULD_REPLAY)
        if limiter is not None:
            limiter.wait()
        try:
            self._apply(action, inboxes)
        except UnreplayableMessage as error:
            return result(MessageOutcome.SKIPPED, str(error))
        except Exception as error:  # any failure of one send is recorded; the run goes on
            return result(MessageOutcome.ERROR, f"not sent: {type(error).__name__}: {error}")
        try:
            self._sqs.delete_message(QueueUrl=store.url, ReceiptHandle=message["ReceiptHandle"])
        except Exception as error:  # sent but still in the store: a later replay is safe
            return result(MessageOutcome.ERROR, f"sent, not deleted: {type(error).__name__}: {error}")
        return result(MessageOutcome.REPLAYED)

    def _set_visibility(self, store: DeadLetterStore, held: dict[str, str], seconds: int) -> None:
        """Release (0) or keep holding the messages a run has not replayed, ten per call."""
        entries = [
            {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
            for n, handle in enumerate(held.values())
        ]
        for start in range(0, len(entries), 10):
            self._sqs.change_message_visibility_batch(QueueUrl=store.url, Entries=entries[start : start + 10])

    def _apply(self, action: ToQueue | ToBus, inboxes: dict[str, str]) -> None:
        if isinstance(action, ToBus):
            response = self._events.put_events(Entries=[action.entry])
            if response.get("FailedEntryCount"):
                raise UnreplayableMessage(f"bus refused the event: {response['Entries']}")
            return
        url = action.queue
        if action.by_workflow:
            url = inboxes.setdefault(action.queue, self.inbox_of(action.queue))
        self._sqs.send_message(QueueUrl=url, MessageBody=action.body)
