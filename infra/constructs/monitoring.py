"""Monitoring placeholder: a dashboard and one alarm per place where work can get stuck.

Alarms have no actions yet; subscribe an SNS topic or a chat integration per deployment.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

PERIOD = Duration.minutes(5)


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
            self._alarm_when_positive(f"{name}NotEmpty", depth, f"{name} holds messages: inspect and replay")
            queue_widgets.append(cloudwatch.GraphWidget(title=f"{name} depth", left=[depth], width=8))

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
        self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(alarms=self.alarms, title="Alarms", width=24))

    def _alarm_when_positive(self, alarm_id: str, metric: cloudwatch.IMetric, description: str) -> None:
        self.alarms.append(
            cloudwatch.Alarm(
                self,
                alarm_id,
                metric=metric,
                alarm_description=description,
                threshold=0,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
        )
