"""What the per-source tests share: source configs, signed requests, canned CRM records, a harness."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pssync.errors import (
    IngestRejected,
    MalformedDelivery,
    PayloadTooLarge,
    SignatureInvalid,
    StaleDelivery,
    UnknownTenant,
    UnprocessableDelivery,
    UnsupportedMediaType,
)
from pssync.ingest.closed_won import ClosedWonResolver, Resolution
from pssync.ingest.service import IngestService
from pssync.model import examples
from pssync.model.contract import ContractTerms
from pssync.model.events import ClosedWonSignalled, ContractBooked
from pssync.model.sources import SourceConfig, SourceRegistry
from pssync.ports import IngestResult, RecordFetcher, SigningSecrets
from pssync.sources.request import RawRequest
from tests.fakes import (
    FakeRecordFetcher,
    FakeSecrets,
    FixedClock,
    InMemoryDeduplicator,
    InMemoryRawPayloads,
    InMemoryVersionStore,
    RecordingPublisher,
)

SAMPLES = Path(__file__).resolve().parents[3] / "events" / "samples" / "webhooks"
CLOCK = FixedClock()  # 2026-11-20T10:15:30Z; the samples are stamped 10:15:00Z
NOW_MS = int(CLOCK.now().timestamp() * 1000)

HUBSPOT_SECRET = "b3c1f0e2-hubspot-client-secret-current"
HUBSPOT_PREVIOUS = "9a8b7c6d-hubspot-client-secret-previous"
JIRA_SECRET = "jira-admin-webhook-secret-current"
JIRA_PREVIOUS = "jira-admin-webhook-secret-previous"
DATAVERSE_KEY = "dataverse-service-endpoint-key-current"
DATAVERSE_PREVIOUS = "dataverse-service-endpoint-key-previous"
SALESFORCE_KEY = "salesforce-outbound-key-current"
SALESFORCE_PREVIOUS = "salesforce-outbound-key-previous"

HUBSPOT_URL = "https://hooks.pssync.example.com/webhooks/hubspot"
HUBSPOT_PORTAL = "62515"
HUBSPOT_OWN_APP = "2214790"  # the private app pssync writes deals with (sourceId of its changes)
JIRA_SITE = "acme-consulting.atlassian.net"
DATAVERSE_ORG = "2f7a9c3e-6d1b-4b8e-9a55-0c3f1e2d4b6a"
DATAVERSE_OPPORTUNITY = "a1c2e3f4-5b6d-4e7f-8091-a2b3c4d5e6f7"
SALESFORCE_ORG_15 = "00D5g000004ABCD"
SALESFORCE_INTEGRATION_USER = "0055g00000Int01AAA"

STANDARD_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-secret-for-tests").decode()

SOURCES: dict[str, SourceConfig] = {
    "standard": SourceConfig.model_validate(
        {
            "name": "standard",
            "scheme": "standard-webhooks",
            "system": "netsuite",
            "secret_id": "sid/standard",
            "max_body_bytes": 64 * 1024,
        }
    ),
    "hubspot": SourceConfig.model_validate(
        {
            "name": "hubspot",
            "scheme": "hubspot",
            "system": "hubspot",
            "secret_id": "sid/hubspot",
            "tenants": [HUBSPOT_PORTAL],
            "own_client_ids": [HUBSPOT_OWN_APP],
            "public_url": HUBSPOT_URL,
            "max_body_bytes": 64 * 1024,
            "crm_api": {"base_url": "https://api.hubapi.com", "token_secret_id": "tok/hubspot"},
        }
    ),
    "jira": SourceConfig.model_validate(
        {
            "name": "jira",
            "scheme": "jira",
            "system": "jira",
            "secret_id": "sid/jira",
            "tenants": [JIRA_SITE],
            "max_body_bytes": 64 * 1024,
        }
    ),
    "dataverse": SourceConfig.model_validate(
        {
            "name": "dataverse",
            "scheme": "dataverse",
            "system": "dynamics365",
            "secret_id": "sid/dataverse",
            "tenants": [DATAVERSE_ORG],
            "max_body_bytes": 64 * 1024,
            "crm_api": {"base_url": "https://org5a1b2c3d.crm4.dynamics.com", "token_secret_id": "tok/dv"},
        }
    ),
    "salesforce": SourceConfig.model_validate(
        {
            "name": "salesforce",
            "scheme": "salesforce-outbound",
            "system": "salesforce",
            "secret_id": "sid/salesforce",
            "tenants": [SALESFORCE_ORG_15],
            "own_client_ids": [SALESFORCE_INTEGRATION_USER],
            "max_body_bytes": 64 * 1024,
            "crm_api": {"base_url": "https://contoso.my.salesforce.com", "token_secret_id": "tok/sf"},
        }
    ),
}
SECRETS = {
    "sid/standard": SigningSecrets(STANDARD_SECRET),
    "sid/hubspot": SigningSecrets(HUBSPOT_SECRET, HUBSPOT_PREVIOUS),
    "sid/jira": SigningSecrets(JIRA_SECRET, JIRA_PREVIOUS),
    "sid/dataverse": SigningSecrets(DATAVERSE_KEY, DATAVERSE_PREVIOUS),
    "sid/salesforce": SigningSecrets(SALESFORCE_KEY, SALESFORCE_PREVIOUS),
}


def sample(relative: str) -> bytes:
    return (SAMPLES / relative).read_bytes()


# --- CRM records ---------------------------------------------------------------------------------


def terms(contract_id: str = "C-2026-0412") -> ContractTerms:
    return examples.transformation_programme().model_copy(update={"contract_id": contract_id})


def hubspot_deal(deal_id: str, contract_id: str, amount: str = "396000.00") -> dict[str, Any]:
    """GET /crm/v3/objects/deals/{id}?properties=...&associations=line_items,companies, as HubSpot answers."""
    return {
        "id": deal_id,
        "properties": {
            "amount": amount,
            "closedate": "2026-11-20T10:14:55.800Z",
            "createdate": "2026-09-01T08:00:00.000Z",
            "deal_currency_code": "EUR",
            "dealname": "Contoso retail platform transformation (SOW 3)",
            "dealstage": "closedwon",
            "hs_lastmodifieddate": "2026-11-20T10:14:55.912Z",
            "hs_object_id": deal_id,
            "pssync_contract_json": terms(contract_id).model_dump_json(),
        },
        "createdAt": "2026-09-01T08:00:00.000Z",
        "updatedAt": "2026-11-20T10:14:55.912Z",
        "archived": False,
        "associations": {
            "companies": {
                "results": [
                    {"id": "9120331", "type": "deal_to_company"},
                    {"id": "9120331", "type": "deal_to_company_unlabeled"},
                ]
            },
            "line items": {"results": [{"id": "7701", "type": "deal_to_line_item"}]},
        },
    }


def salesforce_opportunity(opportunity_id: str, contract_id: str, *, won: bool = True) -> dict[str, Any]:
    """The sObject GET plus the SOQL line items, merged the way SalesforceRecordFetcher returns them."""
    return {
        "attributes": {
            "type": "Opportunity",
            "url": f"/services/data/v62.0/sobjects/Opportunity/{opportunity_id}",
        },
        "Id": opportunity_id,
        "AccountId": "0015g00000XyZ12AAB",
        "Name": "Contoso retail platform transformation (SOW 3)",
        "StageName": "Closed Won" if won else "Negotiation/Review",
        "IsWon": won,
        "IsClosed": won,
        "Amount": 396000.0,
        "CurrencyIsoCode": "EUR",
        "CloseDate": "2026-11-20",
        "LastModifiedDate": "2026-11-20T10:15:03.000+0000",
        "PSSync_Contract_JSON__c": terms(contract_id).model_dump_json(),
        "OpportunityLineItems": {
            "records": [
                {"Id": "00k5g00000LiNe1AAA", "TotalPrice": 300000.0, "PSSync_Obligation_Id__c": "IMPL"},
                {"Id": "00k5g00000LiNe2AAA", "TotalPrice": 96000.0, "PSSync_Obligation_Id__c": "MANAGED"},
            ]
        },
    }


def dataverse_opportunity(opportunity_id: str = DATAVERSE_OPPORTUNITY) -> dict[str, Any]:
    """GET /api/data/v9.2/opportunities({id}) as the Web API answers (flat, lookups as _x_value)."""
    return {
        "@odata.context": "https://org5a1b2c3d.crm4.dynamics.com/api/data/v9.2/$metadata#opportunities/$entity",
        "opportunityid": opportunity_id,
        "name": "Contoso retail platform transformation (SOW 3)",
        "statecode": 1,
        "actualvalue": 396000.0,
        "_customerid_value": "3d5e7f90-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
        "pssync_contractjson": terms().model_dump_json(),
    }


def standard_records() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        ("deals", "18472934001"): hubspot_deal("18472934001", "C-2026-0412"),
        ("deals", "18472934002"): hubspot_deal("18472934002", "C-2026-0413"),
        ("deals", "18472934003"): hubspot_deal("18472934003", "C-2026-0414"),
        ("Opportunity", "0065g00000AbCdEAAX"): salesforce_opportunity("0065g00000AbCdEAAX", "C-2026-0412"),
        ("Opportunity", "0065g00000AbCdFAAX"): salesforce_opportunity("0065g00000AbCdFAAX", "C-2026-0413"),
        ("Opportunity", "0065g00000AbCdGAAX"): salesforce_opportunity("0065g00000AbCdGAAX", "C-2026-0414"),
        ("opportunity", DATAVERSE_OPPORTUNITY): dataverse_opportunity(),
    }


# --- signed requests -----------------------------------------------------------------------------


def request(
    body: bytes, headers: dict[str, str | list[str]], url: str = "/webhooks/x", method: str = "POST"
) -> RawRequest:
    """A request as the vendor sends it: JSON unless the headers say otherwise."""
    if not any(k.lower() == "content-type" for k in headers):
        headers = {"Content-Type": "application/json", **headers}
    return RawRequest(
        method=method,
        url=url,
        body=body,
        headers={k.lower(): (v if isinstance(v, list) else [v]) for k, v in headers.items()},
    )


def hubspot_v3(secret: str, method: str, uri: str, body: bytes, timestamp_ms: int) -> str:
    message = method.encode() + uri.encode() + body + str(timestamp_ms).encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def hubspot_request(
    body: bytes,
    *,
    secret: str = HUBSPOT_SECRET,
    timestamp_ms: int = NOW_MS,
    signed_uri: str = HUBSPOT_URL,
    **overrides: str | list[str],
) -> RawRequest:
    headers: dict[str, str | list[str]] = {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": hubspot_v3(secret, "POST", signed_uri, body, timestamp_ms),
        "X-HubSpot-Request-Timestamp": str(timestamp_ms),
    }
    headers.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return request(body, {k: v for k, v in headers.items() if v != []}, url="/webhooks/hubspot")


def jira_request(
    body: bytes,
    *,
    secret: str = JIRA_SECRET,
    identifier: str = "e1b3c6f0-5d8a-4a49-9c1e-2f0b7d3a8c11",
    **overrides: str | list[str],
) -> RawRequest:
    headers: dict[str, str | list[str]] = {
        "Content-Type": "application/json",
        "X-Hub-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "X-Atlassian-Webhook-Identifier": identifier,
        "X-Atlassian-Webhook-Flow": "Primary",
    }
    headers.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return request(body, {k: v for k, v in headers.items() if v != []}, url="/webhooks/jira")


def standard_request(body: bytes, *, secret: str = STANDARD_SECRET, delivery_id: str = "msg_1") -> RawRequest:
    """Signed over the raw bytes (the scheme's definition), so bodies that are not UTF-8 can be signed too."""
    timestamp = str(int(CLOCK.now().timestamp()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    headers: dict[str, str | list[str]] = {
        "Content-Type": "application/json",
        "webhook-id": delivery_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": f"v1,{signature}",
    }
    return request(body, headers, url="/webhooks/standard")


def dataverse_request(body: bytes, *, key: str | list[str] = DATAVERSE_KEY) -> RawRequest:
    headers: dict[str, str | list[str]] = {"Content-Type": "application/json"}
    if key != []:
        headers["x-pssync-key"] = key
    return request(body, headers, url="/webhooks/dataverse")


def salesforce_request(
    body: bytes, *, key: str = SALESFORCE_KEY, via: str = "query", extra_headers: dict[str, str] | None = None
) -> RawRequest:
    headers: dict[str, str | list[str]] = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
    url = "/webhooks/salesforce"
    if via == "query":
        url += f"?key={key}"
    elif via == "header":
        headers["x-pssync-key"] = key
    headers.update(extra_headers or {})
    return request(body, headers, url=url)


def with_json(body: bytes, **changes: Any) -> bytes:
    document = json.loads(body)
    document.update(changes)
    return json.dumps(document).encode()


# --- refusals ------------------------------------------------------------------------------------

# The status each refusal answers with: the webhook API's contract (events/openapi/webhook-api.v1.json).
EXPECTED_STATUS: dict[type[IngestRejected], int] = {
    SignatureInvalid: 401,
    StaleDelivery: 400,
    MalformedDelivery: 400,
    UnknownTenant: 403,
    UnprocessableDelivery: 422,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
}


def assert_refused_without_writes(
    source_name: str, build: Callable[[], RawRequest], error: type[IngestRejected]
) -> None:
    harness = Harness()
    with pytest.raises(error) as raised:
        harness.send(source_name, build())
    assert raised.value.status == EXPECTED_STATUS[error]
    assert harness.nothing_written() and harness.fetcher.calls == []


# --- the service under test ----------------------------------------------------------------------


class Harness:
    def __init__(self, **source_overrides: dict[str, Any]) -> None:
        sources = [
            s.model_copy(update=source_overrides[name]) if name in source_overrides else s
            for name, s in SOURCES.items()
        ]
        self.publisher = RecordingPublisher()
        self.dedupe = InMemoryDeduplicator()
        self.raw = InMemoryRawPayloads()
        self.fetcher = FakeRecordFetcher(standard_records())
        self.contracts = InMemoryVersionStore()  # the business table the resolver reads contracts from

        def fetchers(source: SourceConfig) -> RecordFetcher | None:
            return self.fetcher if source.crm_api is not None else None

        self.service = IngestService(
            SourceRegistry(sources), FakeSecrets(dict(SECRETS)), self.publisher, self.dedupe, CLOCK, self.raw
        )
        # What resolve_closed_won does behind its queue, over the same dedupe store and bus.
        self.resolver = ClosedWonResolver(
            SourceRegistry(sources), fetchers, self.dedupe, self.publisher, contracts=self.contracts
        )

    def send(self, source: str, raw: RawRequest) -> IngestResult:
        return self.service.ingest(source, raw)

    def signals(self) -> list[ClosedWonSignalled]:
        return [e for e in self.publisher.published if isinstance(e, ClosedWonSignalled)]

    def resolve_signals(self) -> list[Resolution]:
        """Resolve every signal published so far, as the queue would deliver them (once each)."""
        return [self.resolver.resolve(signal) for signal in self.signals()]

    def bookings(self) -> list[ContractBooked]:
        return [e for e in self.publisher.published if isinstance(e, ContractBooked)]

    def nothing_written(self) -> bool:
        return not self.publisher.published and not self.dedupe.records and not self.raw.objects
