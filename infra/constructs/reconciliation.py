"""Reconciliation and exception aging on schedules.

- `ReconcilePortfolio` (daily, 04:00 UTC): every engagement as of that day; variances above the tolerance
  (CDK context `pssync:reconciliation_tolerance`, JSON `{"EUR": "5.00"}`, default 0.00 everywhere) go to
  the exceptions queue as typed records and every run emits the reconciliation metrics.
- `MeasureExceptionAging` (every 15 minutes): open exceptions and the oldest one's age per workflow, stage
  and cause, peeked (never consumed) from the exceptions queue and every dead-letter queue.

Both are invoked asynchronously by EventBridge rules: a failed invocation, after its retry, lands in this
construct's schedule DLQ (`schedule_dlq`, to be alarmed with the other dead-letter stores).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import runtime
from infra.constructs.functions import Functions, PssyncFunction
from infra.constructs.workflows import WorkflowStores
from pssync.ops.reconcile import ReconciliationTolerance

RECONCILIATION_TOLERANCE_CONTEXT_KEY = "pssync:reconciliation_tolerance"
RECONCILIATION_SCHEDULE = events.Schedule.cron(minute="0", hour="4")  # after the night's work has settled
EXCEPTION_AGING_SCHEDULE = events.Schedule.rate(Duration.minutes(15))
# Reads every contract's versions and the whole delivery log: the longest a Lambda may run.
RECONCILIATION_TIMEOUT = Duration.minutes(15)
SCHEDULE_RETRY_ATTEMPTS = 2
SCHEDULE_MAX_EVENT_AGE = Duration.hours(2)


def parse_reconciliation_tolerance(raw: object) -> ReconciliationTolerance:
    """Context value as JSON text (`-c`) or as the object (cdk.json); a malformed one fails the synth."""
    if raw is None:
        return ReconciliationTolerance()
    if not isinstance(raw, str | dict):
        raise ValueError(
            f'context {RECONCILIATION_TOLERANCE_CONTEXT_KEY} must be JSON like {{"EUR": "5.00"}}'
        )
    try:
        return ReconciliationTolerance.parse(raw)
    except ValueError as error:
        raise ValueError(f"context {RECONCILIATION_TOLERANCE_CONTEXT_KEY}: {error}") from None


class Reconciliation(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Functions,
        stores: WorkflowStores,
        dead_letter_queues: Mapping[str, sqs.IQueue],
        tolerance: ReconciliationTolerance | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        tolerance = tolerance or ReconciliationTolerance()
        self.schedule_dlq = sqs.Queue(
            self,
            "ScheduleDlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=runtime.DLQ_RETENTION,
        )
        Validations.of(self.schedule_dlq).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SQS3",
                reason="This queue is the dead-letter queue of the reconciliation and aging schedules.",
            )
        )

        self.reconciler = functions.create(
            "ReconcilePortfolio",
            role_name="reconcile_portfolio",
            environment={
                "BUSINESS_TABLE_NAME": stores.business_table.table_name,
                "DELIVERY_LOG_TABLE_NAME": stores.delivery_log_table.table_name,
                "EXCEPTIONS_QUEUE_URL": stores.exceptions_queue.queue_url,
                "RECONCILIATION_TOLERANCE": json.dumps(
                    {currency: str(amount) for currency, amount in sorted(tolerance.per_currency.items())}
                ),
            },
            timeout=RECONCILIATION_TIMEOUT,
        )
        # Read-only on both tables: heads by Scan (as the period close plans), histories by Query.
        self.reconciler.role.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Scan", "dynamodb:Query", "dynamodb:GetItem"],
                resources=[stores.business_table.table_arn, stores.delivery_log_table.table_arn],
            )
        )
        stores.exceptions_queue.grant_send_messages(self.reconciler.function)
        self._schedule(
            self.reconciler, "DailyReconciliation", RECONCILIATION_SCHEDULE, "Reconcile the portfolio"
        )

        self.exception_aging = functions.create(
            "MeasureExceptionAging",
            role_name="measure_exception_aging",
            environment={
                "EXCEPTION_QUEUE_URLS": Stack.of(self).to_json_string(
                    {name: queue.queue_url for name, queue in sorted(dead_letter_queues.items())}
                )
            },
        )
        for queue in dead_letter_queues.values():
            # Peek only: receive, then make visible again; never delete.
            queue.grant(self.exception_aging.function, "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility")
        self._schedule(
            self.exception_aging,
            "ExceptionAgingEvery15Minutes",
            EXCEPTION_AGING_SCHEDULE,
            "Measure open exceptions by workflow, stage and cause",
        )

    def _schedule(
        self, function: PssyncFunction, rule_id: str, schedule: events.Schedule, description: str
    ) -> None:
        function.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.schedule_dlq),
            retry_attempts=1,
            max_event_age=SCHEDULE_MAX_EVENT_AGE,
        )
        events.Rule(
            self,
            rule_id,
            description=description,
            schedule=schedule,
            targets=[
                targets.LambdaFunction(
                    function.function,
                    dead_letter_queue=self.schedule_dlq,
                    retry_attempts=SCHEDULE_RETRY_ATTEMPTS,
                    max_event_age=SCHEDULE_MAX_EVENT_AGE,
                )
            ],
        )
