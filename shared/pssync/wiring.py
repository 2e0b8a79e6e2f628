"""The composition root: builds the real adapters, clients and services a handler needs from its settings.

Built once per process per configuration (Lambda containers are reused), and on first use, not at import,
so a function pays only for the clients it uses. It sits above everything it wires; nothing imports it
but handlers, the CLI and tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from functools import cache, wraps
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from pssync.adapters.aws import (
    DynamoDBDeliveryLog,
    DynamoDBVersionStore,
    EventBridgePublisher,
    PowertoolsDeduplicator,
    S3RawPayloadStore,
    SecretsManagerSecrets,
    SqsDeadLetterParking,
    StepFunctionsStarter,
)
from pssync.config import (
    AwsClientSettings,
    BusinessTableSettings,
    DeadLetterSettings,
    DeliveryLogSettings,
    EventBusSettings,
    IngestSettings,
    KantataPollerSettings,
    StartWorkflowSettings,
    load_settings,
)
from pssync.connectors.http_policy import CallPolicy
from pssync.errors import PssyncError
from pssync.ingest.service import IngestService
from pssync.model.commands import ConnectorCommand, Target
from pssync.model.sources import CrmApiConfig, SourceConfig
from pssync.ports import Connector, RecordFetcher, SystemClock, TokenSource

if TYPE_CHECKING:
    from pydantic import ValidationError

    from pssync.adapters.leases import DynamoDBLeaseLimiter
    from pssync.connectors.http import VendorHttp
    from pssync.connectors.kantata import KantataConnector
    from pssync.connectors.limiter import LimitedConnector
    from pssync.connectors.netsuite import NetSuiteConnector
    from pssync.ingest.closed_won import ClosedWonResolver
    from pssync.sources.kantata.poller import KantataPoller
    from pssync.workflows.provision import CommandReceipt

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
    settings = load_settings(AwsClientSettings)
    return _client(service, settings.aws_endpoint_url, settings.aws_region)


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


# One CRM fetch, retries included, fits 3.5 s; all fetches for one queued record share a budget that each
# consumer sizes (CrmRecordFetchers). The per-attempt timeout is the source's `crm_api.timeout_seconds`.
CRM_READS = CallPolicy(deadline_seconds=3.5, max_attempts=3, backoff_base_seconds=0.25)
# A Kantata feed read may wait out a 30 s Retry-After; the poller keeps its own time budget per account.
KANTATA_FEED_READS = CallPolicy(
    timeout_seconds=10.0, deadline_seconds=60.0, max_attempts=4, backoff_base_seconds=0.5
)


def crm_http(api: CrmApiConfig, token_source: TokenSource, **options: Any) -> VendorHttp:
    """The vendor HTTP client for one CRM API (tests pass a clock and jitter in `options`)."""
    from pssync.connectors.http import VendorHttp  # httpx: only the functions that read a CRM

    policy = replace(
        CRM_READS, timeout_seconds=api.timeout_seconds, connect_timeout_seconds=api.timeout_seconds
    )
    return VendorHttp(
        "crm", str(api.base_url), policy, bearer_token=lambda: token_source(api.token_secret_id), **options
    )


class CrmRecordFetchers:
    """Source -> the record fetcher of its CRM, or None when the source has no `crm_api`.

    One pooled client per source (connections are reused across records in a warm container); a fresh
    budget view per call, so all fetches for one queued record share `read_budget_seconds`.
    """

    def __init__(self, token_source: TokenSource, read_budget_seconds: float, **http_options: Any) -> None:
        self._token_source = token_source
        self._read_budget_seconds = read_budget_seconds
        self._http_options = http_options
        self._http: dict[tuple[str, CrmApiConfig], VendorHttp] = {}
        self._lock = threading.Lock()

    def __call__(self, source: SourceConfig) -> RecordFetcher | None:
        from pssync.sources import record_fetcher_for

        if source.crm_api is None:
            return None
        key = (source.name, source.crm_api)
        with self._lock:
            if key not in self._http:
                self._http[key] = crm_http(source.crm_api, self._token_source, **self._http_options)
            http = self._http[key]
        return record_fetcher_for(source.system, http.within(self._read_budget_seconds))


@_once
def api_tokens() -> TokenSource:
    from pssync.adapters.aws import SecretsManagerTokenSource

    return SecretsManagerTokenSource(client("secretsmanager"))


@_once
def crm_fetchers(read_budget_seconds: float) -> CrmRecordFetchers:
    """`read_budget_seconds` bounds every read for one queued record, Retry-After waits included: the
    consumer sizes it so a whole batch fits its Lambda timeout."""
    return CrmRecordFetchers(api_tokens(), read_budget_seconds)


@_once
def dead_letter_parking(settings: DeadLetterSettings, function_name: str) -> SqsDeadLetterParking | None:
    if settings.dead_letter_queue_url is None:
        return None
    return SqsDeadLetterParking(
        settings.dead_letter_queue_url, settings.max_receive_count, function_name, client("sqs")
    )


@_once
def version_store(settings: BusinessTableSettings) -> DynamoDBVersionStore:
    return DynamoDBVersionStore(settings.business_table_name, client("dynamodb"))


@_once
def delivery_log(settings: DeliveryLogSettings) -> DynamoDBDeliveryLog:
    return DynamoDBDeliveryLog(settings.delivery_log_table_name, client("dynamodb"))


def netsuite_connector() -> NetSuiteConnector:
    """The NetSuite ERP connector from NETSUITE_SECRET_ID and NETSUITE_MAPPING (NetSuiteSettings)."""
    from pssync.config import NetSuiteSettings

    settings = load_settings(NetSuiteSettings)
    return _netsuite_connector(settings.netsuite_secret_id, settings.netsuite_mapping)


@_once
def _netsuite_connector(secret_id: str, mapping_json: str) -> NetSuiteConnector:
    # Built once per container: the credentials are read once and the access token is cached with it.
    from pssync.adapters.aws import JsonSecrets
    from pssync.config import NetSuiteSettings
    from pssync.connectors.netsuite import (
        NetSuiteConnector,
        NetSuiteCredentials,
        NetSuiteMapping,
        NetSuiteTokens,
        netsuite_http,
    )

    mapping = NetSuiteSettings(netsuite_secret_id=secret_id, netsuite_mapping=mapping_json).mapping()
    secret = JsonSecrets(client("secretsmanager")).read(secret_id, "private_key_pem")
    credentials = NetSuiteCredentials(
        account_id=secret["account_id"],
        client_id=secret["client_id"],
        certificate_id=secret["certificate_id"],
        private_key_pem=secret["private_key_pem"],
        rest_domain=secret.get("rest_domain") or None,
    )
    tokens = NetSuiteTokens(credentials)
    return NetSuiteConnector(netsuite_http(credentials, tokens), tokens, NetSuiteMapping(**mapping))


@_once
def _lease_limiter(table_name: str, limit: int, lease_seconds: int) -> DynamoDBLeaseLimiter:
    from pssync.adapters.leases import DynamoDBLeaseLimiter

    return DynamoDBLeaseLimiter(table_name, client("dynamodb"), limit=limit, lease_seconds=lease_seconds)


def _not_configured(kind: str, target: Target, error: ValidationError, context_key: str) -> PssyncError:
    """Typed at the first command, naming every missing variable and where the stack takes it from."""
    missing = ", ".join(str(e["loc"][0]).upper() for e in error.errors())
    return PssyncError(
        f"cutover mode {kind!r} for the {target} cannot run: {missing} not configured (CDK context "
        f"{context_key})",
        code="configuration",
    )


def live_erp_connector(kind: str = "live") -> LimitedConnector:
    """NetSuite behind its account's concurrency slots, shared by every container that writes to it."""
    from pydantic import ValidationError

    from pssync.config import NetSuiteSettings, VendorConcurrencySettings
    from pssync.connectors.limiter import LimitedConnector

    try:
        load_settings(NetSuiteSettings)
        concurrency = load_settings(VendorConcurrencySettings)
    except ValidationError as error:
        raise _not_configured(kind, Target.ERP, error, "pssync:netsuite") from None
    netsuite = netsuite_connector()
    limiter = _lease_limiter(
        concurrency.concurrency_table_name,
        concurrency.netsuite_concurrency_limit,
        concurrency.concurrency_lease_seconds,
    )
    return LimitedConnector(netsuite, limiter, f"netsuite#{netsuite.account_id}")


