"""Lambda runtime settings and stage-dependent policies, defined once for every function and the layer."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

SERVICE_NAME = "pssync"

# The layer is built for exactly this interpreter and CPU (see bundling.py); change them together.
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_12
LAMBDA_ARCHITECTURE = lambda_.Architecture.ARM_64
LAYER_PYTHON_VERSION = "3.12"
LAYER_PIP_PLATFORM = "manylinux2014_aarch64"

LAMBDA_MEMORY_MB = 512
# Workflow steps declare TimeoutSeconds=60 in the ASL; the Lambda must give up before the state does.
LAMBDA_TIMEOUT = Duration.seconds(30)
# A Kantata backlog is drained window by window; the poller stops ~10 s before this to record how far it
# got. Overlapping polls are safe (conditional cursor, per-event claims), so it may outlast its schedule.
KANTATA_POLLER_TIMEOUT = Duration.minutes(2)
LAMBDA_LOG_FORMAT = lambda_.LoggingFormat.JSON
LAMBDA_APPLICATION_LOG_LEVEL = lambda_.ApplicationLogLevel.INFO
LAMBDA_SYSTEM_LOG_LEVEL = lambda_.SystemLogLevel.WARN
# X-Ray is on for the API, the state machines and every function (Lambda's own segments: invocation,
# init, errors; no cost to the handler). The Powertools Tracer inside handlers (a subsegment per AWS and
# HTTP call) adds ~115 ms to every cold start, measured (docs/decisions.md 2026-11-30), so it is opt-in
# per deployment: `-c pssync:tracing=sdk`.
LAMBDA_TRACING = lambda_.Tracing.ACTIVE
TRACING_CONTEXT_KEY = "pssync:tracing"
TRACING_MODES = ("service", "sdk")
TRACING_ENV = "PSSYNC_TRACING"  # read by pssync.handlers.stack: "active" wraps handlers in the Tracer

LOG_RETENTION = logs.RetentionDays.ONE_MONTH

# AWS guidance for SQS event sources: visibility timeout at least 6x the function timeout, so a message
# is not redelivered while a retried batch is still in flight.
SQS_VISIBILITY_TIMEOUT_FACTOR = 6
DLQ_RETENTION = Duration.days(14)
DLQ_MAX_RECEIVE_COUNT = 5

DEV_STAGE = "dev"


def removal_policy(stage: str) -> RemovalPolicy:
    """Stateful resources survive stack deletion except in the disposable dev stage."""
    return RemovalPolicy.DESTROY if stage == DEV_STAGE else RemovalPolicy.RETAIN


def sdk_tracing(scope: Construct) -> bool:
    """Whether handlers run the Powertools Tracer (`pssync:tracing=sdk`); service tracing is always on."""
    mode = str(scope.node.try_get_context(TRACING_CONTEXT_KEY) or "service")
    if mode not in TRACING_MODES:
        raise ValueError(f"{TRACING_CONTEXT_KEY} must be one of {TRACING_MODES}, not {mode!r}")
    return mode == "sdk"
