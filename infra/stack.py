"""The pssync stack: composes one construct per concern and nothing else."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack, Tags
from constructs import Construct

from infra.constructs.closed_won import ClosedWonResolution
from infra.constructs.cutover import (
    CUTOVER_CONTEXT_KEY,
    NETSUITE_CONTEXT_KEY,
    VendorTargets,
    parse_cutover,
    parse_netsuite,
)
from infra.constructs.event_bus import EventBus
from infra.constructs.event_relay import SalesforceEventRelay
from infra.constructs.functions import Functions
from infra.constructs.ingestion_api import IngestionApi
from infra.constructs.kantata_poller import KantataPoller
from infra.constructs.monitoring import (
    ALARM_SUBSCRIBERS_CONTEXT_KEY,
    LAG_OBJECTIVES_CONTEXT_KEY,
    Monitoring,
    parse_alarm_subscribers,
    parse_lag_objectives,
)
from infra.constructs.period_close import CLOSE_ENTITIES_CONTEXT_KEY, PeriodClose, parse_close_entities
from infra.constructs.queues import Queues
from infra.constructs.reconciliation import (
    RECONCILIATION_TOLERANCE_CONTEXT_KEY,
    Reconciliation,
    parse_reconciliation_tolerance,
)
from infra.constructs.tables import Tables
from infra.constructs.workflows import Workflow, WorkflowStores
from infra.sources import EventRelayBus, KantataPolling
from infra.workflow_catalog import catalog
from pssync.model.sources import SourceConfig


class PssyncStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        sources: list[SourceConfig],
        event_relay: list[EventRelayBus] | None = None,
        kantata: KantataPolling | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        Tags.of(self).add("project", "pssync")
        Tags.of(self).add("stage", stage)

        tables = Tables(self, "Tables", stage=stage, cursors=kantata is not None)
        queues = Queues(
            self, "Queues", stage=stage, event_relay=bool(event_relay), kantata_poller=kantata is not None
        )
        vendor_targets = VendorTargets(
            self,
            "VendorTargets",
            stage=stage,
            cutover=parse_cutover(self.node.try_get_context(CUTOVER_CONTEXT_KEY)),
            netsuite=parse_netsuite(self.node.try_get_context(NETSUITE_CONTEXT_KEY)),
        )
        functions = Functions(self, "Functions", stage=stage, vendor_targets=vendor_targets)
        event_bus = EventBus(self, "Events", stage=stage, target_dlq=queues.eventbridge_target_dlq)
        inboxes = {spec.name: queues.workflow_inbox(spec.construct_id) for spec in catalog()}
        for spec in catalog():
            for detail_type in spec.starts_on:
                event_bus.route_to_queue(detail_type, detail_type=detail_type, queue=inboxes[spec.name])

        self.ingestion_api = IngestionApi(
            self,
            "IngestionApi",
            functions=functions,
            sources=sources,
            bus=event_bus.bus,
            idempotency_table=tables.idempotency,
        )
        ClosedWonResolution(
            self,
            "ClosedWonResolution",
            functions=functions,
            ingest=self.ingestion_api.targets,
            sources=sources,
            event_bus=event_bus,
            inbox=queues.closed_won_inbox,
            business_table=tables.business,
        )
        if event_relay:
            assert queues.event_relay_buffer is not None and queues.event_relay_dlq is not None
            SalesforceEventRelay(
                self,
                "SalesforceEventRelay",
                functions=functions,
                ingest=self.ingestion_api.targets,
                buses=event_relay,
                buffer=queues.event_relay_buffer,
                dead_letters=queues.event_relay_dlq,
            )
        if kantata is not None:
            assert tables.cursors is not None and queues.kantata_poller_dlq is not None
            KantataPoller(
                self,
                "KantataPoller",
                functions=functions,
                ingest=self.ingestion_api.targets,
                polling=kantata,
                cursor_table=tables.cursors,
                dead_letters=queues.kantata_poller_dlq,
            )
        stores = WorkflowStores(
            business_table=tables.business,
            delivery_log_table=tables.delivery_log,
            bus=event_bus.bus,
            exceptions_queue=queues.exceptions,
        )
        workflows = [
            Workflow(self, spec=spec, functions=functions, stores=stores, inbox=inboxes[spec.name])
            for spec in catalog()
        ]
        self._tag_replay_routes(queues, event_bus, workflows)
        period_close = PeriodClose(
            self,
            "PeriodClose",
            functions=functions,
            stores=stores,
            gate_queues=[queues.exceptions, *(dlq for _, dlq in queues.workflow_inboxes.values())],
            entities=parse_close_entities(self.node.try_get_context(CLOSE_ENTITIES_CONTEXT_KEY)),
        )
        dead_letter_queues = {
            **queues.dead_letter_queues,
            "ExceptionsQueue": queues.exceptions,
            **({"PeriodCloseScheduleDlq": period_close.schedule_dlq} if period_close.schedule_dlq else {}),
        }
        reconciliation = Reconciliation(
            self,
            "Reconciliation",
            functions=functions,
            stores=stores,
            dead_letter_queues=dead_letter_queues,
            tolerance=parse_reconciliation_tolerance(
                self.node.try_get_context(RECONCILIATION_TOLERANCE_CONTEXT_KEY)
            ),
        )
        Monitoring(
            self,
            "Monitoring",
            stage=stage,
            dead_letter_queues={
                **dead_letter_queues,
                "ReconciliationScheduleDlq": reconciliation.schedule_dlq,
            },
            state_machines={
                **{w.spec.construct_id: w.state_machine for w in workflows},
                "PeriodClose": period_close.state_machine,
            },
            alarm_subscribers=parse_alarm_subscribers(
                self.node.try_get_context(ALARM_SUBSCRIBERS_CONTEXT_KEY)
            ),
            lag_objectives=parse_lag_objectives(self.node.try_get_context(LAG_OBJECTIVES_CONTEXT_KEY)),
        )

    @staticmethod
    def _tag_replay_routes(queues: Queues, event_bus: EventBus, workflows: list[Workflow]) -> None:
        """Tags tell `pssync dlq replay` where each dead-letter store's messages go back to."""
        for workflow in workflows:
            inbox, inbox_dlq = queues.workflow_inboxes[workflow.spec.construct_id]
            Tags.of(inbox).add("pssync:workflow", workflow.spec.name)
            Tags.of(inbox_dlq).add("pssync:replay", "redrive")
        Tags.of(queues.closed_won_inbox_dlq).add("pssync:replay", "redrive")
        # No target tag on a redrive DLQ: its source is found through the redrive policy itself, and a
        # tag naming the source queue would make the two queues depend on each other.
        Tags.of(queues.eventbridge_target_dlq).add("pssync:replay", "bus")
        Tags.of(queues.eventbridge_target_dlq).add("pssync:replay-target", event_bus.bus.event_bus_name)
        Tags.of(queues.exceptions).add("pssync:replay", "workflow-exceptions")
        if queues.event_relay_dlq is not None:
            Tags.of(queues.event_relay_dlq).add("pssync:replay", "redrive")
