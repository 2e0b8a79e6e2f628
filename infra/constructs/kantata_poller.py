"""Kantata OX has no push webhooks: a schedule rule invokes `kantata_poller`, which keeps a cursor per source.

The schedule target has a DLQ and a short retry policy (a tick older than a few minutes is worthless: the
next one reads from the same cursor), and the function's asynchronous invocations send failures to the
same queue (EventInvokeConfig OnFailure).
"""

from __future__ import annotations

import json

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import runtime
from infra.constructs.functions import Functions
from infra.constructs.ingest_common import IngestTargets
from infra.sources import KantataPolling, kantata_token_secret_name

SCHEDULE_MAX_EVENT_AGE = Duration.minutes(5)
SCHEDULE_RETRY_ATTEMPTS = 2
ASYNC_RETRY_ATTEMPTS = 1


class KantataPoller(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Functions,
        ingest: IngestTargets,
        polling: KantataPolling,
        cursor_table: dynamodb.ITable,
        dead_letters: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        stage = functions.stage
        token_secrets = {
            source.name: self._token_secret(source.name, kantata_token_secret_name(stage, source.name), stage)
            for source in polling.sources
        }
        self.poller = functions.create(
            "KantataPoller",
            role_name="kantata_poller",
            timeout=runtime.KANTATA_POLLER_TIMEOUT,
            environment={
                **ingest.environment(),
                "CURSOR_TABLE_NAME": cursor_table.table_name,
                "KANTATA_BASE_URL": polling.base_url,
                "KANTATA_CURRENCY": polling.currency,
                "KANTATA_OVERLAP_SECONDS": str(polling.overlap_minutes * 60),
                "KANTATA_TOKEN_SECRET_IDS": json.dumps(
                    {name: kantata_token_secret_name(stage, name) for name in token_secrets},
                    separators=(",", ":"),
                ),
            },
        )
        ingest.grant_accept(self.poller)
        self.poller.grant_table_read_write(cursor_table)
        for secret in token_secrets.values():
            secret.grant_read(self.poller.role)
        self.poller.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(dead_letters),
            retry_attempts=ASYNC_RETRY_ATTEMPTS,
            max_event_age=SCHEDULE_MAX_EVENT_AGE,
        )
        self.schedule = events.Rule(
            self,
            "Schedule",
            description=f"Poll Kantata subscribed events every {polling.schedule_minutes} min",
            schedule=events.Schedule.rate(Duration.minutes(polling.schedule_minutes)),
            targets=[
                targets.LambdaFunction(
                    self.poller.function,
                    dead_letter_queue=dead_letters,
                    max_event_age=SCHEDULE_MAX_EVENT_AGE,
                    retry_attempts=SCHEDULE_RETRY_ATTEMPTS,
                )
            ],
        )

    def _token_secret(self, source_name: str, secret_name: str, stage: str) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self,
            "".join(part.capitalize() for part in source_name.split("-")) + "ApiToken",
            secret_name=secret_name,
            description=f'Kantata OAuth token of source {source_name!r}: JSON {{"access_token": "..."}}',
            removal_policy=runtime.removal_policy(stage),
        )
        Validations.of(secret).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SMG4",
                reason="The OAuth token is issued by Kantata to the integration user (authorisation in "
                "Kantata's UI); a Secrets Manager rotation Lambda cannot obtain a new one. Store it with "
                "put-secret-value when Kantata reissues it.",
            )
        )
        return secret
