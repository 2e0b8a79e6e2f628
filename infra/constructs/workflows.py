"""Step Functions workflows: one Lambda per business step, defined in readable ASL (infra/statemachines)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import runtime
from infra.constructs.functions import Functions, PssyncFunction

STATEMACHINES_DIR = Path(__file__).resolve().parents[1] / "statemachines"
INBOX_BATCH_SIZE = 10


@dataclass(frozen=True)
class WorkflowStores:
    business_table: dynamodb.ITable
    delivery_log_table: dynamodb.ITable
    bus: events.IEventBus
    exceptions_queue: sqs.IQueue


class Needs(Enum):
    """What a step touches; each need is one environment variable and one narrow grant."""

    BUSINESS_TABLE = "business"
    PSA = "psa"
    ERP = "erp"
    BUS = "bus"


@dataclass(frozen=True)
class Step:
    state: str  # the ASL state name: its `${<state>FunctionArn}` placeholder
    folder: str  # functions/<folder>
    needs: tuple[Needs, ...] = ()


@dataclass(frozen=True)
class WorkflowSpec:
    name: str  # e.g. provision-engagement: execution names, exception records, the inbox tag
    construct_id: str
    asl_file: str
    starter_id: str
    steps: tuple[Step, ...]
    # The canonical detail-types whose bus rule feeds this workflow's inbox (each starts one workflow only).
    starts_on: tuple[str, ...]


class Workflow(Construct):
    """A Standard state machine from its ASL file, one function per step, and the starter on its inbox.

    The starter names each execution after the business event, so redeliveries find the running one.
    """

    def __init__(
        self,
        scope: Construct,
        *,
        spec: WorkflowSpec,
        functions: Functions,
        stores: WorkflowStores,
        inbox: sqs.Queue,
    ) -> None:
        super().__init__(scope, spec.construct_id)
        self.spec = spec
        steps = {step.state: self._create_step(functions, stores, step) for step in spec.steps}

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
            definition_body=sfn.DefinitionBody.from_string((STATEMACHINES_DIR / spec.asl_file).read_text()),
            definition_substitutions={
                **{f"{state}FunctionArn": step.function.function_arn for state, step in steps.items()},
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
            spec.starter_id,
            role_name=_snake(spec.starter_id),
            folder="start_workflow",
            environment={
                "STATE_MACHINE_ARN": self.state_machine.state_machine_arn,
                "WORKFLOW_NAME": spec.name,
                "WORKFLOW_EVENT_TYPES": ",".join(spec.starts_on),
            },
        )
        self.state_machine.grant_start_execution(self.starter.role)
        self.starter.consume(inbox, batch_size=INBOX_BATCH_SIZE)

    @staticmethod
    def _create_step(functions: Functions, stores: WorkflowStores, step: Step) -> PssyncFunction:
        environment: dict[str, str] = {}
        if Needs.BUSINESS_TABLE in step.needs:
            environment["BUSINESS_TABLE_NAME"] = stores.business_table.table_name
        if Needs.PSA in step.needs:
            environment.update(
                DELIVERY_LOG_TABLE_NAME=stores.delivery_log_table.table_name, PSA_CONNECTOR="shadow"
            )
        if Needs.ERP in step.needs:
            environment.update(
                DELIVERY_LOG_TABLE_NAME=stores.delivery_log_table.table_name, ERP_CONNECTOR="shadow"
            )
        if Needs.BUS in step.needs:
            environment["EVENT_BUS_NAME"] = stores.bus.event_bus_name
        function = functions.create(step.state, role_name=step.folder, environment=environment)
        if Needs.BUSINESS_TABLE in step.needs:
            function.grant_table_read_write(stores.business_table)
        if Needs.PSA in step.needs or Needs.ERP in step.needs:
            function.grant_table_read_write(stores.delivery_log_table)
        if Needs.BUS in step.needs:
            stores.bus.grant_put_events_to(function.role)
        return function

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


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))
