"""What every entry point that accepts events needs: IngestService.accept's stores and their grants.

The webhook function, the Event Relay normaliser and the Kantata poller all run IngestService.accept:
raw payload lineage (S3 PutObject under raw/), per-event dedupe (idempotency table) and PutEvents.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constructs.functions import PssyncFunction
from infra.constructs.tables import IDEMPOTENCY_EXPIRY_SECONDS
from pssync.model.sources import SourceConfig


@dataclass(frozen=True)
class IngestTargets:
    bus: events.IEventBus
    idempotency_table: dynamodb.ITable
    raw_payloads: s3.Bucket
    source_registry: str  # SOURCE_REGISTRY JSON (infra.sources.registry_json)

    def environment(self) -> dict[str, str]:
        return {
            "EVENT_BUS_NAME": self.bus.event_bus_name,
            "IDEMPOTENCY_TABLE_NAME": self.idempotency_table.table_name,
            "IDEMPOTENCY_EXPIRY_SECONDS": str(IDEMPOTENCY_EXPIRY_SECONDS),
            "RAW_PAYLOAD_BUCKET": self.raw_payloads.bucket_name,
            "SOURCE_REGISTRY": self.source_registry,
        }

    def grant_publish_once(self, function: PssyncFunction) -> None:
        """PutEvents on the bus and item access on the idempotency table: publish each event once."""
        self.bus.grant_put_events_to(function.role)
        function.grant_table_read_write(self.idempotency_table)

    def grant_accept(self, function: PssyncFunction) -> None:
        """grant_publish_once, plus PutObject under raw/ (lineage)."""
        self.grant_publish_once(function)
        function.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[self.raw_payloads.arn_for_objects("raw/*")]
            )
        )
        stack = Stack.of(function)
        bucket_id = stack.resolve(stack.get_logical_id(self.raw_payloads.node.default_child))  # type: ignore[arg-type]
        Validations.of(function.role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/raw/*]",
                reason="Raw payload keys are content hashes, unknown in advance; the grant is PutObject "
                "only, under the raw/ prefix of the lineage bucket.",
            )
        )


def grant_crm_token_reads(
    scope: Construct, function: PssyncFunction, sources: Iterable[SourceConfig]
) -> None:
    """Thin events fetch the authoritative record with the source's CRM API token: read access to exactly
    those token secrets (by name; the user creates and rotates them)."""
    names = sorted({s.crm_api.token_secret_id for s in sources if s.crm_api is not None})
    for index, name in enumerate(names):
        secretsmanager.Secret.from_secret_name_v2(scope, f"CrmToken{index}", name).grant_read(function.role)
