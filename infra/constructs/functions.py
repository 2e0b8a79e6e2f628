"""Lambda functions: the shared layer and a factory that gives every function the same shape.

Every function gets its own role (least privilege: only the grants its construct adds), its own log group
with retention, the shared layer, the common Powertools environment and CloudFormation metadata that the
local runtime uses to map the resource to its handler folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Acknowledgment, AssetHashType, Duration, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import runtime
from infra.bundling import SharedLayerBundler, layer_requirements
from infra.constructs.cutover import VendorTargets

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO_ROOT / "functions"
SHARED_DIR = REPO_ROOT / "shared"

# CloudFormation metadata keys read by the local runtime.
FUNCTION_FOLDER_METADATA = "pssync:function"
FUNCTION_ROLE_METADATA = "pssync:role"

# Item-level access for single-table repositories; no Scan, no table management.
TABLE_READ_WRITE_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
)


class PssyncFunction(Construct):
    """One Lambda function with its own role and log group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        role_name: str,
        folder: str,
        layer: lambda_.ILayerVersion,
        stage: str,
        environment: Mapping[str, str],
        timeout: Duration = runtime.LAMBDA_TIMEOUT,
    ) -> None:
        super().__init__(scope, construct_id)
        code_dir = FUNCTIONS_DIR / folder
        if not (code_dir / "handler.py").is_file():
            raise FileNotFoundError(f"Lambda '{role_name}' expects its handler at {code_dir / 'handler.py'}")

        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=runtime.LOG_RETENTION,
            removal_policy=runtime.removal_policy(stage),
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"pssync {stage} Lambda {role_name}",
        )
        # Instead of AWSLambdaBasicExecutionRole (logs:* on every log group): this log group only.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            code=lambda_.Code.from_asset(str(code_dir), exclude=["__pycache__", "*.pyc"]),
            handler="handler.handler",
            runtime=runtime.LAMBDA_RUNTIME,
            architecture=runtime.LAMBDA_ARCHITECTURE,
            memory_size=runtime.LAMBDA_MEMORY_MB,
            timeout=timeout,
            layers=[layer],
            role=self.role,
            log_group=self.log_group,
            logging_format=runtime.LAMBDA_LOG_FORMAT,
            application_log_level_v2=runtime.LAMBDA_APPLICATION_LOG_LEVEL,
            system_log_level_v2=runtime.LAMBDA_SYSTEM_LOG_LEVEL,
            tracing=runtime.LAMBDA_TRACING,
            environment={
                "POWERTOOLS_SERVICE_NAME": runtime.SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": runtime.SERVICE_NAME,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                "PSSYNC_FUNCTION": role_name,
                **({runtime.TRACING_ENV: "active"} if runtime.sdk_tracing(self) else {}),
                **environment,
            },
        )
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="Active tracing adds xray:PutTraceSegments and xray:PutTelemetryRecords, which X-Ray "
                "only grants on Resource '*' (no resource-level permissions). Every other statement of this "
                "role names its resources.",
            )
        )
        Validations.of(self.function).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason="Pinned to Python 3.12 on purpose: the shared layer's binary wheels (pydantic-core) "
                "are built for cp312/arm64 and the local runtime tests with 3.12. Upgrade runtime.py and "
                "the layer together.",
            )
        )
        cfn_function = self.function.node.default_child
        assert isinstance(cfn_function, lambda_.CfnFunction)
        cfn_function.add_metadata(FUNCTION_FOLDER_METADATA, folder)
        cfn_function.add_metadata(FUNCTION_ROLE_METADATA, role_name)

    def consume(self, queue: sqs.Queue, *, batch_size: int, max_concurrency: int | None = None) -> None:
        """Reads `queue` in batches with partial batch failures. A record failing its last receive is
        parked in the queue's DLQ by the handler itself, with its typed cause as message attributes
        (`pssync dlq show` prints them); the redrive policy stays the backstop for a crash or timeout."""
        dead_letters = queue.dead_letter_queue
        if dead_letters is None:
            raise ValueError(f"{queue.node.path} has no dead-letter queue; every consumed queue needs one")
        self.function.add_event_source(
            event_sources.SqsEventSource(
                queue,
                batch_size=batch_size,
                report_batch_item_failures=True,
                max_concurrency=max_concurrency,
            )
        )
        self.function.add_environment("DEAD_LETTER_QUEUE_URL", dead_letters.queue.queue_url)
        self.function.add_environment("MAX_RECEIVE_COUNT", str(dead_letters.max_receive_count))
        dead_letters.queue.grant_send_messages(self.function)

    def grant_table_read_write(self, table: dynamodb.ITable) -> None:
        """Item access on the table itself; pssync tables have no indexes, so no `index/*` wildcard."""
        self.role.add_to_policy(
            iam.PolicyStatement(actions=list(TABLE_READ_WRITE_ACTIONS), resources=[table.table_arn])
        )


class Functions(Construct):
    """Owns the shared layer and builds every function; each concern's construct asks it for its own.

    A function whose environment names a target's connector (`PSA_CONNECTOR` / `ERP_CONNECTOR`) sends
    commands: `vendor_targets` sets its cutover mode and, for a live target, the vendor's settings and grants.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, stage: str, vendor_targets: VendorTargets | None = None
    ) -> None:
        super().__init__(scope, construct_id)
        self.stage = stage
        self.vendor_targets = vendor_targets
        bundler = SharedLayerBundler(SHARED_DIR / "pssync", layer_requirements(REPO_ROOT / "pyproject.toml"))
        self.shared_layer = lambda_.LayerVersion(
            self,
            "SharedLayer",
            description="pssync shared package and its runtime dependencies (boto3 comes from the runtime)",
            code=lambda_.Code.from_asset(
                str(SHARED_DIR),
                exclude=["__pycache__", "*.pyc", "*.egg-info"],
                asset_hash_type=AssetHashType.CUSTOM,
                asset_hash=bundler.asset_hash(),
                bundling=bundler.bundling_options(),
            ),
            compatible_runtimes=[runtime.LAMBDA_RUNTIME],
            compatible_architectures=[runtime.LAMBDA_ARCHITECTURE],
            removal_policy=runtime.removal_policy(stage),
        )

    def create(
        self,
        construct_id: str,
        *,
        role_name: str,
        folder: str | None = None,
        environment: Mapping[str, str] | None = None,
        timeout: Duration = runtime.LAMBDA_TIMEOUT,
    ) -> PssyncFunction:
        """`role_name` is the function's business role; `folder` (default: the role) holds handler.py."""
        configured = dict(environment or {})
        if self.vendor_targets is not None:
            configured = self.vendor_targets.environment(configured)
        function = PssyncFunction(
            self,
            construct_id,
            role_name=role_name,
            folder=folder or role_name,
            layer=self.shared_layer,
            stage=self.stage,
            environment=configured,
            timeout=timeout,
        )
        if self.vendor_targets is not None:
            self.vendor_targets.grant(function.role, configured)
        return function
