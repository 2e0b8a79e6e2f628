"""HubSpot: signature vectors, every rejection (writing nothing), closed-won fan-out, dedupe, own writes."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from pssync.connectors.crm import ContractMappingError, RecordNotFound
from pssync.errors import (
    DeliveryInProgress,
    MalformedDelivery,
    PayloadTooLarge,
    SignatureInvalid,
    StaleDelivery,
    TransientDownstreamError,
    UnknownTenant,
    UnprocessableDelivery,
)
from pssync.ingest.schemes.hubspot import HubSpotScheme, legacy_signature, signed_uri, v3_signature
from pssync.ingest.verification import SigningSecrets
from pssync.model.events import ContractBooked, canonical_event_id
from tests.unit.ingest.sources_kit import (
    CLOCK,
    HUBSPOT_PREVIOUS,
    HUBSPOT_URL,
    NOW_MS,
    SOURCES,
    Harness,
    assert_refused_without_writes,
    hubspot_deal,
    hubspot_request,
    request,
    sample,
)

PUBLISHED_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
VECTOR_BODY = b'[{"eventId":1,"portalId":62515}]'
BATCH = sample("hubspot/deal-closed-won-batch.json")


# --- golden vectors ------------------------------------------------------------------------------
# Computed once, independently of the scheme module, and pinned as literals:
#   hashlib.sha256(secret.encode() + VECTOR_BODY).hexdigest()                                  (v1)
#   hashlib.sha256((secret + "POST" + HUBSPOT_URL).encode() + VECTOR_BODY).hexdigest()         (v2)
#   base64(hmac.new(secret, b"POST" + url.encode() + VECTOR_BODY + b"1795169730000", sha256))  (v3)


def test_published_v2_vector() -> None:
    signature = legacy_signature(PUBLISHED_SECRET, "v2", "GET", "https://www.example.com/webhook_uri", b"")
    assert signature == b"eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"


def test_published_v2_vector_verifies_through_the_scheme_only_when_legacy_is_enabled() -> None:
    raw = request(
        b"",
        {
            "X-HubSpot-Signature": "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e",
            "X-HubSpot-Signature-Version": "v2",
        },
        url="https://www.example.com/webhook_uri",
        method="GET",
    )
    legacy = SOURCES["hubspot"].model_copy(update={"legacy_signatures": True, "public_url": None})
    delivery = HubSpotScheme().verify(raw, legacy, SigningSecrets(PUBLISHED_SECRET), CLOCK.now())
    assert delivery.delivery_id == hashlib.sha256(b"").hexdigest() and delivery.sent_at is None
    strict = legacy.model_copy(update={"legacy_signatures": False})
    with pytest.raises(SignatureInvalid, match="X-HubSpot-Signature-v3"):
        HubSpotScheme().verify(raw, strict, SigningSecrets(PUBLISHED_SECRET), CLOCK.now())


def test_v1_and_v2_vectors_over_a_body() -> None:
    assert (
        legacy_signature(PUBLISHED_SECRET, "v1", "POST", HUBSPOT_URL, VECTOR_BODY)
        == b"9d18dd3aaf16472a582061e41be9c8e366997a9397282870a066d46a1f597109"
    )
    assert (
        legacy_signature(PUBLISHED_SECRET, "v2", "POST", HUBSPOT_URL, VECTOR_BODY)
        == b"d5f4beadd8588068238497280a5cf0bc0e647d099285ba7462a82f596861fda7"
    )


def test_v3_vector() -> None:
    signature = v3_signature(PUBLISHED_SECRET, "POST", HUBSPOT_URL, VECTOR_BODY, "1795169730000")
    assert signature == b"4kb0pBhdJbyuejCdo4qlhdWJcWx7Xh2Ib++krwln6cc="


def test_v3_uri_is_the_public_url_with_our_query_string_and_hubspot_decoding() -> None:
    raw = request(VECTOR_BODY, {}, url="/webhooks/hubspot?portal=62515&tag=a%3Ab")
    uri = signed_uri(raw, SOURCES["hubspot"])
    assert uri == HUBSPOT_URL + "?portal=62515&tag=a:b"
    assert (
        v3_signature(PUBLISHED_SECRET, "POST", uri, VECTOR_BODY, "1795169730000")
        == b"Nc6CwV2YVyXKlZOnu9sxLREPKtF0sRvrzluOCcTjYLk="
    )


# --- accepted deliveries -------------------------------------------------------------------------


def test_batch_fans_out_one_contract_booked_per_closed_won_deal_and_drops_the_rest() -> None:
    harness = Harness()
    result = harness.send("hubspot", hubspot_request(BATCH))
    assert result.delivery_id == hashlib.sha256(BATCH).hexdigest()
    first, second = harness.publisher.published
    assert isinstance(first, ContractBooked) and isinstance(second, ContractBooked)
    assert first.source_event_id == "62515-2870341-1480912001-1795169695800"
    assert first.event_id == first.correlation_id == canonical_event_id("hubspot", first.source_event_id)
    assert first.source_version == "1795169695800"
    assert first.occurred_at == first.data.closed_won_at == datetime(2026, 11, 20, 10, 14, 55, 800000, UTC)
    assert first.received_at == CLOCK.now()
    assert first.data.contract.contract_id == "C-2026-0412"
    assert first.data.contract.crm_opportunity_id == "18472934001"
    assert first.data.contract.customer.external_ids["hubspot"] == "9120331"
    assert first.data.contract.transaction_price.amount == 396000
    assert second.source_event_id == "62515-2870341-1480912003-1795169697900"
    assert second.data.contract.contract_id == "C-2026-0413"
    # The own write (deal ...003, sourceId = our app) and the non-closed-won events fetch nothing.
    assert harness.fetcher.calls == [("deals", "18472934001"), ("deals", "18472934002")]
    assert [e.event_id for e in result.events] == [first.event_id, second.event_id]
    assert [e.event_type for e in result.events] == ["ContractBooked", "ContractBooked"]


def test_previous_client_secret_still_verifies_during_rotation() -> None:
    harness = Harness()
    result = harness.send("hubspot", hubspot_request(BATCH, secret=HUBSPOT_PREVIOUS))
    assert len(result.events) == 2


def test_a_delivery_with_only_unmapped_events_is_acknowledged_without_writes() -> None:
    harness = Harness()
    only_amount = json.dumps([json.loads(BATCH)[1]]).encode()
    result = harness.send("hubspot", hubspot_request(only_amount))
    assert result.events == [] and harness.nothing_written()


def test_retry_with_a_new_attempt_number_is_a_duplicate_not_a_conflict() -> None:
    harness = Harness()
    first = harness.send("hubspot", hubspot_request(BATCH))
    retried = json.loads(BATCH)
    for event in retried:
        event["attemptNumber"] = 3
    again = harness.send("hubspot", hubspot_request(json.dumps(retried).encode()))
    assert again.all_duplicates
    assert [e.event_id for e in again.events] == [e.event_id for e in first.events]
    assert len(harness.publisher.published) == 2


def test_same_event_ids_with_different_content_are_refused() -> None:
    harness = Harness()
    harness.send("hubspot", hubspot_request(BATCH))
    changed = json.loads(BATCH)
    changed[0]["sourceId"] = "userId:999"
    with pytest.raises(UnprocessableDelivery, match="different body"):
        harness.send("hubspot", hubspot_request(json.dumps(changed).encode()))


def test_concurrent_duplicate_batches_publish_each_event_once() -> None:
    harness = Harness()

    def attempt(_: int) -> str:
        try:
            return "dup" if harness.send("hubspot", hubspot_request(BATCH)).all_duplicates else "new"
        except DeliveryInProgress:
            return "in-progress"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(16)))
    assert "new" in outcomes
    assert sorted(e.source_event_id for e in harness.publisher.published) == [
        "62515-2870341-1480912001-1795169695800",
        "62515-2870341-1480912003-1795169697900",
    ]


# --- rejections: the right error, and nothing written --------------------------------------------


def _flip_one_byte(body: bytes) -> bytes:
    return body.replace(b"closedwon", b"closedwoN", 1)


CASES = {
    "wrong secret": (lambda: hubspot_request(BATCH, secret="not-the-client-secret"), SignatureInvalid),
    "one byte changed": (
        lambda: _swap_body(hubspot_request(BATCH), _flip_one_byte(BATCH)),
        SignatureInvalid,
    ),
    "signed for another URI": (
        lambda: hubspot_request(BATCH, signed_uri="/webhooks/hubspot"),
        SignatureInvalid,
    ),
    "stale timestamp": (lambda: hubspot_request(BATCH, timestamp_ms=NOW_MS - 301_000), StaleDelivery),
    "future timestamp": (lambda: hubspot_request(BATCH, timestamp_ms=NOW_MS + 301_000), StaleDelivery),
    "timestamp in seconds": (
        lambda: hubspot_request(BATCH, timestamp_ms=NOW_MS // 1000),
        StaleDelivery,
    ),
    "timestamp not a number": (
        lambda: hubspot_request(BATCH, **{"X-HubSpot-Request-Timestamp": "yesterday"}),
        MalformedDelivery,
    ),
    "signature missing": (lambda: hubspot_request(BATCH, **{"X-HubSpot-Signature-v3": []}), SignatureInvalid),
    "timestamp missing": (
        lambda: hubspot_request(BATCH, **{"X-HubSpot-Request-Timestamp": []}),
        SignatureInvalid,
    ),
    "signature duplicated": (
        lambda: hubspot_request(
            BATCH,
            **{
                "X-HubSpot-Signature-v3": [
                    "AAAA",
                    hubspot_request(BATCH).single_header("x-hubspot-signature-v3"),
                ]
            },
        ),
        SignatureInvalid,
    ),
    "legacy signature while legacy is off": (
        lambda: request(
            BATCH,
            {
                "X-HubSpot-Signature": legacy_signature(
                    "b3c1f0e2-hubspot-client-secret-current", "v1", "POST", HUBSPOT_URL, BATCH
                ).decode(),
                "X-HubSpot-Signature-Version": "v1",
            },
        ),
        SignatureInvalid,
    ),
    "unknown portal": (
        lambda: hubspot_request(BATCH.replace(b'"portalId": 62515', b'"portalId": 99999', 1)),
        UnknownTenant,
    ),
    "not JSON": (lambda: hubspot_request(b"[{not json"), MalformedDelivery),
    "an object, not an array": (lambda: hubspot_request(b'{"eventId": 1}'), MalformedDelivery),
    "empty array": (lambda: hubspot_request(b"[]"), MalformedDelivery),
    "event missing portalId": (
        lambda: hubspot_request(
            b'[{"eventId": 1, "subscriptionId": 2, "occurredAt": 3, "subscriptionType": "x"}]'
        ),
        UnprocessableDelivery,
    ),
    "more than 100 events": (
        lambda: hubspot_request(json.dumps(json.loads(BATCH)[1:2] * 101).encode()),
        MalformedDelivery,
    ),
    "oversize": (lambda: hubspot_request(BATCH + b" " * 70_000), PayloadTooLarge),
}


def _swap_body(raw, body: bytes):  # type: ignore[no-untyped-def]
    return type(raw)(method=raw.method, url=raw.url, body=body, headers=raw.headers)


@pytest.mark.parametrize("case", CASES)
def test_rejections_have_their_status_and_write_nothing(case: str) -> None:
    assert_refused_without_writes("hubspot", *CASES[case])


def test_legacy_v1_delivery_is_accepted_when_enabled() -> None:
    harness = Harness(hubspot={"legacy_signatures": True})
    raw = request(
        BATCH,
        {
            "X-HubSpot-Signature": legacy_signature(
                "b3c1f0e2-hubspot-client-secret-current", "v1", "POST", HUBSPOT_URL, BATCH
            ).decode(),
            "X-HubSpot-Signature-Version": "v1",
        },
    )
    assert len(harness.send("hubspot", raw).events) == 2


def test_a_deal_the_crm_does_not_know_refuses_the_batch_with_422() -> None:
    harness = Harness()
    del harness.fetcher.records[("deals", "18472934002")]
    with pytest.raises(RecordNotFound) as raised:
        harness.send("hubspot", hubspot_request(BATCH))
    assert raised.value.status == 422 and harness.nothing_written()


def test_crm_outage_is_transient_and_writes_nothing() -> None:
    harness = Harness()
    harness.fetcher.fail_with = TransientDownstreamError("HubSpot 503")
    with pytest.raises(TransientDownstreamError):
        harness.send("hubspot", hubspot_request(BATCH))
    assert harness.nothing_written()


def test_deal_amount_out_of_step_with_the_sow_terms_is_422() -> None:
    harness = Harness()
    harness.fetcher.records[("deals", "18472934001")] = hubspot_deal("18472934001", "C-2026-0412", "400000")
    with pytest.raises(ContractMappingError, match="differs from the contract's transaction price"):
        harness.send("hubspot", hubspot_request(BATCH))
    assert harness.nothing_written()


def test_without_crm_api_a_closed_won_deal_is_503_not_a_silent_drop() -> None:
    harness = Harness(hubspot={"crm_api": None})
    with pytest.raises(TransientDownstreamError, match="no crm_api"):
        harness.send("hubspot", hubspot_request(BATCH))
    assert harness.nothing_written()
