"""Monitoring: a dashboard and alarms wherever work can get stuck, plus the business metrics emitted.

Exception aging is SQS's own ApproximateAgeOfOldestMessage on every dead-letter store: a message there
is work finance is waiting for, so a store not emptied within a day raises a second alarm. Alarms have no
actions yet; subscribe an SNS topic or a chat integration per deployment.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from pssync.observability import BusinessMetric

PERIOD = Duration.minutes(5)
# A dead letter unattended for a day puts a period close at risk: escalate beyond "not empty".
EXCEPTION_AGE_ALARM_SECONDS = 24 * 3600
METRICS_NAMESPACE = "pssync"  # Powertools: POWERTOOLS_METRICS_NAMESPACE, default dimension service
SERVICE_DIMENSION = {"service": "pssync"}


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        dead_letter_queues: Mapping[str, sqs.IQueue],
        state_machines: Mapping[str, sfn.IStateMachine],
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms: list[cloudwatch.Alarm] = []
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
        self.dashboard.add_widgets(*self._business_widgets())
        self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(alarms=self.alarms, title="Alarms", width=24))

    @staticmethod
    def _business_widgets() -> list[cloudwatch.IWidget]:
        """The business metrics the functions emit (EMF through Powertools)."""

        def seconds(name: str, stat: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=name,
                dimensions_map=SERVICE_DIMENSION,
                statistic=stat,
                period=PERIOD,
                label=f"{stat}",
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
                left=[seconds(BusinessMetric.ACTIVATION_TIME, s) for s in ("p50", "p90", "Maximum")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Amendment propagation lag (s): amended -> every system updated",
                left=[
                    seconds(BusinessMetric.AMENDMENT_PROPAGATION_LAG, s) for s in ("p50", "p90", "Maximum")
                ],
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

    def _alarm_when_positive(self, alarm_id: str, metric: cloudwatch.IMetric, description: str) -> None:
        self._alarm_when_above(alarm_id, metric, 0, description)

    def _alarm_when_above(
        self, alarm_id: str, metric: cloudwatch.IMetric, threshold: float, description: str
    ) -> None:
        self.alarms.append(
            cloudwatch.Alarm(
                self,
                alarm_id,
                metric=metric,
                alarm_description=description,
                threshold=threshold,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )
