"""Salesforce Event Relay: partner event bus(es) -> rule -> SQS buffer -> `salesforce_event_relay`.

No public endpoint and no secret: only Salesforce can publish to its partner event source. An SQS buffer
sits between the rule and the Lambda (batching, partial batch failures, redrive to a DLQ; locally, moto
delivers rules to SQS but not to Lambda targets).
"""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.event_bus import TARGET_MAX_EVENT_AGE, TARGET_RETRY_ATTEMPTS
from infra.constructs.functions import Functions
from infra.constructs.ingest_common import IngestTargets, grant_crm_token_reads
from infra.sources import EventRelayBus

BUFFER_BATCH_SIZE = 10


class SalesforceEventRelay(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Functions,
        ingest: IngestTargets,
        buses: list[EventRelayBus],
        buffer: sqs.Queue,
        dead_letters: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.normaliser = functions.create(
            "SalesforceEventRelay", role_name="salesforce_event_relay", environment=ingest.environment()
        )
        ingest.grant_accept(self.normaliser)
        # Thin events (CDC UPDATE / GAP_*) fetch the opportunity with the source's CRM API token.
        grant_crm_token_reads(self, self.normaliser, (bus.source for bus in buses))
        self.normaliser.consume(buffer, batch_size=BUFFER_BATCH_SIZE)
        self.buses: list[events.EventBus] = []
        for index, relay in enumerate(buses):
            # The bus is the partner event bus of the partner event source (same name).
            bus = events.EventBus(self, f"PartnerBus{index}", event_source_name=relay.event_source_name)
            events.Rule(
                self,
                f"PartnerBus{index}ToBuffer",
                event_bus=bus,
                description=f"Salesforce org {relay.org_id} events to the Event Relay buffer",
                event_pattern=events.EventPattern(source=[relay.event_source_name]),
                targets=[
                    targets.SqsQueue(
                        buffer,
                        dead_letter_queue=dead_letters,
                        max_event_age=TARGET_MAX_EVENT_AGE,
                        retry_attempts=TARGET_RETRY_ATTEMPTS,
                    )
                ],
            )
            self.buses.append(bus)
