"""Webhook ingestion: REST API `POST /webhooks/{source}` -> `ingest_webhook`, a signing secret per source."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnOutput, Duration, RemovalPolicy, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra import runtime
from infra.constructs.functions import Functions
from infra.constructs.ingest_common import IngestTargets
from infra.sources import registry_json
from pssync.model.sources import SourceConfig

# Per-stage defaults; SaaS webhook senders retry on 429, so throttling sheds load without losing events.
THROTTLING_RATE_LIMIT = 50
THROTTLING_BURST_LIMIT = 100
SIGNATURE_AUTH_REASON = (
    "Webhook senders (Salesforce, HubSpot, Jira, Dynamics, ...) cannot obtain Cognito or IAM credentials; "
    "every request is authenticated inside ingest_webhook by its source's scheme before anything is "
    "written: an HMAC signature over the raw body for Standard Webhooks, HubSpot and Jira, and a static "
    "per-source key compared in constant time plus an organisation allowlist for Salesforce outbound "
    "messages and Dataverse, which cannot sign. Anything else is refused with 401 (or 403 for another "
    "tenant)."
)


class IngestionApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Functions,
        sources: list[SourceConfig],
        bus: events.IEventBus,
        idempotency_table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        stage = functions.stage
        # Only HTTP sources have a signing secret; Event Relay and Kantata sources have no endpoint here.
        secrets = {
            source.name: self._signing_secret(source, stage) for source in sources if source.scheme.is_http
        }
        self.raw_payloads = self._raw_payload_archive(stage)
        self.targets = IngestTargets(
            bus=bus,
            idempotency_table=idempotency_table,
            raw_payloads=self.raw_payloads,
            source_registry=registry_json(sources),
        )

        self.ingest = functions.create(
            "IngestWebhook", role_name="ingest_webhook", environment=self.targets.environment()
        )
        self.targets.grant_accept(self.ingest)
        for secret in secrets.values():
            secret.grant_read(self.ingest.role)

        self.api = self._rest_api(stage)
        webhook = self.api.root.add_resource("webhooks").add_resource("{source}")
        method = webhook.add_method(
            "POST",
            apigw.LambdaIntegration(self.ingest.function, proxy=True),
        )
        Validations.of(method).acknowledge(
            Acknowledgment(id="AwsSolutions-APIG4", reason=SIGNATURE_AUTH_REASON),
            Acknowledgment(id="AwsSolutions-COG4", reason=SIGNATURE_AUTH_REASON),
        )

        output = CfnOutput(
            self,
            "WebhookBaseUrl",
            value=self.api.url_for_path("/webhooks"),
            description="Point each SaaS webhook at <this URL>/<source name>",
        )
        output.override_logical_id("WebhookBaseUrl")

    def _raw_payload_archive(self, stage: str) -> s3.Bucket:
        """Lineage: every accepted delivery's raw bytes, content-addressed under raw/<source>/."""
        bucket = s3.Bucket(
            self,
            "RawPayloads",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            # Audit evidence: kept when the stack goes, whatever the stage.
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                            transition_after=Duration.days(90),
                        )
                    ]
                )
            ],
        )
        Validations.of(bucket).acknowledge(
            Acknowledgment(
                id="AwsSolutions-S1",
                reason="Only the ingest functions write here (PutObject under raw/); CloudTrail data "
                "events are the audit trail of access, so a second server-access-log bucket would add "
                "nothing.",
            )
        )
        return bucket

    def _signing_secret(self, source: SourceConfig, stage: str) -> secretsmanager.Secret:
        # The generated random value fails closed: nothing verifies until the user stores
        # {"current": "whsec_...", "previous": "whsec_..."} (see docs/infra.md).
        secret = secretsmanager.Secret(
            self,
            "".join(part.capitalize() for part in source.name.split("-")) + "SigningSecret",
            secret_name=source.secret_id,
            description=f"Webhook signing secrets of source '{source.name}' ({source.system}): "
            'JSON {"current": "whsec_...", "previous": "whsec_..."}',
            removal_policy=runtime.removal_policy(stage),
        )
        Validations.of(secret).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SMG4",
                reason="The signing secret is issued by the SaaS vendor and rotated in its console; the "
                "user then stores the new value as `current` and the old one as `previous`, so both verify "
                "during the switch. A Secrets Manager rotation Lambda cannot rotate a vendor-held secret.",
            )
        )
        return secret

    def _rest_api(self, stage: str) -> apigw.RestApi:
        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=runtime.LOG_RETENTION, removal_policy=runtime.removal_policy(stage)
        )
        api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"pssync-{stage}-webhooks",
            description="pssync webhook ingestion (signature-authenticated)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Execution logging needs the account-level API Gateway CloudWatch role. It is one setting per
            # account and region, shared by every stage: deleting a dev stack must not remove it.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=stage,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.INFO,
                # Request bodies carry contract and personal data: never copy them into logs.
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=THROTTLING_RATE_LIMIT,
                throttling_burst_limit=THROTTLING_BURST_LIMIT,
            ),
        )
        # API Gateway would otherwise create this execution log group itself, with no retention.
        logs.LogGroup(
            self,
            "ExecutionLogs",
            log_group_name=f"API-Gateway-Execution-Logs_{api.rest_api_id}/{stage}",
            retention=runtime.LOG_RETENTION,
            removal_policy=runtime.removal_policy(stage),
        )
        Validations.of(api).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                reason="The account-level API Gateway logging role uses the AWS-managed policy that AWS "
                "documents for it; it only allows writing API Gateway's own log groups.",
            ),
            Acknowledgment(
                id="AwsSolutions-APIG2",
                reason="Request bodies are validated inside ingest_webhook, after the signature check on "
                "the raw body, against per-source pydantic models; a gateway JSON model would reject valid "
                "vendor payloads (HubSpot posts JSON arrays) and cannot authenticate them.",
            ),
            Acknowledgment(
                id="AwsSolutions-APIG3",
                reason="A WAF WebACL is an optional add-on (it costs per ACL and rule): requests are "
                "already signature-verified, size-limited and throttled. Associate a WAFv2 WebACL with AWS "
                "managed rules to the stage where the organisation requires one.",
            ),
        )
        return api
