"""Monitoring: a dashboard and alarms wherever work can get stuck, plus the business metrics emitted.

Exception aging is SQS's own ApproximateAgeOfOldestMessage on every dead-letter store: a message there
is work finance is waiting for, so a store not emptied within a day raises a second alarm.

Beyond the queues: exception aging by workflow stage and cause (the `measure_exception_aging` function's
metrics), the reconciliation (variances above tolerance alarm; amounts and deferred revenue variance per
currency), and the lag objectives (amendment propagation, billable time sync) alarm when their p90 exceeds
the objective (CDK context `pssync:lag_objectives_seconds`).

Every alarm notifies the stack's alarm topic when it fires and when it clears. The topic is encrypted with
a customer-managed KMS key (CloudWatch cannot publish to a topic under the AWS-managed `alias/aws/sns`
key), refuses plain HTTP, and only this account's CloudWatch alarms may publish to it. Subscribers come
from the CDK context key `pssync:alarm_subscribers`: e-mail addresses and HTTPS endpoints, checked at
synth (a typo fails the synth, not the night an alarm fires).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import runtime
from pssync.observability import RECONCILIATION_SOURCE, BusinessMetric

PERIOD = Duration.minutes(5)
# A dead letter unattended for a day puts a period close at risk: escalate beyond "not empty".
EXCEPTION_AGE_ALARM_SECONDS = 24 * 3600
METRICS_NAMESPACE = "pssync"  # Powertools: POWERTOOLS_METRICS_NAMESPACE, default dimension service
SERVICE_DIMENSION = {"service": "pssync"}
ALARM_SUBSCRIBERS_CONTEXT_KEY = "pssync:alarm_subscribers"
LAG_OBJECTIVES_CONTEXT_KEY = "pssync:lag_objectives_seconds"
# The reconciliation runs daily: its alarm looks at a day, so it stays in ALARM until a clean run.
RECONCILIATION_PERIOD = Duration.days(1)
LAG_PERIOD = Duration.minutes(15)
EXCEPTION_AGING_PERIOD = Duration.minutes(15)  # the aging function's schedule
# Plain shape checks that catch typos; SNS itself confirms each address (the subscriber must click the
# link it sends) and each endpoint (it must answer the SubscriptionConfirmation).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"^[^@\s\\\"<>(),;:]{{1,64}}@{_LABEL}(?:\.{_LABEL})+$")
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")


class SubscriberKind(StrEnum):
    EMAIL = "email"
    HTTPS = "https"


@dataclass(frozen=True)
class AlarmSubscriber:
    kind: SubscriberKind
    endpoint: str


def parse_alarm_subscribers(raw: object) -> list[AlarmSubscriber]:
    """`pssync:alarm_subscribers`: a JSON list of e-mail addresses and `https://` URLs (none by default).

    Any malformed entry fails the synth with a message naming it: a typo would otherwise leave alarms
    reaching no one, silently.
    """
    if raw is None:
        return []
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw  # `-c` passes JSON text, cdk.json the value
    except json.JSONDecodeError as error:
        raise ValueError(f"context {ALARM_SUBSCRIBERS_CONTEXT_KEY} is not JSON: {error}") from None
    if not isinstance(value, list):
        raise ValueError(
            f"context {ALARM_SUBSCRIBERS_CONTEXT_KEY} must be a JSON list of e-mail addresses and "
            f"https:// URLs, got {type(value).__name__}"
        )
    found: list[AlarmSubscriber] = []
    for entry in value:
        subscriber = _subscriber(entry)
        if subscriber in found:
            raise ValueError(f"{ALARM_SUBSCRIBERS_CONTEXT_KEY}: {entry!r} is listed twice")
        found.append(subscriber)
    return found


def _subscriber(entry: object) -> AlarmSubscriber:
    prefix = f"{ALARM_SUBSCRIBERS_CONTEXT_KEY}: {entry!r}"
    if not isinstance(entry, str) or not entry or entry != entry.strip():
        raise ValueError(f"{prefix} is not an e-mail address or an https:// URL (a non-empty string)")
    if "://" not in entry:
        if not _EMAIL.match(entry):
            raise ValueError(f"{prefix} is not an e-mail address (name@domain.tld)")
        return AlarmSubscriber(SubscriberKind.EMAIL, entry)
    parts = urlsplit(entry)
    if parts.scheme != "https":
        raise ValueError(f"{prefix}: endpoints must use https:// (alarm notifications leave AWS)")
    if any(c.isspace() for c in entry) or parts.username or parts.password:
        raise ValueError(f"{prefix} is not a valid https:// URL (no spaces, no credentials in the URL)")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or not _HOST.match(parts.hostname) or port == -1 or port == 0:
        raise ValueError(f"{prefix} is not a valid https:// URL (host name or port missing or malformed)")
    return AlarmSubscriber(SubscriberKind.HTTPS, entry)


@dataclass(frozen=True)
class LagObjectives:
    """The longest a change may take to reach every system, as the business promises it (p90)."""

    amendment_propagation_seconds: int = 15 * 60
    billable_time_sync_seconds: int = 15 * 60


def parse_lag_objectives(raw: object) -> LagObjectives:
    """`-c 'pssync:lag_objectives_seconds={"amendment_propagation": 600}'`: seconds per objective."""
    if raw is None:
        return LagObjectives()
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as error:
        raise ValueError(f"context {LAG_OBJECTIVES_CONTEXT_KEY} is not JSON: {error}") from None
    known = {"amendment_propagation", "billable_time_sync"}
    if not isinstance(value, dict) or not set(value) <= known:
        raise ValueError(
            f"context {LAG_OBJECTIVES_CONTEXT_KEY} must be a JSON object with keys {sorted(known)}"
        )
    seconds: dict[str, int] = {}
    for name, amount in value.items():
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise ValueError(f"{LAG_OBJECTIVES_CONTEXT_KEY}.{name} must be a positive number of seconds")
        seconds[f"{name}_seconds"] = amount
    return LagObjectives(**seconds)


def search(
    metric: str, dimensions: Sequence[str], statistic: str, period: Duration, *, where: str = ""
) -> str:
    """A SEARCH over every value of `dimensions` (a graph may SEARCH; an alarm may not)."""
    schema = ",".join([METRICS_NAMESPACE, *dimensions])
    return f"SEARCH('{{{schema}}} MetricName=\"{metric}\"{where}', '{statistic}', {period.to_seconds()})"


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        dead_letter_queues: Mapping[str, sqs.IQueue],
        state_machines: Mapping[str, sfn.IStateMachine],
        alarm_subscribers: Sequence[AlarmSubscriber] = (),
        lag_objectives: LagObjectives = LagObjectives(),
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms: list[cloudwatch.Alarm] = []
        self.alarm_topic = self._alarm_topic(stage, alarm_subscribers)
        queue_widgets: list[cloudwatch.IWidget] = []
        for name, queue in dead_letter_queues.items():
            depth = queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum")
            age = queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum")
            self._alarm_when_positive(f"{name}NotEmpty", depth, f"{name} holds messages: inspect and replay")
            self._alarm_when_above(
                f"{name}Unattended",
                age,
                EXCEPTION_AGE_ALARM_SECONDS,
                f"{name} has held a message for over a day: replay or resolve it before the close",
            )
            queue_widgets.append(
                cloudwatch.GraphWidget(
                    title=f"{name}: depth / oldest message age (s)", left=[depth], right=[age], width=8
                )
            )

        workflow_widgets: list[cloudwatch.IWidget] = []
        for name, state_machine in state_machines.items():
            failed = state_machine.metric_failed(period=PERIOD, statistic="Sum")
            self._alarm_when_positive(f"{name}ExecutionsFailed", failed, f"{name} executions failed")
            workflow_widgets.append(
                cloudwatch.GraphWidget(
                    title=f"{name} executions",
                    left=[
                        state_machine.metric_started(period=PERIOD, statistic="Sum"),
                        state_machine.metric_succeeded(period=PERIOD, statistic="Sum"),
                        failed,
                    ],
                    width=12,
                )
            )

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"pssync-{stage}")
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# pssync {stage}: dead letters and workflows", width=24, height=1
            )
        )
        self.dashboard.add_widgets(*queue_widgets)
        self.dashboard.add_widgets(*workflow_widgets)
        self.dashboard.add_widgets(*self._business_widgets(state_machines.get("ApplyApprovedTime")))
        self.dashboard.add_widgets(*self._lag_objective_alarms(lag_objectives))
        self.dashboard.add_widgets(*self._exception_aging_widgets())
        self.dashboard.add_widgets(*self._reconciliation_widgets())
        self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(alarms=self.alarms, title="Alarms", width=24))

    @staticmethod
    def _business_widgets(time_workflow: sfn.IStateMachine | None) -> list[cloudwatch.IWidget]:
        """The business metrics the functions emit (EMF through Powertools)."""

        def count(name: str, label: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=name,
                dimensions_map=SERVICE_DIMENSION,
                statistic="Sum",
                period=PERIOD,
                label=label,
            )

        def stat(name: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=name,
                dimensions_map=SERVICE_DIMENSION,
                statistic=statistic,
                period=PERIOD,
                label=statistic,
            )

        def per_source(name: str) -> cloudwatch.MathExpression:
            # Webhook counters carry a `source` dimension too: SEARCH sums every configured source.
            return cloudwatch.MathExpression(
                expression=f"SUM(SEARCH('{{{METRICS_NAMESPACE},service,source}} MetricName=\"{name}\"', "
                f"'Sum', {PERIOD.to_seconds()}))",
                label=name,
                period=PERIOD,
            )

        return [
            cloudwatch.GraphWidget(
                title="Engagement activation time (s): closed won -> PSA, ERP and revenue ready",
                left=[stat(BusinessMetric.ACTIVATION_TIME, s) for s in ("p50", "p90", "Maximum")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Amendment propagation lag (s): amended -> every system updated",
                left=[stat(BusinessMetric.AMENDMENT_PROPAGATION_LAG, s) for s in ("p50", "p90", "Maximum")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Billable time sync: entries synced, and approved -> billed and remeasured (s)",
                left=[
                    cloudwatch.Metric(
                        namespace=METRICS_NAMESPACE,
                        metric_name=BusinessMetric.BILLABLE_TIME_SYNCED,
                        dimensions_map=SERVICE_DIMENSION,
                        statistic="Sum",
                        period=PERIOD,
                        label="synced",
                    )
                ],
                right=[stat(BusinessMetric.BILLABLE_TIME_SYNC_LAG, s) for s in ("p50", "p90", "Maximum")],
                width=8,
            ),
            *Monitoring._time_sync_success(count, time_workflow),
            cloudwatch.GraphWidget(
                title="Expense sync: expenses synced, and approved -> rebilled and remeasured (s)",
                left=[count(BusinessMetric.EXPENSE_SYNCED, "synced")],
                right=[stat(BusinessMetric.EXPENSE_SYNC_LAG, s) for s in ("p50", "p90", "Maximum")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Milestone-to-invoice cycle (s): completed in the PSA -> invoice released to the ERP",
                left=[count(BusinessMetric.MILESTONE_INVOICED, "invoiced")],
                right=[stat(BusinessMetric.MILESTONE_TO_INVOICE_CYCLE, s) for s in ("p50", "p90", "Maximum")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Period close: periods closed, and deferred revenue variance (pssync - ERP)",
                left=[count(BusinessMetric.PERIOD_CLOSED, "closed")],
                right=[stat(BusinessMetric.DEFERRED_REVENUE_VARIANCE, s) for s in ("Minimum", "Maximum")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Webhooks",
                left=[
                    per_source(m)
                    for m in (
                        BusinessMetric.WEBHOOK_ACCEPTED,
                        BusinessMetric.WEBHOOK_DUPLICATE,
                        BusinessMetric.WEBHOOK_REJECTED,
                        BusinessMetric.WEBHOOK_NOT_RECORDED,
                    )
                ],
                width=8,
            ),
        ]

    @staticmethod
    def _time_sync_success(
        count: Callable[[str, str], cloudwatch.Metric], time_workflow: sfn.IStateMachine | None
    ) -> list[cloudwatch.IWidget]:
        """Billable time sync success rate: entries synced over entries synced plus executions failed."""
        if time_workflow is None:
            return []
        rate = cloudwatch.MathExpression(
            expression="100 * synced / (synced + failed)",
            using_metrics={
                "synced": count(BusinessMetric.BILLABLE_TIME_SYNCED, "synced"),
                "failed": time_workflow.metric_failed(period=PERIOD, statistic="Sum"),
            },
            label="success rate (%)",
            period=PERIOD,
        )
        return [cloudwatch.GraphWidget(title="Billable time sync success rate (%)", left=[rate], width=8)]

    def _lag_objective_alarms(self, objectives: LagObjectives) -> list[cloudwatch.IWidget]:
        widgets: list[cloudwatch.IWidget] = []
        for alarm_id, metric_name, objective, what in (
            (
                "AmendmentPropagationLagAboveObjective",
                BusinessMetric.AMENDMENT_PROPAGATION_LAG,
                objectives.amendment_propagation_seconds,
                "amendment propagation (amended -> every system updated)",
            ),
            (
                "BillableTimeSyncLagAboveObjective",
                BusinessMetric.BILLABLE_TIME_SYNC_LAG,
                objectives.billable_time_sync_seconds,
                "billable time sync (approved -> billed and remeasured)",
            ),
        ):
            p90 = cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=metric_name,
                dimensions_map=SERVICE_DIMENSION,
                statistic="p90",
                period=LAG_PERIOD,
            )  # no label: a labelled metric makes the alarm a metric-math alarm
            seconds = objective
            self._alarm_when_above(
                alarm_id, p90, seconds, f"p90 of {what} is above its objective of {seconds} s"
            )
            widgets.append(
                cloudwatch.GraphWidget(
                    title=f"Lag objective: {what} (s), p90 against {seconds} s",
                    left=[p90.with_(label="p90")],
                    left_annotations=[cloudwatch.HorizontalAnnotation(value=seconds, label="objective")],
                    width=12,
                )
            )
        return widgets

    @staticmethod
    def _exception_aging_widgets() -> list[cloudwatch.IWidget]:
        """Exception aging by workflow stage and cause (per queue stays above, with its alarms)."""
        groups = ("service", "workflow", "stage", "cause")
        return [
            cloudwatch.GraphWidget(
                title="Exception aging: oldest open exception (s) by workflow, stage and cause",
                left=[
                    cloudwatch.MathExpression(
                        expression=search(
                            BusinessMetric.EXCEPTION_AGE, groups, "Maximum", EXCEPTION_AGING_PERIOD
                        ),
                        label="",
                        period=EXCEPTION_AGING_PERIOD,
                    )
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Open exceptions by workflow, stage and cause",
                left=[
                    cloudwatch.MathExpression(
                        expression=search(
                            BusinessMetric.OPEN_EXCEPTIONS, groups, "Maximum", EXCEPTION_AGING_PERIOD
                        ),
                        label="",
                        period=EXCEPTION_AGING_PERIOD,
                    )
                ],
                width=12,
            ),
        ]

    def _reconciliation_widgets(self) -> list[cloudwatch.IWidget]:
        variances = cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=BusinessMetric.RECONCILIATION_VARIANCES,
            dimensions_map=SERVICE_DIMENSION,
            statistic="Maximum",
            period=RECONCILIATION_PERIOD,
        )  # no label: a labelled metric makes the alarm a metric-math alarm
        self._alarm_when_positive(
            "ReconciliationVariance",
            variances,
            "the daily reconciliation found variances above tolerance: see the exceptions queue "
            "(cause reconciliation_variance) and `pssync reconcile`",
        )
        reconciled = cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=BusinessMetric.ENGAGEMENTS_RECONCILED,
            dimensions_map=SERVICE_DIMENSION,
            statistic="Maximum",
            period=RECONCILIATION_PERIOD,
            label="engagements reconciled",
        )

        def by(metric: str, dimensions: Sequence[str], *, where: str = "") -> cloudwatch.MathExpression:
            return cloudwatch.MathExpression(
                expression=search(
                    metric, ("service", *dimensions), "Maximum", RECONCILIATION_PERIOD, where=where
                ),
                label="",
                period=RECONCILIATION_PERIOD,
            )

        return [
            cloudwatch.GraphWidget(
                title="Reconciliation: engagements, and variances above tolerance by cause",
                left=[reconciled, variances.with_(label="variances above tolerance")],
                right=[by(BusinessMetric.RECONCILIATION_VARIANCES, ("cause",))],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Reconciliation variance above tolerance (absolute) by currency",
                left=[by(BusinessMetric.RECONCILIATION_VARIANCE_AMOUNT, ("currency",))],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Deferred revenue variance (pssync - ERP) from reconciliation, by currency",
                left=[
                    by(
                        BusinessMetric.DEFERRED_REVENUE_VARIANCE,
                        ("source", "currency"),
                        where=f' source="{RECONCILIATION_SOURCE}"',
                    )
                ],
                width=8,
            ),
        ]

    def _alarm_topic(self, stage: str, subscribers: Sequence[AlarmSubscriber]) -> sns.Topic:
        stack = Stack.of(self)
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"pssync {stage}: encrypts the alarm topic",
            enable_key_rotation=True,
            removal_policy=runtime.removal_policy(stage),
        )
        # CloudWatch encrypts what it publishes: it needs the data key, for this account's alarms only.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"pssync {stage} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )
        for subscriber in subscribers:
            if subscriber.kind is SubscriberKind.EMAIL:
                topic.add_subscription(subscriptions.EmailSubscription(subscriber.endpoint))
            else:
                topic.add_subscription(
                    subscriptions.UrlSubscription(
                        subscriber.endpoint, protocol=sns.SubscriptionProtocol.HTTPS
                    )
                )
        return topic

    def _alarm_when_positive(self, alarm_id: str, metric: cloudwatch.IMetric, description: str) -> None:
        self._alarm_when_above(alarm_id, metric, 0, description)

    def _alarm_when_above(
        self, alarm_id: str, metric: cloudwatch.IMetric, threshold: float, description: str
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            alarm_id,
            metric=metric,
            alarm_description=description,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        # Someone hears when it fires and when it clears (an OK tells the on-call the replay worked).
        action = cloudwatch_actions.SnsAction(self.alarm_topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms.append(alarm)