def live_psa_connector(kind: str = "live") -> KantataConnector:
    """Kantata OX from KANTATA_SECRET_ID (and KANTATA_PSA_BASE_URL unless the secret names its host).

    No lease limiter: Kantata publishes no concurrency limit, and its 429 + Retry-After is waited out by
    the client (KANTATA_WRITES)."""
    from pydantic import ValidationError

    from pssync.config import KantataPsaSettings

    try:
        settings = load_settings(KantataPsaSettings)
    except ValidationError as error:
        raise _not_configured(kind, Target.PSA, error, "pssync:kantata-psa") from None
    return _kantata_connector(settings.kantata_secret_id, settings.kantata_psa_base_url)


@_once
def _kantata_connector(secret_id: str, default_base_url: str) -> KantataConnector:
    # Built once per container: one pooled client, and one secrets cache whose token every request reads
    # (Powertools' cache: one GetSecretValue per 5 min, so a token stored after a 401 is picked up).
    from pssync.adapters.aws import JsonSecrets
    from pssync.connectors.kantata import KantataConnector, kantata_psa_http

    secrets = JsonSecrets(client("secretsmanager"))
    base_url = str(secrets.read(secret_id, "access_token").get("base_url") or default_base_url)
    return KantataConnector(
        kantata_psa_http(base_url, lambda: str(secrets.read(secret_id, "access_token")["access_token"])),
        # Our role names -> the account's Kantata role ids, kept with the token: they belong to the account.
        lambda: secrets.read(secret_id, "access_token").get("role_ids") or {},
    )


