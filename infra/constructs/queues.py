"""SQS queues: the workflow inbox, every dead-letter queue and the workflow exceptions store."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import runtime


class Queues(Construct):
    """All queues require TLS and use SQS-managed encryption; dead letters are kept the SQS maximum."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        event_relay: bool = False,
        kantata_poller: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self._stage = stage
        self._extra_dead_letters: dict[str, sqs.IQueue] = {}
        # Each workflow's inbox and its redrive DLQ, by the workflow's construct id (workflow_inbox).
        self.workflow_inboxes: dict[str, tuple[sqs.Queue, sqs.Queue]] = {}

        # Thin closed-won signals wait here for the CRM read (resolve_closed_won).
        self.closed_won_inbox, self.closed_won_inbox_dlq = self._inbox("ClosedWon")
        # EventBridge parks events here after its retry policy is exhausted (target DeadLetterConfig).
        self.eventbridge_target_dlq = self._queue("EventBridgeTargetDlq", retention=runtime.DLQ_RETENTION)
        Validations.of(self.eventbridge_target_dlq).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SQS3",
                reason="This queue is the dead-letter queue of EventBridge rule targets (DeadLetterConfig); "
                "a DLQ of a DLQ would only move the same messages again.",
            )
        )
        # The workflows' Catch sends failed executions here; it is itself the dead-letter store.
        self.exceptions = self._queue("ExceptionsQueue", retention=runtime.DLQ_RETENTION)
        Validations.of(self.exceptions).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SQS3",
                reason="ExceptionsQueue is the workflows' dead-letter store (Catch target); its messages are "
                "inspected and replayed by `pssync dlq`, so it needs no DLQ of its own.",
            )
        )

        self.event_relay_buffer: sqs.Queue | None = None
        self.event_relay_dlq: sqs.Queue | None = None
        if event_relay:
            # Relayed Salesforce events wait here for the normaliser (batching, partial failures, redrive).
            self.event_relay_dlq = self._queue("SalesforceEventRelayDlq", retention=runtime.DLQ_RETENTION)
            self.event_relay_buffer = self._queue(
                "SalesforceEventRelayBuffer",
                visibility_timeout=Duration.seconds(
                    runtime.LAMBDA_TIMEOUT.to_seconds() * runtime.SQS_VISIBILITY_TIMEOUT_FACTOR
                ),
                dead_letter_queue=sqs.DeadLetterQueue(
                    queue=self.event_relay_dlq, max_receive_count=runtime.DLQ_MAX_RECEIVE_COUNT
                ),
            )
            self._extra_dead_letters["SalesforceEventRelayDlq"] = self.event_relay_dlq
            Validations.of(self.event_relay_dlq).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-SQS3",
                    reason="It is the dead-letter queue of the Event Relay buffer (redrive) and of the "
                    "partner-bus rule target; `pssync dlq replay` redrives it to the buffer.",
                )
            )
        self.kantata_poller_dlq: sqs.Queue | None = None
        if kantata_poller:
            # Failed schedule deliveries and failed poller invocations (async on-failure destination).
            self.kantata_poller_dlq = self._queue("KantataPollerDlq", retention=runtime.DLQ_RETENTION)
            self._extra_dead_letters["KantataPollerDlq"] = self.kantata_poller_dlq
            Validations.of(self.kantata_poller_dlq).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-SQS3",
                    reason="It is the dead-letter store of the Kantata schedule target and of the poller's "
                    "asynchronous invocations; a missed tick is covered by the next poll (the cursor stays).",
                )
            )

    @property
    def dead_letter_queues(self) -> dict[str, sqs.IQueue]:
        """Queues whose depth means lost work, by display name (monitoring alarms on each)."""
        return {
            **{f"{name}InboxDlq": dlq for name, (_, dlq) in self.workflow_inboxes.items()},
            "ClosedWonInboxDlq": self.closed_won_inbox_dlq,
            "EventBridgeTargetDlq": self.eventbridge_target_dlq,
            **self._extra_dead_letters,
        }

    def workflow_inbox(self, workflow: str) -> sqs.Queue:
        """The inbox of one workflow (by its construct id); its DLQ is alarmed with the others."""
        inbox, dlq = self._inbox(workflow)
        self.workflow_inboxes[workflow] = (inbox, dlq)
        return inbox

    def _inbox(self, workflow: str) -> tuple[sqs.Queue, sqs.Queue]:
        """An inbox (what a bus rule delivers) with a redrive DLQ after repeated processing failures."""
        dlq = self._queue(f"{workflow}InboxDlq", retention=runtime.DLQ_RETENTION)
        inbox = self._queue(
            f"{workflow}Inbox",
            visibility_timeout=Duration.seconds(
                runtime.LAMBDA_TIMEOUT.to_seconds() * runtime.SQS_VISIBILITY_TIMEOUT_FACTOR
            ),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=runtime.DLQ_MAX_RECEIVE_COUNT),
        )
        return inbox, dlq

    def _queue(
        self,
        construct_id: str,
        *,
        retention: Duration | None = None,
        visibility_timeout: Duration | None = None,
        dead_letter_queue: sqs.DeadLetterQueue | None = None,
    ) -> sqs.Queue:
        return sqs.Queue(
            self,
            construct_id,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=retention,
            visibility_timeout=visibility_timeout,
            dead_letter_queue=dead_letter_queue,
            removal_policy=runtime.removal_policy(self._stage),
        )
