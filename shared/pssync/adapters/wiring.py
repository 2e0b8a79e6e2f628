"""Builds adapters from settings, once per process per configuration (Lambda containers are reused).

Clients are created on first use, not at import, so a function pays only for the clients it uses.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import cache, wraps
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from pssync.adapters.aws import (
    DynamoDBDeliveryLog,
    DynamoDBVersionStore,
    EventBridgePublisher,
    PowertoolsDeduplicator,
    S3RawPayloadStore,
    SecretsManagerSecrets,
    StepFunctionsStarter,
)
from pssync.config import (
    BusinessTableSettings,
    DeliveryLogSettings,
    EventBusSettings,
    IngestSettings,
    StartWorkflowSettings,
)
from pssync.connectors.base import Connector, ShadowConnector
from pssync.ingest.service import IngestService
from pssync.ports import SystemClock

if TYPE_CHECKING:
    from pssync.connectors.crm import CrmFetchers
    from pssync.ingest.closed_won import ClosedWonResolver

P = ParamSpec("P")
T = TypeVar("T")
_building = threading.RLock()


def _once(factory: Callable[P, T]) -> Callable[P, T]:
    """functools.cache that cannot build twice when first calls race (local runtime and test threads).

    It matters: the ingest handler registers its Lambda context on the deduplicator, and a second,
    unregistered instance inside the service would leave in-progress records to expire days later.
    """
    cached = cache(factory)

    @wraps(factory)
    def build(*args: P.args, **kwargs: P.kwargs) -> T:
        with _building:
            return cached(*args, **kwargs)  # type: ignore[arg-type]  # cache wants Hashable

    return build


def client(service: str) -> Any:
    # Keyed on the endpoint too: the local runtime points boto3 at its moto server via AWS_ENDPOINT_URL.
    return _client(service, os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_REGION"))


@_once
def _client(service: str, endpoint: str | None, region: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)
    return boto3.session.Session().client(service, endpoint_url=endpoint, region_name=region, config=config)


@_once
def deduplicator(settings: IngestSettings) -> PowertoolsDeduplicator:
    return PowertoolsDeduplicator(
        settings.idempotency_table_name, settings.idempotency_expiry_seconds, client("dynamodb")
    )


@_once
def ingest_service(settings: IngestSettings) -> IngestService:
    return IngestService(
        registry=settings.registry(),
        secrets=SecretsManagerSecrets(client("secretsmanager")),
        publisher=EventBridgePublisher(settings.event_bus_name, client("events")),
        deduplicator=deduplicator(settings),
        clock=SystemClock(),
        raw_payloads=S3RawPayloadStore(settings.raw_payload_bucket, client("s3")),
    )


@_once
def crm_fetchers(read_budget_seconds: float) -> CrmFetchers:
    """Built per source on first use (one pooled httpx client each); bearer tokens cached briefly.

    `read_budget_seconds` bounds every read for one queued record, Retry-After waits included: the
    consumer sizes it so a whole batch fits its Lambda timeout.
    """
    from pssync.connectors.crm import CrmFetchers, SecretsManagerTokenSource  # httpx: only who reads

    return CrmFetchers(
        SecretsManagerTokenSource(client("secretsmanager")),
        delivery_budget_seconds=read_budget_seconds,
        deadline_seconds=read_budget_seconds,
    )


@_once
def closed_won_resolver(settings: IngestSettings) -> ClosedWonResolver:
    from pssync.ingest.closed_won import READ_BUDGET_SECONDS, ClosedWonResolver

    return ClosedWonResolver(
        registry=settings.registry(),
        fetchers=crm_fetchers(READ_BUDGET_SECONDS),
        deduplicator=deduplicator(settings),
        publisher=EventBridgePublisher(settings.event_bus_name, client("events")),
    )


@_once
def version_store(settings: BusinessTableSettings) -> DynamoDBVersionStore:
    return DynamoDBVersionStore(settings.business_table_name, client("dynamodb"))


@_once
def delivery_log(settings: DeliveryLogSettings) -> DynamoDBDeliveryLog:
    return DynamoDBDeliveryLog(settings.delivery_log_table_name, client("dynamodb"))


def connector_for(kind: str, settings: DeliveryLogSettings) -> Connector:
    if kind == "shadow":
        return ShadowConnector(delivery_log(settings))
    raise ValueError(f"connector {kind!r} is not available yet; configure 'shadow'")


@_once
def publisher(settings: EventBusSettings) -> EventBridgePublisher:
    return EventBridgePublisher(settings.event_bus_name, client("events"))


@_once
def workflow_starter(settings: StartWorkflowSettings) -> StepFunctionsStarter:
    return StepFunctionsStarter(settings.state_machine_arn, client("stepfunctions"))