def connector_for(kind: str, settings: DeliveryLogSettings, target: Target = Target.ERP) -> Connector:
    """The target's connector in its cutover mode, always behind the never-regress guard."""
    from pssync.connectors.cutover import SHADOW, CutoverConnector, LiveTarget

    if kind == SHADOW:
        return CutoverConnector(kind, delivery_log(settings))
    # The live connector first: a configuration error must not wait for AWS clients.
    live: LiveTarget = live_psa_connector(kind) if target is Target.PSA else live_erp_connector(kind)
    return CutoverConnector(kind, delivery_log(settings), live=live)


def deliver(command: ConnectorCommand) -> CommandReceipt:
    """Send a PSA or ERP command through the connector its target's cutover mode selects."""
    from pssync.workflows.provision import send

    settings = load_settings(DeliveryLogSettings)
    kind = settings.psa_connector if command.target is Target.PSA else settings.erp_connector
    return send(connector_for(kind, settings, command.target), command, SystemClock().now())


@_once
def publisher(settings: EventBusSettings) -> EventBridgePublisher:
    return EventBridgePublisher(settings.event_bus_name, client("events"))


@_once
def workflow_starter(settings: StartWorkflowSettings) -> StepFunctionsStarter:
    return StepFunctionsStarter(settings.state_machine_arn, client("stepfunctions"))


def kantata_http(base_url: str, token: Callable[[], str], **options: Any) -> VendorHttp:
    """The vendor HTTP client for one Kantata account (tests pass a clock and jitter in `options`)."""
    from pssync.connectors.http import VendorHttp

    return VendorHttp("kantata", base_url, KANTATA_FEED_READS, bearer_token=token, **options)


def kantata_poller(
    settings: KantataPollerSettings, source: SourceConfig, seconds_left: Callable[[], float]
) -> KantataPoller:
    """A poller for one Kantata account; a source without a configured token secret is refused."""
    from datetime import timedelta

    from pssync.adapters.cursors import DynamoDBCursorStore
    from pssync.errors import PssyncError
    from pssync.sources.kantata.feed import KantataFeed
    from pssync.sources.kantata.normaliser import KantataNormaliser
    from pssync.sources.kantata.poller import KantataPoller

    secret_id = settings.kantata_token_secret_id(source.name)
    if secret_id is None:
        raise PssyncError(f"no Kantata token secret is configured for {source.name}", code="configuration")
    tokens = api_tokens()
    return KantataPoller(
        api=KantataFeed(kantata_http(settings.kantata_base_url, lambda: tokens(secret_id))),
        acceptor=ingest_service(settings),
        cursors=DynamoDBCursorStore(settings.cursor_table_name, client("dynamodb")),
        normaliser=KantataNormaliser(settings.kantata_currency),
        clock=SystemClock(),
        overlap=timedelta(seconds=settings.kantata_overlap_seconds),
        event_types=settings.kantata_event_types,
        max_pages=settings.kantata_max_pages,
        seconds_left=seconds_left,
    )


@_once
def won_deal_resolver(settings: IngestSettings, business: BusinessTableSettings) -> ClosedWonResolver:
    """The closed-won resolver with the contract versions it diffs a won deal against (read only)."""
    from pssync.ingest.closed_won import READ_BUDGET_SECONDS, ClosedWonResolver

    return ClosedWonResolver(
        registry=settings.registry(),
        fetchers=crm_fetchers(READ_BUDGET_SECONDS),
        deduplicator=deduplicator(settings),
        publisher=EventBridgePublisher(settings.event_bus_name, client("events")),
        contracts=version_store(business),
    )
