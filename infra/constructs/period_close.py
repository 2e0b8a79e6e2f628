"""Period close: a Standard state machine with a Distributed Map over shard files on S3, its step
functions, the bucket for manifests and shard results, and a monthly schedule per configured entity.

Not a catalogued workflow: no canonical event starts it. `pssync close request|reopen` and the schedule
start it by name (entity, period, attempt, action), so a duplicate request finds the execution it asked for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from aws_cdk import Acknowledgment, ArnFormat, Duration, Stack, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import runtime
from infra.constructs.functions import Functions, PssyncFunction
from infra.constructs.workflows import STATEMACHINES_DIR, WorkflowStores

CLOSE_ENTITIES_CONTEXT_KEY = "pssync:close_entities"
ASL_FILE = "close_period.asl.json"
ENTITY_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")  # as pssync.workflows.period_close
# 03:00 UTC on the first of each month: the month before is closed once its last day is over everywhere.
CLOSE_SCHEDULE = events.Schedule.cron(minute="0", hour="3", day="1", month="*", year="*")
# A shard of 200 contracts is ~1,000 item reads and writes: well inside five minutes (ASL: 330 s).
SHARD_TIMEOUT = Duration.minutes(5)
# The planner scans the business table page by page (ASL: 900 s); a Lambda may run 15 minutes at most.
PLAN_TIMEOUT = Duration.seconds(870)
CLOSE_PREFIX = "closes/*"
SCHEDULE_RETRY_ATTEMPTS = 2
SCHEDULE_MAX_EVENT_AGE = Duration.hours(6)


def parse_close_entities(value: Any) -> list[str]:
    """`-c 'pssync:close_entities=["NL01","DE02"]'`: the entities closed on schedule (none by default)."""
    if value is None:
        return []
    entities = json.loads(value) if isinstance(value, str) else value
    if not isinstance(entities, list) or not all(
        isinstance(e, str) and ENTITY_CODE.match(e) for e in entities
    ):
        raise ValueError(f"{CLOSE_ENTITIES_CONTEXT_KEY} must be a list of legal entity codes, not {value!r}")
    return list(dict.fromkeys(entities))


class PeriodClose(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Functions,
        stores: WorkflowStores,
        gate_queues: Sequence[sqs.IQueue],
        entities: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        stage = functions.stage
        self.bucket = s3.Bucket(
            self,
            "Manifests",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            removal_policy=runtime.removal_policy(stage),
            # Shard files and results are working state of one close; the journals live in the ERP and
            # the close ledger, so a year is ample for an audit of how a close was run.
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(400))],
        )
        Validations.of(self.bucket).acknowledge(
            Acknowledgment(
                id="AwsSolutions-S1",
                reason="Working files of the close (shard lists, per-shard results) written and read only by "
                "the close's functions and state machine; CloudTrail data events are the access trail.",
            )
        )
        state_machine_name = f"{stack.stack_name}-close-period"
        state_machine_arn = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=state_machine_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        executions_arn = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        bucket_env = {"CLOSE_BUCKET_NAME": self.bucket.bucket_name}
        table_env = {"BUSINESS_TABLE_NAME": stores.business_table.table_name}
        bus_env = {"EVENT_BUS_NAME": stores.bus.event_bus_name}

        gate = functions.create(
            "GateClose",
            role_name="close_period_gate",
            environment={
                **table_env,
                "CLOSE_GATE_QUEUE_URLS": stack.to_json_string([q.queue_url for q in gate_queues]),
            },
        )
        self._read_business_table(gate, stores)
        gate.role.add_to_policy(
            iam.PolicyStatement(
                # Peek: receive, then make visible again at once (ChangeMessageVisibility); never delete.
                actions=["sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
                resources=[q.queue_arn for q in gate_queues],
            )
        )

        plan = functions.create(
            "PlanClose",
            role_name="close_period_plan",
            environment={**table_env, **bucket_env},
            timeout=PLAN_TIMEOUT,
        )
        plan.role.add_to_policy(
            iam.PolicyStatement(actions=["dynamodb:Scan"], resources=[stores.business_table.table_arn])
        )
        self._objects(plan, "s3:PutObject")

        shard = functions.create(
            "CloseShard",
            role_name="close_period_shard",
            environment={
                **table_env,
                **bucket_env,
                "DELIVERY_LOG_TABLE_NAME": stores.delivery_log_table.table_name,
                "ERP_CONNECTOR": "shadow",
            },
            timeout=SHARD_TIMEOUT,
        )
        shard.grant_table_read_write(stores.business_table)
        shard.grant_table_read_write(stores.delivery_log_table)
        self._objects(shard, "s3:GetObject", "s3:PutObject")

        lock = functions.create(
            "LockPeriod", role_name="close_period_lock", environment={**table_env, **bucket_env, **bus_env}
        )
        lock.grant_table_read_write(stores.business_table)
        self._objects(lock, "s3:GetObject")
        lock.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [CLOSE_PREFIX]}},
            )
        )
        stores.bus.grant_put_events_to(lock.role)

        reopen = functions.create(
            "ReopenPeriod", role_name="close_period_reopen", environment={**table_env, **bus_env}
        )
        reopen.grant_table_read_write(stores.business_table)
        stores.bus.grant_put_events_to(reopen.role)

        steps = {
            "GateClose": gate,
            "PlanClose": plan,
            "CloseShard": shard,
            "LockPeriod": lock,
            "ReopenPeriod": reopen,
        }
        log_group = logs.LogGroup(
            self, "LogGroup", retention=runtime.LOG_RETENTION, removal_policy=runtime.removal_policy(stage)
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            # Inline, as every workflow's: the template and the local runtime see the definition itself.
            definition_body=sfn.DefinitionBody.from_string((STATEMACHINES_DIR / ASL_FILE).read_text()),
            definition_substitutions={f"{s}FunctionArn": f.function.function_arn for s, f in steps.items()},
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
        )
        role = self.state_machine.role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[f.function.function_arn for f in steps.values()]
            )
        )
        # Distributed Map: each shard runs as a child execution of this state machine, which the map run
        # starts, describes and stops itself. By name, not by reference: the role cannot depend on the
        # state machine it belongs to.
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[state_machine_arn])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:StopExecution"], resources=[executions_arn]
            )
        )
        # The ItemReader reads the manifest as the state machine's role.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[self.bucket.arn_for_objects(CLOSE_PREFIX)]
            )
        )
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="Step Functions log delivery and X-Ray do not support resource-level permissions; AWS "
                "documents Resource '*' for both. Lambda, S3 and Step Functions access is scoped to ARNs.",
            ),
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
                f"execution:{state_machine_name}:*]",
                reason="The Distributed Map's child executions of this state machine only: their names are "
                "made by the map run, so the ARN ends in a wildcard under this state machine's name.",
            ),
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{self._logical_id(self.bucket)}.Arn>/{CLOSE_PREFIX}]",
                reason="The manifests under closes/ of the close's own bucket: one object per close and "
                "shard, named at run time.",
            ),
        )
        for function in (plan, shard, lock):
            Validations.of(function.role).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::<{self._logical_id(self.bucket)}.Arn>/{CLOSE_PREFIX}]",
                    reason="Shard files and results under closes/ of the close's own bucket, named per close "
                    "and shard at run time.",
                )
            )

        self.schedule_dlq: sqs.Queue | None = None  # set when entities are scheduled (alarmed by Monitoring)
        self.requester = self._schedule(
            functions, entities, state_machine_name, state_machine_arn, executions_arn
        )

    def _schedule(
        self,
        functions: Functions,
        entities: Sequence[str],
        state_machine_name: str,
        state_machine_arn: str,
        executions_arn: str,
    ) -> PssyncFunction | None:
        """A rule per entity (03:00 UTC on the 1st) invoking the requester, which closes the month before."""
        if not entities:
            return None
        requester = functions.create(
            "RequestPeriodClose",
            role_name="request_period_close",
            environment={"CLOSE_STATE_MACHINE_ARN": state_machine_arn},
        )
        requester.role.add_to_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[state_machine_arn])
        )
        requester.role.add_to_policy(
            iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[executions_arn])
        )
        Validations.of(requester.role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
                f"execution:{state_machine_name}:*]",
                reason="Describes the close executions by name (entity, period, attempt) to find a duplicate "
                "request's execution: only executions of the close state machine.",
            )
        )
        dead_letters = sqs.Queue(
            self,
            "ScheduleDlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=runtime.DLQ_RETENTION,
        )
        Validations.of(dead_letters).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SQS3",
                reason="This queue is the dead-letter queue of the close schedule's targets.",
            )
        )
        self.schedule_dlq = dead_letters
        # EventBridge invokes the requester asynchronously: a failure after its retry lands in the same queue.
        requester.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(dead_letters),
            retry_attempts=1,
            max_event_age=SCHEDULE_MAX_EVENT_AGE,
        )
        for entity in entities:
            events.Rule(
                self,
                f"Schedule{re.sub(r'[^A-Za-z0-9]', '', entity)}",
                description=f"Request the close of the previous month for {entity}",
                schedule=CLOSE_SCHEDULE,
                targets=[
                    targets.LambdaFunction(
                        requester.function,
                        event=events.RuleTargetInput.from_object({"legal_entity": entity}),
                        dead_letter_queue=dead_letters,
                        retry_attempts=SCHEDULE_RETRY_ATTEMPTS,
                        max_event_age=SCHEDULE_MAX_EVENT_AGE,
                    )
                ],
            )
        return requester

    @staticmethod
    def _logical_id(construct: Construct) -> str:
        child = construct.node.default_child
        assert child is not None
        return Stack.of(construct).get_logical_id(child)  # type: ignore[arg-type]

    def _objects(self, function: PssyncFunction, *actions: str) -> None:
        function.role.add_to_policy(
            iam.PolicyStatement(actions=list(actions), resources=[self.bucket.arn_for_objects(CLOSE_PREFIX)])
        )

    @staticmethod
    def _read_business_table(function: PssyncFunction, stores: WorkflowStores) -> None:
        function.role.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:Query"], resources=[stores.business_table.table_arn]
            )
        )
