"""Amendments from a CRM through the real handlers against moto, HubSpot's API on respx.

ingest_webhook answers the deal's property changes with a ClosedWonSignalled; resolve_closed_won reads the
deal and the contract's head version (written here by the real record step, as provision-engagement
does) and publishes a ContractAmended only when the terms changed. The resolver's grant on the business
table is read only, so it must not write there: every write call is checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import botocore.client
import httpx
import pytest
import respx

from pssync.adapters.aws import DynamoDBVersionStore
from pssync.model import examples
from pssync.model.events import ContractBooked
from pssync.workflows.provision import CONTRACT, record_contract_version
from tests.integration.conftest import AwsWorld
from tests.integration.test_sources_http import HUBSPOT_API, hubspot_headers, invoke, resolve, world
from tests.unit.ingest.sources_kit import hubspot_deal, sample

__all__ = ["world"]  # the fixture, shared with test_sources_http

DEAL = "18472934001"
CONTRACT_ID = "C-2026-0412"
CLOSED_WON = json.loads(sample("hubspot/deal-closed-won-batch.json"))[0]
DEAL_URL = f"{HUBSPOT_API}/crm/v3/objects/deals/{DEAL}"
READS = frozenset({"GetItem", "Query"})  # the resolver's whole grant on the business table


def deal_events(*changes: tuple[str, str, int]) -> bytes:
    """Property changes of DEAL (property, value, occurredAt ms), with fresh event ids."""
    return json.dumps(
        [
            {**CLOSED_WON, "eventId": 1480914001 + n, "propertyName": p, "propertyValue": v, "occurredAt": at}
            for n, (p, v, at) in enumerate(changes)
        ]
    ).encode()


def changed_deal(**properties: Any) -> dict[str, Any]:
    deal = hubspot_deal(DEAL, CONTRACT_ID)
    deal["properties"].update(properties)
    return deal


@pytest.fixture
def hubspot() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.get(DEAL_URL).mock(return_value=httpx.Response(200, json=hubspot_deal(DEAL, CONTRACT_ID)))
        yield router


@pytest.fixture
def business_writes(world: AwsWorld) -> Iterator[list[str]]:
    """Write calls naming the business table, from here on."""
    calls: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def counting(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        tables = {api_params.get("TableName")} | {
            request.get("TableName")
            for item in api_params.get("TransactItems", [])
            for request in item.values()
        }
        if "business" in tables and operation_name not in READS:
            calls.append(operation_name)
        return original(self, operation_name, api_params)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
        yield calls


def book(world: AwsWorld) -> DynamoDBVersionStore:
    """The deal closes won; its booking is recorded as contract v1 by the real record step."""
    body = deal_events(("dealstage", "closedwon", 1795169695800))
    assert invoke("hubspot", body, hubspot_headers(body))["statusCode"] == 202
    assert resolve(world.captured()) == {"batchItemFailures": []}
    [booked] = world.captured()
    store = DynamoDBVersionStore("business", world.clients["dynamodb"])
    event = ContractBooked.model_validate(booked["detail"])
    record_contract_version(event, store, event.received_at)
    return store


def test_a_contract_change_on_a_booked_deal_is_published_once_as_contract_amended(
    world: AwsWorld, hubspot: respx.MockRouter
) -> None:
    store = book(world)
    change_order = examples.change_order_terms().model_copy(update={"contract_id": CONTRACT_ID})
    hubspot.get(DEAL_URL).mock(
        return_value=httpx.Response(
            200,
            json=changed_deal(
                amount="426000.00",
                pssync_contract_json=change_order.model_dump_json(),
                hs_lastmodifieddate="2026-12-01T09:30:00.125Z",
            ),
        )
    )
    body = deal_events(("amount", "426000.00", 1796117400000), ("pssync_contract_json", "{}", 1796117400125))
    answered = json.loads(invoke("hubspot", body, hubspot_headers(body))["body"])
    [signal] = world.captured()
    assert [e["event_type"] for e in answered["events"]] == ["ClosedWonSignalled"]
    assert signal["detail"]["data"]["kind"] == "changed"

    assert resolve([signal]) == {"batchItemFailures": []}
    [amended] = world.captured()
    assert amended["detail-type"] == "ContractAmended"
    detail = amended["detail"]
    assert detail["source_version"] == "2026-12-01T09:30:00.125Z"
    assert detail["causation_id"] == signal["detail"]["event_id"]
    assert detail["data"]["contract"]["transaction_price"]["amount"] == "426000.00"
    assert detail["data"]["effective_date"] == "2027-01-04"
    assert detail["lineage"] == signal["detail"]["lineage"]  # the webhook behind the change

    # SQS redelivers the signal, or ops replay it: nothing is published twice.
    assert resolve([signal], receive_count=2) == {"batchItemFailures": []}
    assert world.captured() == []
    assert [v.version for v in store.history(CONTRACT, CONTRACT_ID)] == [1]  # the workflow records v2


def test_a_change_that_is_not_contractual_publishes_nothing_and_writes_no_contract(
    world: AwsWorld, hubspot: respx.MockRouter, business_writes: list[str]
) -> None:
    book(world)
    recorded_by_the_step = list(business_writes)  # contract v1 and its project link, in book()
    hubspot.get(DEAL_URL).mock(
        return_value=httpx.Response(
            200,
            json=changed_deal(
                hubspot_owner_id="4811187",
                description="renewal expected in Q3",
                hs_lastmodifieddate="2026-12-01T09:30:00.125Z",
            ),
        )
    )
    body = deal_events(("pssync_contract_json", "{}", 1796117400125))
    invoke("hubspot", body, hubspot_headers(body))
    [signal] = world.captured()
    assert resolve([signal]) == {"batchItemFailures": []}
    assert world.captured() == []
    assert hubspot.calls.call_count == 2  # the booking's read and this one
    assert recorded_by_the_step and business_writes == recorded_by_the_step  # the resolver only reads
