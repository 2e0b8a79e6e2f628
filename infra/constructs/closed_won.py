"""Closed-won resolution: ClosedWonSignalled on the bus -> inbox queue -> `resolve_closed_won`.

Thin CRM events (HubSpot deal stage or contract property, Salesforce outbound message, a Dataverse Win
without the terms or an Update of a won opportunity) are answered at the webhook at once; this function
reads the record with the source's CRM token and publishes the ContractBooked, or, when the deal's
contract is booked and its terms changed, the ContractAmended. It reads the contract's head version from
the business table (GetItem and Query only: the workflows write contract versions, never this function).
The inbox redrives to a DLQ that `pssync dlq replay` sends back.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.event_bus import EventBus
from infra.constructs.functions import Functions
from infra.constructs.ingest_common import IngestTargets, grant_crm_token_reads
from pssync.model.sources import SourceConfig

# One signal per invocation: its reads may take READ_BUDGET_SECONDS (20 s, Retry-After waits included)
# of the 30 s timeout (pssync.ingest.closed_won).
INBOX_BATCH_SIZE = 1
# CRM APIs rate-limit per app (HubSpot: 100-190 requests per 10 s): two readers at most (SQS minimum).
MAX_CONCURRENT_READERS = 2
# The version store's reads (pssync.adapters.aws.DynamoDBVersionStore.history / head): nothing else.
CONTRACT_READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query")


class ClosedWonResolution(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Functions,
        ingest: IngestTargets,
        sources: Iterable[SourceConfig],
        event_bus: EventBus,
        inbox: sqs.Queue,
        business_table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        contracts = business_table
        self.resolver = functions.create(
            "ResolveClosedWon",
            role_name="resolve_closed_won",
            environment={**ingest.environment(), "BUSINESS_TABLE_NAME": contracts.table_name},
        )
        ingest.grant_publish_once(self.resolver)
        self.resolver.role.add_to_policy(
            iam.PolicyStatement(actions=list(CONTRACT_READ_ACTIONS), resources=[contracts.table_arn])
        )
        grant_crm_token_reads(self, self.resolver, (s for s in sources if s.scheme.is_http))
        self.resolver.consume(inbox, batch_size=INBOX_BATCH_SIZE, max_concurrency=MAX_CONCURRENT_READERS)
        event_bus.route_to_queue("ClosedWonSignalled", detail_type="ClosedWonSignalled", queue=inbox)
