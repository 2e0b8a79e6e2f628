"""Logger and Metrics singletons, and the business metric names, defined once."""

from __future__ import annotations

from enum import StrEnum

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="pssync")
metrics = Metrics(namespace="pssync")


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
