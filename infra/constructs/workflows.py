"""Step Functions workflows: one Lambda per business step, defined in readable ASL (infra/statemachines)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import runtime
from infra.constructs.functions import Functions, PssyncFunction

STATEMACHINES_DIR = Path(__file__).resolve().parents[1] / "statemachines"
PROVISION_ENGAGEMENT_ASL = STATEMACHINES_DIR / "provision_engagement.asl.json"
PROVISION_ENGAGEMENT_WORKFLOW = "provision-engagement"
INBOX_BATCH_SIZE = 10


@dataclass(frozen=True)
class WorkflowStores:
    business_table: dynamodb.ITable
    delivery_log_table: dynamodb.ITable
    bus: events.IEventBus
    exceptions_queue: sqs.IQueue


class ProvisionEngagementWorkflow(Construct):
    """Contract booked -> contract v1, PSA project, ERP billing schedule, revenue schedule, activation event.

    Started by `start_provision_engagement` from the inbox queue the ContractBooked rule feeds.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Functions,
        stores: WorkflowStores,
        inbox: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        steps = self._create_steps(functions, stores)

        log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=runtime.LOG_RETENTION,
            removal_policy=runtime.removal_policy(functions.stage),
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_type=sfn.StateMachineType.STANDARD,
            # Inline (DefinitionString), not from_file: from_file uploads an S3 asset, which hides the
            # definition from template assertions and from the local runtime that builds from the template.
            definition_body=sfn.DefinitionBody.from_string(PROVISION_ENGAGEMENT_ASL.read_text()),
            definition_substitutions={
                **{f"{key}FunctionArn": step.function.function_arn for key, step in steps.items()},
                "ExceptionsQueueUrl": stores.exceptions_queue.queue_url,
            },
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
        )
        # The ASL calls the functions by unqualified ARN, so the role needs exactly those ARNs.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[step.function.function_arn for step in steps.values()],
            )
        )
        stores.exceptions_queue.grant_send_messages(self.state_machine)
        self._acknowledge_service_wildcards()

        self.starter = functions.create(
            "StartProvisionEngagement",
            role_name="start_provision_engagement",
            folder="start_workflow",
            environment={
                "STATE_MACHINE_ARN": self.state_machine.state_machine_arn,
                "WORKFLOW_NAME": PROVISION_ENGAGEMENT_WORKFLOW,
            },
        )
        self.state_machine.grant_start_execution(self.starter.role)
        self.starter.function.add_event_source(
            event_sources.SqsEventSource(inbox, batch_size=INBOX_BATCH_SIZE, report_batch_item_failures=True)
        )

    @staticmethod
    def _create_steps(functions: Functions, stores: WorkflowStores) -> dict[str, PssyncFunction]:
        """Step functions keyed by the ASL state name (the `${<State>FunctionArn}` placeholder)."""
        business = {"BUSINESS_TABLE_NAME": stores.business_table.table_name}
        delivery_log = {"DELIVERY_LOG_TABLE_NAME": stores.delivery_log_table.table_name}
        steps = {
            "ValidateMasterData": functions.create("ValidateMasterData", role_name="validate_master_data"),
            "RecordContractVersion": functions.create(
                "RecordContractVersion", role_name="record_contract_version", environment=business
            ),
            "ProvisionPsaProject": functions.create(
                "ProvisionPsaProject",
                role_name="provision_psa_project",
                environment={**delivery_log, "PSA_CONNECTOR": "shadow"},
            ),
            "PublishErpBillingSchedule": functions.create(
                "PublishErpBillingSchedule",
                role_name="publish_erp_billing_schedule",
                environment={**delivery_log, "ERP_CONNECTOR": "shadow"},
            ),
            "BuildRevenueSchedule": functions.create(
                "BuildRevenueSchedule", role_name="build_revenue_schedule", environment=business
            ),
            "EmitEngagementActivated": functions.create(
                "EmitEngagementActivated",
                role_name="emit_engagement_activated",
                environment={"EVENT_BUS_NAME": stores.bus.event_bus_name},
            ),
        }
        steps["RecordContractVersion"].grant_table_read_write(stores.business_table)
        steps["BuildRevenueSchedule"].grant_table_read_write(stores.business_table)
        steps["ProvisionPsaProject"].grant_table_read_write(stores.delivery_log_table)
        steps["PublishErpBillingSchedule"].grant_table_read_write(stores.delivery_log_table)
        stores.bus.grant_put_events_to(steps["EmitEngagementActivated"].role)
        return steps

    def _acknowledge_service_wildcards(self) -> None:
        role = self.state_machine.role
        reasons = {
            "AwsSolutions-IAM5[Resource::*]": (
                "Step Functions log delivery (logs:CreateLogDelivery, logs:DescribeResourcePolicies, ...) "
                "and X-Ray (xray:PutTraceSegments, xray:GetSamplingRules, ...) do not support resource-level "
                "permissions; AWS documents Resource '*' for both. Lambda and SQS access is scoped to ARNs."
            ),
        }
        Validations.of(role).acknowledge(*(Acknowledgment(id=i, reason=r) for i, r in reasons.items()))
