"""The canonical event bus, its replay archive and the rules that route business events to workflows."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

INGEST_SOURCE = "pssync.ingest"
ARCHIVE_RETENTION = Duration.days(30)
# EventBridge's maximum retry budget: a target outage of up to a day loses nothing.
TARGET_MAX_EVENT_AGE = Duration.hours(24)
TARGET_RETRY_ATTEMPTS = 185


class EventBus(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stage: str, target_dlq: sqs.IQueue) -> None:
        super().__init__(scope, construct_id)
        self._target_dlq = target_dlq
        self.bus = events.EventBus(self, "Bus", event_bus_name=f"pssync-{stage}")
        # Every event published in this account to the bus, so any incident window can be replayed.
        self.bus.archive(
            "Archive",
            description=f"All pssync-{stage} events, for replay",
            event_pattern=events.EventPattern(account=[Stack.of(self).account]),
            retention=ARCHIVE_RETENTION,
        )

    def route_to_queue(self, rule_id: str, *, detail_type: str, queue: sqs.IQueue) -> events.Rule:
        """A rule for one canonical detail-type from the ingest API, delivered to a workflow inbox queue."""
        return events.Rule(
            self,
            rule_id,
            event_bus=self.bus,
            description=f"{detail_type} events to {rule_id} inbox",
            event_pattern=events.EventPattern(source=[INGEST_SOURCE], detail_type=[detail_type]),
            targets=[
                targets.SqsQueue(
                    queue,
                    dead_letter_queue=self._target_dlq,
                    max_event_age=TARGET_MAX_EVENT_AGE,
                    retry_attempts=TARGET_RETRY_ATTEMPTS,
                )
            ],
        )
