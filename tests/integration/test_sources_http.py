"""Vendor sources through the real ingest handler against moto, CRM APIs on respx.

Every refusal is checked at the AWS boundary: the botocore write calls made while handling it are
counted (BaseClient._make_api_call, because the handler's clients are cached in adapters.wiring).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import botocore.client
import httpx
import pytest
import respx
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from pssync.ops.dead_letters import DeadLetterOps
from tests.integration.conftest import AwsWorld, context, load_handler, sqs_record
from tests.unit.ingest.sources_kit import (
    DATAVERSE_KEY,
    DATAVERSE_ORG,
    HUBSPOT_OWN_APP,
    HUBSPOT_PORTAL,
    HUBSPOT_SECRET,
    HUBSPOT_URL,
    JIRA_SECRET,
    JIRA_SITE,
    SALESFORCE_INTEGRATION_USER,
    SALESFORCE_KEY,
    SALESFORCE_ORG_15,
    hubspot_deal,
    salesforce_opportunity,
    sample,
)

handler = load_handler("ingest_webhook")
resolver = load_handler("resolve_closed_won")

WRITE_OPERATIONS = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "TransactWriteItems",
        "BatchWriteItem",
        "PutEvents",
        "PutObject",
        "SendMessage",
    }
)
HUBSPOT_API = "https://api.hubapi.com"
SALESFORCE_API = "https://contoso.my.salesforce.com"

REGISTRY = [
    {
        "name": "hubspot",
        "scheme": "hubspot",
        "system": "hubspot",
        "secret_id": "pssync/test/webhooks/hubspot",
        "tenants": [HUBSPOT_PORTAL],
        "own_client_ids": [HUBSPOT_OWN_APP],
        "public_url": HUBSPOT_URL,
        "max_body_bytes": 65536,
        "crm_api": {
            "base_url": HUBSPOT_API,
            "token_secret_id": "pssync/test/crm/hubspot",
            "timeout_seconds": 2,
        },
    },
    {
        "name": "jira",
        "scheme": "jira",
        "system": "jira",
        "secret_id": "pssync/test/webhooks/jira",
        "tenants": [JIRA_SITE],
        "max_body_bytes": 65536,
    },
    {
        "name": "dataverse",
        "scheme": "dataverse",
        "system": "dynamics365",
        "secret_id": "pssync/test/webhooks/dataverse",
        "tenants": [DATAVERSE_ORG],
        "max_body_bytes": 65536,
    },
    {
        "name": "salesforce",
        "scheme": "salesforce-outbound",
        "system": "salesforce",
        "secret_id": "pssync/test/webhooks/salesforce",
        "tenants": [SALESFORCE_ORG_15],
        "own_client_ids": [SALESFORCE_INTEGRATION_USER],
        "max_body_bytes": 65536,
        "crm_api": {"base_url": SALESFORCE_API, "token_secret_id": "pssync/test/crm/salesforce"},
    },
]


@pytest.fixture
def world(aws: AwsWorld, monkeypatch: pytest.MonkeyPatch) -> AwsWorld:
    secrets = aws.clients["secretsmanager"]
    for name, value in {
        "webhooks/hubspot": {"current": HUBSPOT_SECRET},
        "webhooks/jira": {"current": JIRA_SECRET},
        "webhooks/dataverse": {"current": DATAVERSE_KEY},
        "webhooks/salesforce": {"current": SALESFORCE_KEY},
        "crm/hubspot": {"access_token": "pat-eu1-hubspot-token"},
        "crm/salesforce": {"access_token": "00D5g000004ABCD!salesforce-token"},
    }.items():
        secrets.create_secret(Name=f"pssync/test/{name}", SecretString=json.dumps(value))
    monkeypatch.setenv("SOURCE_REGISTRY", json.dumps(REGISTRY))
    return aws


@pytest.fixture
def writes(world: AwsWorld) -> Iterator[list[str]]:
    """AWS write operations issued after the world was set up."""
    calls: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def counting(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        if operation_name in WRITE_OPERATIONS:
            calls.append(operation_name)
        return original(self, operation_name, api_params)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
        yield calls


@pytest.fixture
def crm() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        for deal_id, contract in (("18472934001", "C-2026-0412"), ("18472934002", "C-2026-0413")):
            router.get(f"{HUBSPOT_API}/crm/v3/objects/deals/{deal_id}").mock(
                return_value=httpx.Response(200, json=hubspot_deal(deal_id, contract))
            )
        line_items: dict[str, dict[str, Any]] = {}
        for opportunity_id, contract in (
            ("0065g00000AbCdEAAX", "C-2026-0412"),
            ("0065g00000AbCdFAAX", "C-2026-0413"),
        ):
            record = salesforce_opportunity(opportunity_id, contract)
            line_items[opportunity_id] = record.pop("OpportunityLineItems")
            router.get(f"{SALESFORCE_API}/services/data/v62.0/sobjects/Opportunity/{opportunity_id}").mock(
                return_value=httpx.Response(200, json=record)
            )

        def soql(request: httpx.Request) -> httpx.Response:
            opportunity_id = request.url.params["q"].rpartition("= '")[2].rstrip("'")
            return httpx.Response(200, json={"totalSize": 2, "done": True, **line_items[opportunity_id]})

        router.get(f"{SALESFORCE_API}/services/data/v62.0/query").mock(side_effect=soql)
        yield router


# What each vendor sends as Content-Type (a request of another type is refused with 415).
MEDIA_TYPES = {"salesforce": "text/xml; charset=utf-8"}


def invoke(source: str, body: bytes, headers: dict[str, str | list[str]]) -> dict[str, Any]:
    if not any(k.lower() == "content-type" for k in headers):
        headers = {"Content-Type": MEDIA_TYPES.get(source, "application/json"), **headers}
    multi = {k: (v if isinstance(v, list) else [v]) for k, v in headers.items()}
    event = {
        "resource": "/webhooks/{source}",
        "path": f"/webhooks/{source}",
        "httpMethod": "POST",
        "headers": {k: v[-1] for k, v in multi.items() if v},
        "multiValueHeaders": multi,
        "pathParameters": {"source": source},
        "requestContext": {"requestId": "r-1", "stage": "test"},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }
    response: dict[str, Any] = handler(event, context("ingest"))
    return response


def now_ms() -> int:
    return int(time.time() * 1000)


def hubspot_headers(
    body: bytes, secret: str = HUBSPOT_SECRET, timestamp: int | None = None
) -> dict[str, Any]:
    ts = str(timestamp if timestamp is not None else now_ms())
    message = b"POST" + HUBSPOT_URL.encode() + body + ts.encode()
    signature = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": ts}


def jira_body(timestamp: int | None = None, site: str = JIRA_SITE) -> bytes:
    text = sample("jira/milestone-done.json").replace(JIRA_SITE.encode(), site.encode())
    document = json.loads(text)
    document["timestamp"] = timestamp if timestamp is not None else now_ms()
    return json.dumps(document).encode()


def jira_headers(
    body: bytes, secret: str = JIRA_SECRET, identifier: str = "jira-delivery-1"
) -> dict[str, Any]:
    return {
        "X-Hub-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "X-Atlassian-Webhook-Identifier": identifier,
    }


def dataverse_body(organisation: str = DATAVERSE_ORG) -> bytes:
    # Text replacement, not a JSON round trip: the Money values must stay the exact decimals sent.
    text = sample("dataverse/invoice-create.json").decode()
    text = text.replace(
        '"OperationCreatedOn": "/Date(1795169700000)/"', f'"OperationCreatedOn": "/Date({now_ms()})/"'
    )
    return text.replace(DATAVERSE_ORG, organisation).encode()


HUBSPOT_BATCH = sample("hubspot/deal-closed-won-batch.json")
SALESFORCE_MESSAGE = sample("salesforce-outbound/opportunity-closed-won.xml")


def resolve(messages: list[dict[str, Any]], receive_count: int = 1) -> dict[str, Any]:
    """Hand bus messages to resolve_closed_won as its inbox queue would (one SQS batch)."""
    records = [sqs_record(json.dumps(m), f"m{i}") for i, m in enumerate(messages)]
    for record in records:
        record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    result: dict[str, Any] = resolver({"Records": records}, context("resolve_closed_won"))
    return result


def test_hubspot_batch_is_answered_at_once_and_the_deals_are_booked_behind_the_queue(
    world: AwsWorld, crm: respx.MockRouter, writes: list[str]
) -> None:
    response = invoke("hubspot", HUBSPOT_BATCH, hubspot_headers(HUBSPOT_BATCH))
    assert response["statusCode"] == 202
    body = json.loads(response["body"])
    assert [e["event_type"] for e in body["events"]] == ["ClosedWonSignalled", "ClosedWonSignalled"]
    assert crm.calls.call_count == 0  # nothing waits on HubSpot's API inside its 5 s
    signals = world.captured()
    assert [m["detail-type"] for m in signals] == ["ClosedWonSignalled", "ClosedWonSignalled"]
    assert writes.count("PutEvents") == 2 and writes.count("PutObject") == 1

    assert resolve(signals) == {"batchItemFailures": []}
    booked = world.captured()
    assert {m["detail-type"] for m in booked} == {"ContractBooked"}
    assert sorted(e["detail"]["data"]["contract"]["contract_id"] for e in booked) == [
        "C-2026-0412",
        "C-2026-0413",
    ]
    assert {e["detail"]["source_version"] for e in booked} == {"1795169695800", "1795169697900"}
    assert {e["detail"]["lineage"]["raw_payload_ref"] for e in booked} == {
        signals[0]["detail"]["lineage"]["raw_payload_ref"]
    }
    hubspot_calls = [c.request for c in crm.calls if c.request.url.host == "api.hubapi.com"]
    assert len(hubspot_calls) == 2
    assert hubspot_calls[0].headers["Authorization"] == "Bearer pat-eu1-hubspot-token"
    assert world.count_items("idempotency") == 4  # two signals, two bookings

    assert resolve(signals) == {"batchItemFailures": []}  # SQS redelivers, or ops replay the DLQ
    assert world.captured() == [] and writes.count("PutEvents") == 4


def test_hubspot_redeliveries_publish_nothing_more(world: AwsWorld, crm: respx.MockRouter) -> None:
    statuses = [
        invoke("hubspot", HUBSPOT_BATCH, hubspot_headers(HUBSPOT_BATCH))["statusCode"] for _ in range(3)
    ]
    assert statuses == [202, 202, 202]
    assert len(world.captured()) == 2


# Threads share one process's Powertools metrics singleton (Lambda never does): flushes may find it empty.
@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_jira_milestone_and_concurrent_duplicates(world: AwsWorld) -> None:
    body = jira_body()
    headers = jira_headers(body)
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(lambda _: invoke("jira", body, headers), range(6)))
    assert {r["statusCode"] for r in responses} <= {202, 409}
    [event] = world.captured()
    assert event["detail-type"] == "MilestoneCompleted"
    assert event["detail"]["data"]["milestone_id"] == "CONTOSO-12"
    assert world.count_items("idempotency") == 1


def test_dataverse_invoice(world: AwsWorld) -> None:
    body = dataverse_body()
    response = invoke("dataverse", body, {"x-pssync-key": DATAVERSE_KEY})
    assert response["statusCode"] == 202
    [event] = world.captured()
    assert event["detail-type"] == "InvoicePosted"
    assert event["detail"]["data"]["total"] == {"amount": "109480.00", "currency": "EUR"}


def test_salesforce_outbound_message_gets_the_soap_ack_and_fans_out(
    world: AwsWorld, crm: respx.MockRouter
) -> None:
    response = invoke("salesforce", SALESFORCE_MESSAGE, {"x-pssync-key": SALESFORCE_KEY})
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"].startswith("text/xml")
    assert "<Ack>true</Ack>" in response["body"] and "notificationsResponse" in response["body"]
    published = world.captured()
    assert sorted(e["detail"]["source_event_id"] for e in published) == [
        "04l5g00000AbCdEAAX",
        "04l5g00000AbCdFAAX",
    ]


REJECTIONS: dict[str, tuple[str, Any, int, str]] = {
    "hubspot forged": (
        "hubspot",
        lambda: (HUBSPOT_BATCH, hubspot_headers(HUBSPOT_BATCH, secret="guess")),
        401,
        "signature_invalid",
    ),
    "hubspot stale": (
        "hubspot",
        lambda: (HUBSPOT_BATCH, hubspot_headers(HUBSPOT_BATCH, timestamp=now_ms() - 600_000)),
        400,
        "stale_timestamp",
    ),
    "hubspot future": (
        "hubspot",
        lambda: (HUBSPOT_BATCH, hubspot_headers(HUBSPOT_BATCH, timestamp=now_ms() + 600_000)),
        400,
        "stale_timestamp",
    ),
    "hubspot duplicated signature": (
        "hubspot",
        lambda: (
            HUBSPOT_BATCH,
            {
                **hubspot_headers(HUBSPOT_BATCH),
                "X-HubSpot-Signature-v3": [hubspot_headers(HUBSPOT_BATCH)["X-HubSpot-Signature-v3"]] * 2,
            },
        ),
        401,
        "signature_invalid",
    ),
    "hubspot unknown portal": (
        "hubspot",
        lambda: (
            body := HUBSPOT_BATCH.replace(b'"portalId": 62515', b'"portalId": 1', 1),
            hubspot_headers(body),
        ),
        403,
        "unknown_tenant",
    ),
    "hubspot malformed": ("hubspot", lambda: (b"[{", hubspot_headers(b"[{")), 400, "malformed"),
    "hubspot oversize": (
        "hubspot",
        lambda: (body := HUBSPOT_BATCH + b" " * 70_000, hubspot_headers(body)),
        413,
        "payload_too_large",
    ),
    "jira forged": (
        "jira",
        lambda: (b := jira_body(), jira_headers(b, secret="guess")),
        401,
        "signature_invalid",
    ),
    "jira one byte changed": (
        "jira",
        lambda: (jira_body().replace(b"CONTOSO-12", b"CONTOSO-13"), jira_headers(jira_body())),
        401,
        "signature_invalid",
    ),
    "jira missing signature": (
        "jira",
        lambda: (jira_body(), {"X-Atlassian-Webhook-Identifier": "x"}),
        401,
        "signature_invalid",
    ),
    "jira stale": (
        "jira",
        lambda: (b := jira_body(now_ms() - 600_000), jira_headers(b)),
        400,
        "stale_timestamp",
    ),
    "jira unknown site": (
        "jira",
        lambda: (b := jira_body(site="evil.atlassian.net"), jira_headers(b)),
        403,
        "unknown_tenant",
    ),
    "dataverse wrong key": (
        "dataverse",
        lambda: (dataverse_body(), {"x-pssync-key": "guess"}),
        401,
        "signature_invalid",
    ),
    "dataverse missing key": ("dataverse", lambda: (dataverse_body(), {}), 401, "signature_invalid"),
    "dataverse unknown org": (
        "dataverse",
        lambda: (dataverse_body("11111111-2222-3333-4444-555555555555"), {"x-pssync-key": DATAVERSE_KEY}),
        403,
        "unknown_tenant",
    ),
    "dataverse malformed": ("dataverse", lambda: (b"{", {"x-pssync-key": DATAVERSE_KEY}), 400, "malformed"),
    "salesforce wrong key": (
        "salesforce",
        lambda: (SALESFORCE_MESSAGE, {"x-pssync-key": "guess"}),
        401,
        "signature_invalid",
    ),
    "salesforce unknown org": (
        "salesforce",
        lambda: (
            SALESFORCE_MESSAGE.replace(b"00D5g000004ABCDEAA", b"00D000000000001AAA"),
            {"x-pssync-key": SALESFORCE_KEY},
        ),
        403,
        "unknown_tenant",
    ),
    "salesforce DOCTYPE": (
        "salesforce",
        lambda: (b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', {"x-pssync-key": SALESFORCE_KEY}),
        400,
        "malformed",
    ),
    "hubspot as text/plain": (
        "hubspot",
        lambda: (HUBSPOT_BATCH, {**hubspot_headers(HUBSPOT_BATCH), "Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    ),
    "salesforce SOAP as JSON": (
        "salesforce",
        lambda: (SALESFORCE_MESSAGE, {"x-pssync-key": SALESFORCE_KEY, "Content-Type": "application/json"}),
        415,
        "unsupported_media_type",
    ),
    "jira JSON in latin-1": (
        "jira",
        lambda: (
            jira_body(),
            {**jira_headers(jira_body()), "Content-Type": "application/json; charset=iso-8859-1"},
        ),
        415,
        "unsupported_media_type",
    ),
    "salesforce oversize": (
        "salesforce",
        lambda: (SALESFORCE_MESSAGE + b" " * 70_000, {"x-pssync-key": SALESFORCE_KEY}),
        413,
        "payload_too_large",
    ),
}


def test_refusals_get_their_status_and_make_no_aws_write(
    world: AwsWorld, crm: respx.MockRouter, writes: list[str]
) -> None:
    # One world for all cases (a moto world costs ~0.3 s to build); a refusal writes nothing, so the
    # cases cannot influence each other, and every mismatch is reported with its case name.
    mismatches = []
    for case, (source, build, status, code) in REJECTIONS.items():
        body, headers = build()
        writes.clear()
        response = invoke(source, body, headers)
        outcome = (response["statusCode"], json.loads(response["body"])["error"], list(writes))
        if outcome != (status, code, []):
            mismatches.append(f"{case}: got {outcome}, expected {(status, code, [])}")
    assert mismatches == []
    assert world.count_items("idempotency") == 0 and world.captured() == []


def test_a_deal_the_crm_cannot_give_fails_only_its_own_message_and_books_nothing(
    world: AwsWorld, crm: respx.MockRouter
) -> None:
    assert invoke("hubspot", HUBSPOT_BATCH, hubspot_headers(HUBSPOT_BATCH))["statusCode"] == 202
    signals = world.captured()
    crm.get(f"{HUBSPOT_API}/crm/v3/objects/deals/18472934002").mock(return_value=httpx.Response(404))
    assert resolve(signals) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}  # retried, then parked
    [booked] = world.captured()
    assert booked["detail"]["data"]["contract"]["contract_id"] == "C-2026-0412"
    crm.get(f"{HUBSPOT_API}/crm/v3/objects/deals/18472934002").mock(
        side_effect=[httpx.Response(503), httpx.Response(503), httpx.Response(503)]
    )
    with pytest.raises(BatchProcessingError):  # every record failed: the invocation fails, SQS retries
        resolve(signals[1:])
    assert world.captured() == []
    assert world.count_items("idempotency") == 3  # two signals, one booking: a failure leaves no record


def test_a_signal_failing_its_last_receive_is_parked_with_its_cause_for_dlq_show(
    world: AwsWorld, crm: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It used to reach the DLQ by redrive with only its event id and type: no cause, no step, no record."""
    dlq_url = world.clients["sqs"].create_queue(
        QueueName="ClosedWonInboxDlq", tags={"pssync:replay": "redrive", "pssync:replay-target": "inbox"}
    )["QueueUrl"]
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", dlq_url)
    monkeypatch.setenv("MAX_RECEIVE_COUNT", "5")
    assert invoke("hubspot", HUBSPOT_BATCH, hubspot_headers(HUBSPOT_BATCH))["statusCode"] == 202
    signals = world.captured()
    no_terms = hubspot_deal("18472934002", "C-2026-0413")
    del no_terms["properties"]["pssync_contract_json"]
    crm.get(f"{HUBSPOT_API}/crm/v3/objects/deals/18472934002").mock(
        return_value=httpx.Response(200, json=no_terms)
    )
    assert resolve(signals, receive_count=4) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert world.clients["sqs"].receive_message(QueueUrl=dlq_url).get("Messages") is None
    assert resolve(signals[1:], receive_count=5) == {"batchItemFailures": []}  # parked, not redriven
    ops = DeadLetterOps(world.clients["sqs"], world.clients["events"])
    [shown] = ops.peek(ops.store("ClosedWonInboxDlq"))
    assert shown.event_type == "ClosedWonSignalled" and shown.contract_id == "hubspot-deal 18472934002"
    assert shown.failed_step == "resolve_closed_won"
    assert shown.error is not None and shown.error.startswith("ContractMappingError (contract_mapping): ")
    assert "has no contract terms JSON" in shown.error and "Traceback" not in shown.error
