"""The pssync stack: composes one construct per concern and nothing else."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack, Tags
from constructs import Construct

from infra.constructs.event_bus import EventBus
from infra.constructs.functions import Functions
from infra.constructs.ingestion_api import IngestionApi
from infra.constructs.monitoring import Monitoring
from infra.constructs.queues import Queues
from infra.constructs.tables import Tables
from infra.constructs.workflows import ProvisionEngagementWorkflow, WorkflowStores
from infra.sources import WebhookSource


class PssyncStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, stage: str, sources: list[WebhookSource], **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        Tags.of(self).add("project", "pssync")
        Tags.of(self).add("stage", stage)

        tables = Tables(self, "Tables", stage=stage)
        queues = Queues(self, "Queues", stage=stage)
        functions = Functions(self, "Functions", stage=stage)
        event_bus = EventBus(self, "Events", stage=stage, target_dlq=queues.eventbridge_target_dlq)
        event_bus.route_to_queue("ContractBooked", detail_type="ContractBooked", queue=queues.provision_inbox)

        self.ingestion_api = IngestionApi(
            self,
            "IngestionApi",
            functions=functions,
            sources=sources,
            bus=event_bus.bus,
            idempotency_table=tables.idempotency,
        )
        provision_engagement = ProvisionEngagementWorkflow(
            self,
            "ProvisionEngagement",
            functions=functions,
            stores=WorkflowStores(
                business_table=tables.business,
                delivery_log_table=tables.delivery_log,
                bus=event_bus.bus,
                exceptions_queue=queues.exceptions,
            ),
            inbox=queues.provision_inbox,
        )
        self._tag_replay_routes(queues, event_bus)
        Monitoring(
            self,
            "Monitoring",
            stage=stage,
            dead_letter_queues={**queues.dead_letter_queues, "ExceptionsQueue": queues.exceptions},
            state_machines={"ProvisionEngagement": provision_engagement.state_machine},
        )

    @staticmethod
    def _tag_replay_routes(queues: Queues, event_bus: EventBus) -> None:
        """Tags tell `pssync dlq replay` where each dead-letter store's messages go back to."""
        Tags.of(queues.provision_inbox).add("pssync:workflow", "provision-engagement")
        Tags.of(queues.provision_inbox_dlq).add("pssync:replay", "redrive")
        # No target tag on a redrive DLQ: its source is found through the redrive policy itself, and a
        # tag naming the source queue would make the two queues depend on each other.
        Tags.of(queues.eventbridge_target_dlq).add("pssync:replay", "bus")
        Tags.of(queues.eventbridge_target_dlq).add("pssync:replay-target", event_bus.bus.event_bus_name)
        Tags.of(queues.exceptions).add("pssync:replay", "workflow-exceptions")
