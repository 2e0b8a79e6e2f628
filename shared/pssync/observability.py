"""Logger and Metrics singletons, and the business metric names and their dimensions, defined once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

NAMESPACE = "pssync"
SERVICE = "pssync"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE)


def elapsed_seconds(since: datetime, until: datetime) -> float:
    """Seconds from a source's timestamp to ours, never below 0. A sender whose clock runs ahead stamps the
    future (R2's time entries are dated 2027): that is skew, not negative lag, and one negative value drags
    every average and percentile of a lag metric below the truth."""
    return max((until - since).total_seconds(), 0.0)


class BusinessMetric(StrEnum):
    WEBHOOK_ACCEPTED = "WebhookAccepted"
    WEBHOOK_DUPLICATE = "WebhookDuplicate"
    WEBHOOK_REJECTED = "WebhookRejected"
    WEBHOOK_NOT_RECORDED = "WebhookNotRecorded"
    WORKFLOW_STARTED = "WorkflowStarted"
    ACTIVATION_TIME = "EngagementActivationSeconds"
    AMENDMENT_PROPAGATION_LAG = "AmendmentPropagationLagSeconds"
    BILLABLE_TIME_SYNCED = "BillableTimeSynced"  # count of approved entries synced to billing and revenue
    BILLABLE_TIME_SYNC_LAG = "BillableTimeSyncLagSeconds"  # approved in the PSA to synced everywhere
    EXPENSE_SYNCED = "ApprovedExpenseSynced"
    EXPENSE_SYNC_LAG = "ExpenseSyncLagSeconds"
    MILESTONE_INVOICED = "MilestonesInvoiced"
    MILESTONE_TO_INVOICE_CYCLE = "MilestoneToInvoiceCycleSeconds"  # completed in the PSA to invoice released
    PERIOD_CLOSED = "PeriodClosed"
    DEFERRED_REVENUE_VARIANCE = "DeferredRevenueVariance"  # pssync's deferred revenue minus the ERP's
    # Reconciliation (ops.reconcile): engagements with variances above tolerance, per cause, and amounts
    ENGAGEMENTS_RECONCILED = "EngagementsReconciled"
    RECONCILIATION_VARIANCES = "ReconciliationVariances"  # count above tolerance; a `cause` dimension too
    RECONCILIATION_VARIANCE_AMOUNT = "ReconciliationVarianceAmount"  # absolute, per `currency`
    # Exception aging by workflow stage and cause: open exceptions and the oldest one's age per group
    OPEN_EXCEPTIONS = "OpenExceptions"
    EXCEPTION_AGE = "ExceptionAgeSeconds"


class MetricDimension(StrEnum):
    """Dimensions beyond Powertools' default `service`; each metric's set is fixed, so alarms can name it."""

    SOURCE = "source"  # webhook source, or which reconciliation produced a variance
    CAUSE = "cause"
    CURRENCY = "currency"
    WORKFLOW = "workflow"
    STAGE = "stage"


RECONCILIATION_SOURCE = "reconciliation"  # `source` of a deferred revenue variance from reconciliation


def _single(name: str, unit: MetricUnit, value: float, dimensions: Mapping[MetricDimension, str]) -> None:
    """One EMF document with its own dimension set, flushed at once (the shared `metrics` object gives every
    metric of an invocation the same dimensions; these need their own)."""
    with single_metric(
        name=name, unit=unit, value=value, namespace=NAMESPACE, default_dimensions={"service": SERVICE}
    ) as metric:
        for dimension, dimension_value in dimensions.items():
            metric.add_dimension(name=dimension.value, value=dimension_value)


def emit_reconciliation(
    engagements: int,
    variances_by_cause: Mapping[str, int],
    variance_amounts: Mapping[str, Decimal],
    deferred_revenue_variances: Mapping[str, Decimal],
) -> None:
    """A run's figures: the service-level count is what the alarm watches (an alarm cannot SEARCH); the
    per-cause counts and per-currency amounts are for the dashboard."""
    total = sum(variances_by_cause.values())
    _single(BusinessMetric.ENGAGEMENTS_RECONCILED, MetricUnit.Count, engagements, {})
    _single(BusinessMetric.RECONCILIATION_VARIANCES, MetricUnit.Count, total, {})
    for cause, count in sorted(variances_by_cause.items()):
        _single(
            BusinessMetric.RECONCILIATION_VARIANCES, MetricUnit.Count, count, {MetricDimension.CAUSE: cause}
        )
    for currency, amount in sorted(variance_amounts.items()):
        _single(
            BusinessMetric.RECONCILIATION_VARIANCE_AMOUNT,
            MetricUnit.NoUnit,
            float(amount),
            {MetricDimension.CURRENCY: currency},
        )
    for currency, amount in sorted(deferred_revenue_variances.items()):
        _single(
            BusinessMetric.DEFERRED_REVENUE_VARIANCE,
            MetricUnit.NoUnit,
            float(amount),
            {MetricDimension.SOURCE: RECONCILIATION_SOURCE, MetricDimension.CURRENCY: currency},
        )


@dataclass(frozen=True)
class ExceptionGroup:
    """Open exceptions of one workflow stage with one cause, and how old the oldest is."""

    workflow: str
    stage: str
    cause: str
    count: int
    oldest_age_seconds: float


def emit_exception_aging(groups: Iterable[ExceptionGroup]) -> None:
    for group in groups:
        dimensions = {
            MetricDimension.WORKFLOW: group.workflow,
            MetricDimension.STAGE: group.stage,
            MetricDimension.CAUSE: group.cause,
        }
        _single(BusinessMetric.OPEN_EXCEPTIONS, MetricUnit.Count, group.count, dimensions)
        _single(BusinessMetric.EXCEPTION_AGE, MetricUnit.Seconds, group.oldest_age_seconds, dimensions)
