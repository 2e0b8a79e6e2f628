"""CRM record fetchers (HubSpot CRM v3, Salesforce REST, Dataverse Web API) and their contract mappers.

Thin events (HubSpot property changes, Salesforce outbound messages, Dataverse `Win` messages, CDC
GAP/UPDATE events) name a record; the facts behind a `ContractBooked` are read from the CRM's API here, by
the queue consumers (`resolve_closed_won`, the Event Relay normaliser), never inside a webhook. Every call
has a timeout; 429, 5xx and transport errors are retried a bounded number of times with full jitter
(Retry-After honoured) inside a per-fetch deadline, and all fetches for one queued record share a budget
(`DeliveryBudget`) sized by the consumer to fit its batch in the Lambda timeout. When that is exhausted
the caller gets `TransientDownstreamError`, and the queue retries the record, then parks it in its DLQ.
A record that does not exist is `RecordNotFound` (`UnprocessableDelivery`). A 401/403 (our token) is
`TransientDownstreamError` without retry: the record must not be lost while the token is fixed.

Where the contract terms come from (one convention per CRM, deliberately explicit):
CRMs hold deals and opportunities, not ASC 606 terms. The SOW tool (or CPQ) writes the full
`ContractTerms` document as JSON into one long-text field of the deal/opportunity:

| CRM        | field holding the ContractTerms JSON | amount / currency cross-checked against |
|------------|--------------------------------------|-----------------------------------------|
| HubSpot    | deal property `pssync_contract_json` | `amount`, `deal_currency_code`          |
| Salesforce | Opportunity `PSSync_Contract_JSON__c` | `Amount`, `CurrencyIsoCode`             |
| Dataverse  | opportunity `pssync_contractjson`    | `actualvalue` (Money), when present     |

The CRM stays authoritative for identity: `crm_opportunity_id` is the record id and the customer's
`external_ids[<system>]` is the associated company / account. A deal amount that disagrees with the
terms' transaction price is refused (422) instead of booked: the SOW JSON is stale. Salesforce
opportunity line items are read too and each `PSSync_Obligation_Id__c` they carry must name an
obligation of the terms (products sold outside the SOW are a booking error); HubSpot line items are
only associated ids here and are not mapped (obligations, recognition and billing come from the SOW).
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from pssync.connectors.http_retry import retry_after_seconds
from pssync.errors import TransientDownstreamError, UnprocessableDelivery
from pssync.ingest.schemes.base import RecordFetcher
from pssync.ingest.schemes.salesforce_outbound import SALESFORCE_ID
from pssync.ingest.sources import CrmApiConfig, SourceConfig
from pssync.model.contract import ContractTerms
from pssync.model.events import SourceSystem

TokenSource = Callable[[str], str]
"""Secret id -> bearer token (read from Secrets Manager in production, a literal in tests)."""

DEFAULT_DEADLINE_SECONDS = 3.5  # one fetch, retries included
DEFAULT_DELIVERY_BUDGET_SECONDS = 4.0  # all fetches for one record
DEFAULT_MAX_ATTEMPTS = 3  # one call plus two retries
DEFAULT_BACKOFF_SECONDS = 0.25
SALESFORCE_API_VERSION = "v62.0"
DATAVERSE_API_PATH = "/api/data/v9.2"

HUBSPOT_DEAL_PROPERTIES = (
    "dealname",
    "amount",
    "deal_currency_code",
    "dealstage",
    "closedate",
    "hs_lastmodifieddate",
    "pssync_contract_json",
)
SALESFORCE_CONTRACT_FIELD = "PSSync_Contract_JSON__c"
SALESFORCE_OBLIGATION_FIELD = "PSSync_Obligation_Id__c"
DATAVERSE_CONTRACT_ATTRIBUTE = "pssync_contractjson"

_LINE_ITEMS_SOQL = (
    "SELECT Id, Name, Quantity, UnitPrice, TotalPrice, Product2Id, PSSync_Obligation_Id__c "
    "FROM OpportunityLineItem"
)
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_SAFE_ID = re.compile(r"^[A-Za-z0-9_{}-]{1,64}$")


class RecordNotFound(UnprocessableDelivery):
    """The CRM says the record behind the event does not exist (deleted, or the wrong portal/org)."""

    code = "record_not_found"


class ContractMappingError(UnprocessableDelivery):
    """The fetched record does not hold usable contract terms under the documented convention."""

    code = "contract_mapping"


# --- HTTP with bounded retries ---------------------------------------------------------------------


class CrmHttp:
    """GET/POST JSON with a bearer token, a per-call timeout and bounded, jittered retries."""

    def __init__(
        self,
        api: CrmApiConfig,
        token_source: TokenSource,
        *,
        transport: httpx.BaseTransport | None = None,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        jitter: Callable[[float], float] = lambda cap: random.uniform(0, cap),
    ) -> None:
        self._api = api
        self._token_source = token_source
        self._deadline_seconds = deadline_seconds
        self._max_attempts = max_attempts
        self._backoff_seconds = backoff_seconds
        self._sleep = sleep
        self._monotonic = monotonic
        self._jitter = jitter
        self._client = httpx.Client(
            base_url=str(api.base_url).rstrip("/"),
            timeout=api.timeout_seconds,
            transport=transport,
            headers={"Accept": "application/json"},
        )

    def now(self) -> float:
        return self._monotonic()

    def get_json(
        self, path: str, params: dict[str, str] | None = None, *, not_after: float | None = None
    ) -> dict[str, Any]:
        """One logical GET; `not_after` (monotonic) caps it further, e.g. by the record's read budget."""
        deadline = self._monotonic() + self._deadline_seconds
        if not_after is not None:
            deadline = min(deadline, not_after)
        last_problem = "no time left in the record's read budget"
        for attempt in range(1, self._max_attempts + 1):
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                break
            timeout = min(self._api.timeout_seconds, remaining)
            retry_after: float | None = None
            try:
                response = self._client.get(
                    path,
                    params=params,
                    timeout=timeout,
                    headers={"Authorization": f"Bearer {self._token_source(self._api.token_secret_id)}"},
                )
            except httpx.TransportError as error:  # timeouts, connection resets, DNS
                last_problem = type(error).__name__
            else:
                if response.status_code == 404:
                    raise RecordNotFound(f"{path} does not exist in the CRM (404)")
                if response.is_success:
                    return _json_object(response, path)
                last_problem = f"HTTP {response.status_code}"
                if response.status_code not in _RETRYABLE_STATUS:
                    # 401/403: our token is wrong or expired. Transient for the record: its queue
                    # retries it, then parks it in the DLQ (alarmed) until the token is fixed.
                    raise TransientDownstreamError(f"CRM refused {path}: {last_problem}")
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt == self._max_attempts:
                break
            delay = (
                retry_after
                if retry_after is not None
                else self._jitter(self._backoff_seconds * 2 ** (attempt - 1))
            )
            if self._monotonic() + delay >= deadline:
                break  # waiting would overrun the record's budget: let its queue retry instead
            self._sleep(delay)
        raise TransientDownstreamError(f"CRM fetch of {path} failed after retries: {last_problem}")

    def close(self) -> None:
        self._client.close()


