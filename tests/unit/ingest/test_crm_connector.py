"""CRM fetchers against respx: auth, timeouts, bounded retries with Retry-After, 404; and the mappers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import respx

from pssync.connectors.http import VendorHttp
from pssync.errors import TransientDownstreamError, UnprocessableDelivery
from pssync.model.sources import CrmApiConfig
from pssync.sources.crm_terms import ContractMappingError, RecordNotFound
from pssync.sources.dataverse import DataverseRecordFetcher
from pssync.sources.hubspot import HubSpotRecordFetcher
from pssync.sources.hubspot import contract_terms_from_deal as contract_terms_from_hubspot_deal
from pssync.sources.salesforce.records import SalesforceRecordFetcher
from pssync.sources.salesforce.records import (
    contract_terms_from_opportunity as contract_terms_from_salesforce_opportunity,
)
from pssync.wiring import CrmRecordFetchers, crm_http
from tests.unit.ingest.sources_kit import SOURCES, hubspot_deal, salesforce_opportunity

HUBSPOT_API = CrmApiConfig.model_validate({"base_url": "https://api.hubapi.com", "token_secret_id": "tok/hs"})
DEAL_URL = "https://api.hubapi.com/crm/v3/objects/deals/18472934001"


@dataclass
class FakeTime:
    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def http(api: CrmApiConfig = HUBSPOT_API, clock: FakeTime | None = None, **options: Any) -> VendorHttp:
    clock = clock or FakeTime()
    return crm_http(
        api,
        lambda secret_id: f"token-for-{secret_id}",
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        rng=lambda: 1.0,  # deterministic: the full backoff
        **options,
    )


def deal_json() -> dict[str, Any]:
    return hubspot_deal("18472934001", "C-2026-0412")


@respx.mock
def test_hubspot_fetch_sends_the_token_properties_and_associations() -> None:
    route = respx.get(DEAL_URL).mock(return_value=httpx.Response(200, json=deal_json()))
    record = HubSpotRecordFetcher(http()).fetch("deals", "18472934001")
    assert record["properties"]["amount"] == "396000.00"
    sent = route.calls.last.request
    assert sent.headers["Authorization"] == "Bearer token-for-tok/hs"
    assert sent.url.params["associations"] == "line_items,companies"
    assert "pssync_contract_json" in sent.url.params["properties"].split(",")
    assert sent.extensions["timeout"]["read"] == 3.5  # min(timeout_seconds 5.0, the 3.5 s deadline)


@respx.mock
def test_configured_timeout_applies_per_call() -> None:
    api = HUBSPOT_API.model_copy(update={"timeout_seconds": 2.0})
    route = respx.get(DEAL_URL).mock(return_value=httpx.Response(200, json=deal_json()))
    HubSpotRecordFetcher(http(api)).fetch("deals", "18472934001")
    assert route.calls.last.request.extensions["timeout"] == {
        "connect": 2.0,
        "read": 2.0,
        "write": 2.0,
        "pool": 2.0,
    }


@respx.mock
def test_a_timeout_then_success_retries_once_after_backoff() -> None:
    clock = FakeTime()
    route = respx.get(DEAL_URL).mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json=deal_json())]
    )
    assert HubSpotRecordFetcher(http(clock=clock)).fetch("deals", "18472934001")["id"] == "18472934001"
    assert route.call_count == 2 and clock.sleeps == [0.25]


@respx.mock
def test_5xx_then_success() -> None:
    clock = FakeTime()
    route = respx.get(DEAL_URL).mock(
        side_effect=[httpx.Response(502), httpx.Response(503), httpx.Response(200, json=deal_json())]
    )
    HubSpotRecordFetcher(http(clock=clock)).fetch("deals", "18472934001")
    assert route.call_count == 3 and clock.sleeps == [0.25, 0.5]


@respx.mock
def test_429_honours_retry_after() -> None:
    clock = FakeTime()
    route = respx.get(DEAL_URL).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(200, json=deal_json())]
    )
    HubSpotRecordFetcher(http(clock=clock)).fetch("deals", "18472934001")
    assert route.call_count == 2 and clock.sleeps == [1.0]


@respx.mock
def test_429_asking_for_longer_than_the_budget_gives_up_at_once() -> None:
    clock = FakeTime()
    route = respx.get(DEAL_URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "10"}))
    with pytest.raises(TransientDownstreamError, match="HTTP 429"):
        HubSpotRecordFetcher(http(clock=clock)).fetch("deals", "18472934001")
    assert route.call_count == 1 and clock.sleeps == []


@respx.mock
def test_persistent_5xx_is_transient_after_bounded_attempts() -> None:
    clock = FakeTime()
    route = respx.get(DEAL_URL).mock(return_value=httpx.Response(503))
    with pytest.raises(TransientDownstreamError, match="failed after retries: HTTP 503"):
        HubSpotRecordFetcher(http(clock=clock)).fetch("deals", "18472934001")
    assert route.call_count == 3 and clock.sleeps == [0.25, 0.5]


@respx.mock
def test_slow_attempts_stop_at_the_deadline() -> None:
    clock = FakeTime()

    def slow(request: httpx.Request) -> httpx.Response:
        clock.now += 2.0  # each attempt burns 2 s before timing out
        raise httpx.ConnectTimeout("slow", request=request)

    route = respx.get(DEAL_URL).mock(side_effect=slow)
    with pytest.raises(TransientDownstreamError, match="ConnectTimeout"):
        HubSpotRecordFetcher(http(clock=clock)).fetch("deals", "18472934001")
    assert route.call_count == 2 and clock.now < 5.0


@respx.mock
def test_fetches_of_one_delivery_share_one_budget() -> None:
    clock = FakeTime()
    factory = CrmRecordFetchers(
        lambda _: "token",
        read_budget_seconds=4.0,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        rng=lambda: 1.0,
    )
    seen: list[float] = []

    def slow_deal(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"]["read"])
        clock.now += 3.0
        return httpx.Response(200, json=deal_json())

    respx.get(url__regex=r"https://api.hubapi.com/crm/v3/objects/deals/\d+").mock(side_effect=slow_deal)
    fetcher = factory(SOURCES["hubspot"])
    assert fetcher is not None
    fetcher.fetch("deals", "18472934001")
    fetcher.fetch("deals", "18472934002")
    with pytest.raises(TransientDownstreamError, match="budget"):
        fetcher.fetch("deals", "18472934003")
    assert seen == [3.5, 1.0]  # the second fetch only gets what the first left of the 4 s
    # The next delivery starts with a full budget again.
    fresh = factory(SOURCES["hubspot"])
    assert fresh is not None
    fresh.fetch("deals", "18472934001")
    assert seen[-1] == 3.5


@respx.mock
def test_404_is_record_not_found_without_retry() -> None:
    route = respx.get(DEAL_URL).mock(return_value=httpx.Response(404, json={"status": "error"}))
    with pytest.raises(RecordNotFound) as raised:
        HubSpotRecordFetcher(http()).fetch("deals", "18472934001")
    assert raised.value.status == 422 and route.call_count == 1


@respx.mock
def test_401_is_transient_without_retry() -> None:
    route = respx.get(DEAL_URL).mock(return_value=httpx.Response(401))
    with pytest.raises(TransientDownstreamError, match="HTTP 401"):
        HubSpotRecordFetcher(http()).fetch("deals", "18472934001")
    assert route.call_count == 1


@respx.mock
def test_salesforce_fetch_reads_the_opportunity_and_its_line_items() -> None:
    api = CrmApiConfig.model_validate(
        {"base_url": "https://contoso.my.salesforce.com", "token_secret_id": "t"}
    )
    full = salesforce_opportunity("0065g00000AbCdEAAX", "C-2026-0412")
    items = full.pop("OpportunityLineItems")
    respx.get(
        "https://contoso.my.salesforce.com/services/data/v62.0/sobjects/Opportunity/0065g00000AbCdEAAX"
    ).mock(return_value=httpx.Response(200, json=full))
    query = respx.get("https://contoso.my.salesforce.com/services/data/v62.0/query").mock(
        return_value=httpx.Response(200, json={"totalSize": 2, "done": True, **items})
    )
    record = SalesforceRecordFetcher(http(api)).fetch("Opportunity", "0065g00000AbCdEAAX")
    assert [i["Id"] for i in record["OpportunityLineItems"]["records"]] == [
        "00k5g00000LiNe1AAA",
        "00k5g00000LiNe2AAA",
    ]
    assert query.calls.last.request.url.params["q"].endswith("WHERE OpportunityId = '0065g00000AbCdEAAX'")
    terms = contract_terms_from_salesforce_opportunity(record)
    assert terms.crm_opportunity_id == "0065g00000AbCdEAAX"


@respx.mock
def test_ids_that_could_inject_are_refused_before_any_call() -> None:
    fetcher = SalesforceRecordFetcher(http())
    with pytest.raises(UnprocessableDelivery):
        fetcher.fetch("Opportunity", "0065g' OR Id != '")
    with pytest.raises(UnprocessableDelivery):
        HubSpotRecordFetcher(http()).fetch("deals", "../owners/1")
    assert respx.calls.call_count == 0


@respx.mock
def test_dataverse_fetch_uses_the_web_api_entity_set() -> None:
    api = CrmApiConfig.model_validate({"base_url": "https://org.crm4.dynamics.com", "token_secret_id": "t"})
    guid = "a1c2e3f4-5b6d-4e7f-8091-a2b3c4d5e6f7"
    route = respx.get(f"https://org.crm4.dynamics.com/api/data/v9.2/opportunities({guid})").mock(
        return_value=httpx.Response(200, json={"opportunityid": guid})
    )
    assert DataverseRecordFetcher(http(api)).fetch("opportunity", guid) == {"opportunityid": guid}
    assert route.called


def test_fetchers_factory_pools_http_per_source_and_returns_none_without_crm_api() -> None:
    factory = CrmRecordFetchers(lambda _: "token", read_budget_seconds=4.0)
    hubspot = factory(SOURCES["hubspot"])
    assert isinstance(hubspot, HubSpotRecordFetcher) and factory(SOURCES["hubspot"]) is not hubspot
    assert len(factory._http) == 1  # one pooled client, a fresh per-delivery budget each call
    assert isinstance(factory(SOURCES["salesforce"]), SalesforceRecordFetcher)
    assert isinstance(factory(SOURCES["dataverse"]), DataverseRecordFetcher)
    assert factory(SOURCES["jira"]) is None


def test_hubspot_mapper_takes_identity_from_the_crm_and_terms_from_the_sow_json() -> None:
    terms = contract_terms_from_hubspot_deal(deal_json())
    assert terms.contract_id == "C-2026-0412" and terms.crm_opportunity_id == "18472934001"
    assert terms.customer.external_ids == {
        "salesforce": "0015g00000XyZ12AAB",
        "netsuite": "4711",
        "hubspot": "9120331",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pssync_contract_json": None}, "has no contract terms JSON"),
        ({"pssync_contract_json": "{}"}, "contract_id: Field required"),
        ({"deal_currency_code": "USD"}, "CRM currency USD differs"),
        ({"amount": "lots"}, "is not a number"),
    ],
)
def test_hubspot_mapper_refuses_unusable_deals(change: dict[str, Any], message: str) -> None:
    deal = deal_json()
    deal["properties"].update(change)
    with pytest.raises(ContractMappingError, match=message) as raised:
        contract_terms_from_hubspot_deal(deal)
    assert raised.value.status == 422


def test_terms_json_roundtrip_is_exact() -> None:
    deal = deal_json()
    document = json.loads(deal["properties"]["pssync_contract_json"])
    assert document["transaction_price"] == {"amount": "396000.00", "currency": "EUR"}
