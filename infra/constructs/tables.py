"""DynamoDB tables: idempotency records, versioned business aggregates, the PSA/ERP delivery log, and the
audit log of dead-letter replays."""

from __future__ import annotations

from aws_cdk import CfnOutput
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra import runtime

IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"
# Powertools idempotency records must outlive the longest source retry horizon (3 days) plus slack.
IDEMPOTENCY_EXPIRY_SECONDS = 4 * 24 * 60 * 60


class Tables(Construct):
    """CloudFormation names the tables, so several stages can share an account."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: str, cursors: bool = False) -> None:
        super().__init__(scope, construct_id)
        self._stage = stage
        self.idempotency = self._table(
            "IdempotencyTable",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute=IDEMPOTENCY_TTL_ATTRIBUTE,
        )
        self.business = self._table(
            "BusinessTable",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
        )
        self.delivery_log = self._table(
            "DeliveryLogTable",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
        )
        # Who replayed what from which dead-letter store (`pssync dlq replay` / `history`): operational
        # evidence apart from business data, so an operator's grant is this table only (no write access to
        # contract versions), and kept like the business data (PITR, retained outside dev). No function
        # reads or writes it.
        self.replay_audit = self._table(
            "ReplayAuditTable",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
        )
        output = CfnOutput(
            self,
            "ReplayAuditTableName",
            value=self.replay_audit.table_name,
            description="pssync dlq replay / history: --audit-table (found by name when omitted)",
        )
        output.override_logical_id("ReplayAuditTableName")
        # Poll cursors (pk CURSOR#<source>): operational state, apart from business data, so the poller's
        # grant is this table only and a cursor can be reset without touching business items.
        self.cursors = (
            self._table(
                "CursorTable",
                partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            )
            if cursors
            else None
        )

    def _table(
        self,
        construct_id: str,
        *,
        partition_key: dynamodb.Attribute,
        sort_key: dynamodb.Attribute | None = None,
        time_to_live_attribute: str | None = None,
    ) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            construct_id,
            partition_key=partition_key,
            sort_key=sort_key,
            time_to_live_attribute=time_to_live_attribute,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=runtime.removal_policy(self._stage),
        )