def _json_object(response: httpx.Response, path: str) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        raise TransientDownstreamError(f"CRM answered {path} with a body that is not JSON") from None
    if not isinstance(document, dict):
        raise TransientDownstreamError(f"CRM answered {path} with JSON that is not an object")
    return document


def _checked_id(object_id: str, pattern: re.Pattern[str] = _SAFE_ID) -> str:
    if not pattern.fullmatch(object_id):
        raise UnprocessableDelivery(f"record id {object_id!r} is not a valid CRM id")
    return object_id


# --- fetchers --------------------------------------------------------------------------------------


class JsonGetter(Protocol):
    def get_json(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]: ...


class DeliveryBudget:
    """A per-delivery view of a pooled CrmHttp: every fetch for one delivery shares one deadline.

    A HubSpot batch with several closed-won deals fetches them one after the other; without a shared
    deadline each could use the whole per-fetch allowance and the reply would miss HubSpot's 5 s.
    """

    def __init__(self, http: CrmHttp, seconds: float) -> None:
        self._http = http
        self._not_after = http.now() + seconds

    def get_json(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        return self._http.get_json(path, params, not_after=self._not_after)


class HubSpotRecordFetcher:
    """`fetch("deals", id)`: GET /crm/v3/objects/deals/{id} with the properties and associations used."""

    def __init__(self, http: JsonGetter) -> None:
        self._http = http

    def fetch(self, object_type: str, object_id: str) -> dict[str, Any]:
        if object_type != "deals":
            raise ValueError(f"HubSpot fetcher reads deals, not {object_type!r}")
        return self._http.get_json(
            f"/crm/v3/objects/deals/{quote(_checked_id(object_id))}",
            params={
                "properties": ",".join(HUBSPOT_DEAL_PROPERTIES),
                "associations": "line_items,companies",
            },
        )


class SalesforceRecordFetcher:
    """`fetch("Opportunity", id)`: the sObject plus its line items under `OpportunityLineItems.records`."""

    def __init__(self, http: JsonGetter, api_version: str = SALESFORCE_API_VERSION) -> None:
        self._http = http
        self._base = f"/services/data/{api_version}"

    def fetch(self, object_type: str, object_id: str) -> dict[str, Any]:
        if object_type != "Opportunity":
            raise ValueError(f"Salesforce fetcher reads Opportunity, not {object_type!r}")
        record_id = _checked_id(object_id, SALESFORCE_ID)  # validated: it is interpolated into SOQL
        record = self._http.get_json(f"{self._base}/sobjects/Opportunity/{record_id}")
        # record_id matched SALESFORCE_ID above (alphanumerics only): nothing can be injected.
        soql = f"{_LINE_ITEMS_SOQL} WHERE OpportunityId = '{record_id}'"
        items = self._http.get_json(f"{self._base}/query", params={"q": soql})
        return {**record, "OpportunityLineItems": {"records": list(items.get("records", []))}}


class DataverseRecordFetcher:
    """`fetch("opportunity", id)`: GET /api/data/v9.2/opportunities({id})."""

    _ENTITY_SETS = {"opportunity": "opportunities", "invoice": "invoices"}

    def __init__(self, http: JsonGetter) -> None:
        self._http = http

    def fetch(self, object_type: str, object_id: str) -> dict[str, Any]:
        entity_set = self._ENTITY_SETS.get(object_type)
        if entity_set is None:
            raise ValueError(f"Dataverse fetcher reads {sorted(self._ENTITY_SETS)}, not {object_type!r}")
        return self._http.get_json(f"{DATAVERSE_API_PATH}/{entity_set}({_checked_id(object_id)})")


class CrmFetchers:
    """Builds a fetcher per source, called once per queued record.

    One pooled CrmHttp per source (connections are reused across deliveries in a warm container); a
    fresh fetcher per delivery, so all fetches of one delivery share `delivery_budget_seconds`.
    """

    def __init__(
        self,
        token_source: TokenSource,
        delivery_budget_seconds: float = DEFAULT_DELIVERY_BUDGET_SECONDS,
        **http_options: Any,
    ) -> None:
        self._token_source = token_source
        self._delivery_budget_seconds = delivery_budget_seconds
        self._http_options = http_options
        self._http: dict[tuple[str, CrmApiConfig], CrmHttp] = {}
        self._lock = threading.Lock()

    def __call__(self, source: SourceConfig) -> RecordFetcher | None:
        if source.crm_api is None:
            return None
        key = (source.name, source.crm_api)
        with self._lock:
            if key not in self._http:
                self._http[key] = CrmHttp(source.crm_api, self._token_source, **self._http_options)
            http = self._http[key]
        budget = DeliveryBudget(http, self._delivery_budget_seconds)
        match source.system:
            case SourceSystem.HUBSPOT:
                return HubSpotRecordFetcher(budget)
            case SourceSystem.SALESFORCE:
                return SalesforceRecordFetcher(budget)
            case SourceSystem.DYNAMICS_365:
                return DataverseRecordFetcher(budget)
        raise ValueError(f"source {source.name}: no CRM fetcher for {source.system}")


class SecretsManagerTokenSource:
    """Bearer tokens stored as {"access_token": ...}; cached briefly (a rotator keeps them fresh)."""

    def __init__(self, client: Any, max_age_seconds: int = 300) -> None:
        from pssync.adapters.aws import JsonSecrets

        self._secrets = JsonSecrets(client, max_age_seconds)

    def __call__(self, secret_id: str) -> str:
        return str(self._secrets.read(secret_id, "access_token")["access_token"])


# --- mappers: fetched record -> ContractTerms ------------------------------------------------------


def contract_terms_from_hubspot_deal(deal: dict[str, Any]) -> ContractTerms:
    properties = deal.get("properties") or {}
    deal_id = str(deal.get("id") or "")
    terms = _terms_from_json(properties.get("pssync_contract_json"), f"HubSpot deal {deal_id}")
    _check_amount(terms, properties.get("amount"), properties.get("deal_currency_code"), f"deal {deal_id}")
    companies = ((deal.get("associations") or {}).get("companies") or {}).get("results") or []
    primary = next((c for c in companies if c.get("type") == "deal_to_company"), None) or next(
        iter(companies), None
    )
    return _with_crm_identity(terms, deal_id, "hubspot", str(primary["id"]) if primary else None)


def contract_terms_from_salesforce_opportunity(record: dict[str, Any]) -> ContractTerms:
    record_id = str(record.get("Id") or "")
    terms = _terms_from_json(record.get(SALESFORCE_CONTRACT_FIELD), f"Opportunity {record_id}")
    _check_amount(terms, record.get("Amount"), record.get("CurrencyIsoCode"), f"Opportunity {record_id}")
    items = (record.get("OpportunityLineItems") or {}).get("records") or []
    known = terms.obligation_ids()
    for item in items:
        obligation = item.get(SALESFORCE_OBLIGATION_FIELD)
        if obligation and obligation not in known:
            raise ContractMappingError(
                f"Opportunity {record_id}: line item {item.get('Id')} names obligation {obligation!r}, "
                f"which the contract terms do not define"
            )
    account = record.get("AccountId")
    return _with_crm_identity(terms, record_id, "salesforce", str(account) if account else None)


def contract_terms_from_dataverse_opportunity(
    attributes: dict[str, Any], opportunity_id: str
) -> ContractTerms:
    """`attributes` as a flat dict: Web API JSON, or a RemoteExecutionContext image flattened."""
    terms = _terms_from_json(attributes.get(DATAVERSE_CONTRACT_ATTRIBUTE), f"opportunity {opportunity_id}")
    actual = attributes.get("actualvalue")
    if isinstance(actual, dict):  # Money in a RemoteExecutionContext: {"__type": "Money:...", "Value": ...}
        actual = actual.get("Value")
    _check_amount(terms, actual, None, f"opportunity {opportunity_id}")
    customer = attributes.get("customerid") or attributes.get("parentaccountid")
    customer_id = customer.get("Id") if isinstance(customer, dict) else attributes.get("_customerid_value")
    return _with_crm_identity(terms, opportunity_id, "dynamics365", str(customer_id) if customer_id else None)


def _terms_from_json(raw: Any, what: str) -> ContractTerms:
    if not isinstance(raw, str) or not raw.strip():
        raise ContractMappingError(f"{what} has no contract terms JSON (see pssync.connectors.crm)")
    try:
        return ContractTerms.model_validate_json(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in error.errors(include_url=False)
        )
        raise ContractMappingError(f"{what}: contract terms JSON is invalid: {problems}") from None


def _check_amount(terms: ContractTerms, amount: Any, currency: Any, what: str) -> None:
    if amount is not None and amount != "":
        try:
            value = Decimal(str(amount))
        except InvalidOperation:
            raise ContractMappingError(f"{what}: amount {amount!r} is not a number") from None
        if value != terms.transaction_price.amount:
            raise ContractMappingError(
                f"{what}: CRM amount {value} differs from the contract's transaction price "
                f"{terms.transaction_price.amount}; the SOW terms are out of date"
            )
    if currency and currency != terms.currency:
        raise ContractMappingError(
            f"{what}: CRM currency {currency} differs from the contract's {terms.currency}"
        )


def _with_crm_identity(
    terms: ContractTerms, record_id: str, system: str, customer_record_id: str | None
) -> ContractTerms:
    external_ids = dict(terms.customer.external_ids)
    if customer_record_id:
        external_ids[system] = customer_record_id
    customer = terms.customer.model_copy(update={"external_ids": external_ids})
    return terms.model_copy(update={"crm_opportunity_id": record_id or None, "customer": customer})
