"""HubSpot: signature vectors, every rejection (writing nothing), closed-won fan-out, dedupe, own writes."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

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
from pssync.model.events import ClosedWonSignalled, canonical_event_id, closed_won_signal_id
from pssync.ports import SigningSecrets
from pssync.sources.crm_terms import ContractMappingError, RecordNotFound
from pssync.sources.hubspot import HubSpotScheme, legacy_signature, signed_uri, v3_signature
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


def test_batch_answers_with_one_signal_per_closed_won_deal_and_reads_nothing_from_the_crm() -> None:
    harness = Harness()
    result = harness.send("hubspot", hubspot_request(BATCH))
    assert result.delivery_id == hashlib.sha256(BATCH).hexdigest()
    first, second = harness.publisher.published
    assert isinstance(first, ClosedWonSignalled) and isinstance(second, ClosedWonSignalled)
    assert harness.fetcher.calls == []  # the webhook answers without waiting for HubSpot's API
    assert first.source_event_id == "62515-2870341-1480912001-1795169695800"
    assert first.event_id == closed_won_signal_id("hubspot", first.source_event_id)
    assert (
        first.correlation_id == first.booking_event_id == canonical_event_id("hubspot", first.source_event_id)
    )
    assert first.source_version == "1795169695800"
    assert first.occurred_at == first.data.closed_won_at == datetime(2026, 11, 20, 10, 14, 55, 800000, UTC)
    assert (first.data.record_type, first.data.record_id) == ("hubspot-deal", "18472934001")
    assert first.received_at == CLOCK.now()
    assert first.lineage is not None and first.lineage.delivery_id == result.delivery_id
    assert second.source_event_id == "62515-2870341-1480912003-1795169697900"
    assert [e.event_id for e in result.events] == [first.event_id, second.event_id]
    assert [e.event_type for e in result.events] == ["ClosedWonSignalled", "ClosedWonSignalled"]


def test_each_signal_is_resolved_into_one_contract_booked_from_the_deal() -> None:
    harness = Harness()
    harness.send("hubspot", hubspot_request(BATCH))
    resolutions = harness.resolve_signals() + harness.resolve_signals()  # a redelivery books nothing more
    # The own write (deal ...003, sourceId = our app) and the non-closed-won events are never read.
    assert harness.fetcher.calls == [("deals", "18472934001"), ("deals", "18472934002")] * 2
    assert [r.published for r in resolutions] == [True, True, False, False]
    assert {r.outcome for r in resolutions} == {"booked"}
    signal, _ = harness.signals()
    first, second = harness.bookings()
    assert first.event_id == first.correlation_id == signal.booking_event_id == resolutions[0].event_id
    assert first.causation_id == signal.event_id and first.lineage == signal.lineage
    assert first.source_event_id == signal.source_event_id and first.source_version == "1795169695800"
    assert first.occurred_at == first.data.closed_won_at == signal.occurred_at
    assert first.received_at == CLOCK.now()
    assert first.data.contract.contract_id == "C-2026-0412"
    assert first.data.contract.crm_opportunity_id == "18472934001"
    assert first.data.contract.customer.external_ids["hubspot"] == "9120331"
    assert first.data.contract.transaction_price.amount == 396000
    assert second.data.contract.contract_id == "C-2026-0413"


def test_previous_client_secret_still_verifies_during_rotation() -> None:
    harness = Harness()
    result = harness.send("hubspot", hubspot_request(BATCH, secret=HUBSPOT_PREVIOUS))
    assert len(result.events) == 2


def test_a_delivery_with_only_unmapped_events_is_acknowledged_without_writes() -> None:
    harness = Harness()
    owner_change = {**json.loads(BATCH)[1], "propertyName": "hubspot_owner_id", "propertyValue": "4811187"}
    result = harness.send("hubspot", hubspot_request(json.dumps([owner_change]).encode()))
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


def test_a_deal_the_crm_does_not_know_fails_its_own_resolution_only() -> None:
    harness = Harness()
    del harness.fetcher.records[("deals", "18472934002")]
    assert len(harness.send("hubspot", hubspot_request(BATCH)).events) == 2  # HubSpot is answered 2xx
    first, second = harness.signals()
    assert harness.resolver.resolve(first).published
    with pytest.raises(RecordNotFound):  # the queue retries it, then parks it in the DLQ for replay
        harness.resolver.resolve(second)
    harness.fetcher.records[("deals", "18472934002")] = hubspot_deal("18472934002", "C-2026-0413")
    assert harness.resolver.resolve(second).published  # replayed once the deal exists
    assert [b.data.contract.contract_id for b in harness.bookings()] == ["C-2026-0412", "C-2026-0413"]


def test_a_deal_reopened_before_its_signal_is_resolved_is_not_booked() -> None:
    harness = Harness()
    harness.send("hubspot", hubspot_request(BATCH))
    harness.fetcher.records[("deals", "18472934002")]["properties"]["dealstage"] = "contractsent"
    resolutions = harness.resolve_signals()  # e.g. a DLQ replay days later
    assert [(r.published, r.dropped) for r in resolutions] == [(True, False), (False, True)]
    assert [b.data.contract.contract_id for b in harness.bookings()] == ["C-2026-0412"]


def test_a_crm_outage_fails_resolution_without_publishing_a_booking() -> None:
    harness = Harness()
    harness.send("hubspot", hubspot_request(BATCH))
    harness.fetcher.fail_with = TransientDownstreamError("HubSpot 503")
    with pytest.raises(TransientDownstreamError):
        harness.resolve_signals()
    assert harness.bookings() == [] and not any(k.endswith(":booked") for k in harness.dedupe.records)


def test_deal_amount_out_of_step_with_the_sow_terms_is_refused_at_resolution() -> None:
    harness = Harness()
    harness.send("hubspot", hubspot_request(BATCH))
    harness.fetcher.records[("deals", "18472934001")] = hubspot_deal("18472934001", "C-2026-0412", "400000")
    with pytest.raises(ContractMappingError, match="differs from the contract's transaction price"):
        harness.resolver.resolve(harness.signals()[0])
    assert harness.bookings() == []


def test_without_crm_api_a_signal_fails_resolution_rather_than_being_dropped() -> None:
    harness = Harness(hubspot={"crm_api": None})
    harness.send("hubspot", hubspot_request(BATCH))
    with pytest.raises(TransientDownstreamError, match="no crm_api"):
        harness.resolve_signals()
    assert harness.bookings() == []


@pytest.mark.parametrize("index", [0, 1, 4], ids=["closed-won change", "amount change", "deal creation"])
def test_a_deal_event_without_its_object_id_refuses_the_batch(index: int) -> None:
    """Found by the scorecard (R4): a closed-won dealstage change without `objectId` was skipped silently
    and the rest of the batch accepted (202): a booking lost without a trace. HubSpot names the object in
    every deal event, so one without it is not HubSpot's shape: 422 for the whole batch, nothing written."""
    events = json.loads(BATCH)
    assert events[index]["subscriptionType"].startswith("deal.")
    events[index].pop("objectId")
    body = json.dumps(events).encode()
    assert_refused_without_writes("hubspot", lambda: hubspot_request(body), UnprocessableDelivery)
