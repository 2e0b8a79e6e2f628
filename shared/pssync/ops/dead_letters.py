"""Dead-letter stores on SQS: find them by tag, peek at them, move their messages back.

A message is deleted only after its replay was accepted (sent or put), so an interrupted replay
leaves it where it was; running the replay again is safe because replays never double-apply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class DeadLetterStore:
    name: str
    url: str
    kind: ReplayKind
    target: str | None
    depth: int


@dataclass
class ReplayOutcome:
    replayed: int = 0
    skipped: int = 0
    errors: list[str] | None = None


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
        seen: dict[str, MessageSummary] = {}
        handles = []
        while len(seen) < limit:
            batch = self._sqs.receive_message(
                QueueUrl=store.url,
                MaxNumberOfMessages=min(10, limit - len(seen)),
                VisibilityTimeout=30,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                break
            for message in batch:
                attributes = {
                    name: str(value.get("StringValue", ""))
                    for name, value in (message.get("MessageAttributes") or {}).items()
                }
                seen.setdefault(message["MessageId"], summarise(message["Body"], attributes))
                handles.append(message["ReceiptHandle"])
        for handle in handles:
            self._sqs.change_message_visibility(QueueUrl=store.url, ReceiptHandle=handle, VisibilityTimeout=0)
        return list(seen.values())

    def replay(
        self,
        store: DeadLetterStore,
        *,
        limit: int | None = None,
        dry_run: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> ReplayOutcome:
        outcome = ReplayOutcome(errors=[])
        inboxes: dict[str, str] = {}
        while limit is None or outcome.replayed + outcome.skipped < limit:
            want = 10 if limit is None else min(10, limit - outcome.replayed - outcome.skipped)
            batch = self._sqs.receive_message(
                QueueUrl=store.url, MaxNumberOfMessages=want, VisibilityTimeout=60, WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                break
            for message in batch:
                try:
                    action = plan(store.kind, store.target, message["Body"])
                    if not dry_run:
                        self._apply(action, inboxes)
                        self._sqs.delete_message(QueueUrl=store.url, ReceiptHandle=message["ReceiptHandle"])
                    outcome.replayed += 1
                except UnreplayableMessage as error:
                    outcome.skipped += 1
                    outcome.errors.append(f"{message['MessageId']}: {error}")  # type: ignore[union-attr]
                if progress:
                    progress(1)
            if dry_run:
                for message in batch:
                    self._sqs.change_message_visibility(
                        QueueUrl=store.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
                break
        return outcome

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
