"""The ingest use case with fakes: what gets published, what is refused, and that refusals write nothing."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from pssync.errors import (
    DeliveryInProgress,
    MalformedDelivery,
    PayloadTooLarge,
    SignatureInvalid,
    TransientDownstreamError,
    UnknownSource,
    UnprocessableDelivery,
)
from pssync.ingest.service import IngestService
from pssync.local.webhook_client import standard_webhook_headers
from pssync.model.events import ContractBooked, SourceSystem, canonical_event_id
from pssync.model.sources import SignatureScheme, SourceConfig, SourceRegistry
from pssync.ports import SigningSecrets
from pssync.sources.request import RawRequest
from tests.conftest import WEBHOOK_SECRET
from tests.fakes import FakeSecrets, FixedClock, InMemoryDeduplicator, InMemoryRawPayloads, RecordingPublisher

CLOCK = FixedClock()


class Harness:
    def __init__(self, max_body_bytes: int = 256 * 1024) -> None:
        self.publisher = RecordingPublisher()
        self.dedupe = InMemoryDeduplicator()
        source = SourceConfig(
            name="crm",
            scheme=SignatureScheme.STANDARD_WEBHOOKS,
            system=SourceSystem.SALESFORCE,
            secret_id="sid",
            max_body_bytes=max_body_bytes,
        )
        self.raw = InMemoryRawPayloads()
        self.service = IngestService(
            SourceRegistry([source]),
            FakeSecrets({"sid": SigningSecrets(WEBHOOK_SECRET)}),
            self.publisher,
            self.dedupe,
            CLOCK,
            self.raw,
        )

    def send(self, body: bytes, delivery_id: str = "msg_1", source: str = "crm", **header_overrides: str):
        headers = standard_webhook_headers(
            WEBHOOK_SECRET, body, delivery_id=delivery_id, timestamp=int(CLOCK.now().timestamp())
        )
        headers.update(header_overrides)
        request = RawRequest(
            method="POST", url=f"/webhooks/{source}", body=body, headers={k: [v] for k, v in headers.items()}
        )
        return self.service.ingest(source, request)

    def nothing_written(self) -> bool:
        return not self.publisher.published and not self.dedupe.records and not self.raw.objects


def test_signed_closed_won_becomes_one_contract_booked_event(booked_body: bytes) -> None:
    harness = Harness()
    result = harness.send(booked_body)
    [event] = harness.publisher.published
    assert isinstance(event, ContractBooked)
    [accepted] = result.events
    assert accepted.event_id == event.event_id == canonical_event_id("crm", "msg_1")
    assert event.source_event_id == "msg_1"
    assert event.source_system is SourceSystem.SALESFORCE
    assert event.source_version == "2026-11-20T10:14:58.000Z"
    assert event.received_at == CLOCK.now()
    assert event.data.contract.transaction_price.amount == 396000
    assert not accepted.duplicate
    # Lineage: the event points at the raw delivery, kept byte for byte.
    assert event.lineage is not None and event.lineage.delivery_id == "msg_1"
    assert harness.raw.objects[f"raw/crm/{event.lineage.raw_sha256}"] == booked_body


def test_redelivery_publishes_nothing_more_and_returns_the_same_event_id(booked_body: bytes) -> None:
    harness = Harness()
    first = harness.send(booked_body)
    again = harness.send(booked_body)
    assert again.all_duplicates and again.events[0].event_id == first.events[0].event_id
    assert len(harness.publisher.published) == 1


def test_concurrent_duplicates_publish_once(booked_body: bytes) -> None:
    harness = Harness()

    def attempt(_: int) -> str:
        try:
            return "dup" if harness.send(booked_body).all_duplicates else "first"
        except DeliveryInProgress:
            return "in-progress"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(16)))
    assert outcomes.count("first") == 1
    assert len(harness.publisher.published) == 1


def test_reused_delivery_id_with_a_different_body_is_refused(booked_body: bytes) -> None:
    harness = Harness()
    harness.send(booked_body)
    changed = booked_body.replace(b"Contoso Retail GmbH", b"Contoso Retail AG")
    kept_before = dict(harness.raw.objects)
    with pytest.raises(UnprocessableDelivery, match="different body"):
        harness.send(changed)
    # The refused body is not archived: a refusal writes nothing (it was, 16 of 16 times, before).
    assert harness.raw.objects == kept_before and len(harness.publisher.published) == 1


def test_every_published_event_points_at_its_archived_raw_delivery(booked_body: bytes) -> None:
    harness = Harness()
    harness.send(booked_body)
    harness.send(booked_body)  # a redelivery: a duplicate, nothing archived or published again
    [event] = harness.publisher.published
    assert event.lineage is not None
    assert harness.raw.objects[event.lineage.raw_payload_ref.removeprefix("memory://")] == booked_body


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda h, b: h.send(b, source="nobody"), UnknownSource),
        (lambda h, b: h.send(b, **{"webhook-signature": "v1,AAAA"}), SignatureInvalid),
        (lambda h, b: h.send(b"{not json"), MalformedDelivery),
        (lambda h, b: h.send(b"[1, 2]"), MalformedDelivery),
        (
            lambda h, b: h.send(
                b'{"type": "contract.deleted", "timestamp": "2026-11-20T10:15:00Z", "data": {}}'
            ),
            UnprocessableDelivery,
        ),
    ],
)
def test_rejections_write_nothing(booked_body: bytes, mutate, error) -> None:  # type: ignore[no-untyped-def]
    harness = Harness()
    with pytest.raises(error):
        mutate(harness, booked_body)
    assert harness.nothing_written()


def test_oversize_body_is_413_before_any_work(booked_body: bytes) -> None:
    harness = Harness(max_body_bytes=1024)
    with pytest.raises(PayloadTooLarge):
        harness.send(booked_body)
    assert harness.nothing_written()


def test_schema_errors_name_the_field(booked_body: bytes) -> None:
    document = json.loads(booked_body)
    document["data"]["contract"]["transaction_price"]["amount"] = 396000.0
    harness = Harness()
    with pytest.raises(UnprocessableDelivery) as error:
        harness.send(json.dumps(document).encode())
    assert "data.contract.transaction_price.amount" in error.value.message
    assert "never floats" in error.value.message
    assert harness.nothing_written()


def test_publish_failure_leaves_no_idempotency_record_so_the_retry_goes_through(booked_body: bytes) -> None:
    harness = Harness()
    harness.publisher.fail_with = TransientDownstreamError("bus down")
    with pytest.raises(TransientDownstreamError):
        harness.send(booked_body)
    # A downstream fault is not bad input: the content-addressed raw copy may stay (the retry rewrites
    # the same object), but no dedupe record may remain, or the retry would be swallowed as a duplicate.
    assert not harness.publisher.published and not harness.dedupe.records
    harness.publisher.fail_with = None
    assert not harness.send(booked_body).all_duplicates
    assert len(harness.publisher.published) == 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"name": "hs", "scheme": "hubspot", "system": "hubspot", "secret_id": "s", "tenants": ["1"]},
            "public_url",
        ),
        ({"name": "jr", "scheme": "jira", "system": "jira", "secret_id": "s"}, "tenants"),
        ({"name": "sw", "scheme": "standard-webhooks", "system": "netsuite"}, "secret_id"),
    ],
)
def test_incomplete_source_configuration_fails_at_load_time(config: dict, message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        SourceConfig.model_validate(config)


def test_a_canonical_event_too_large_for_eventbridge_is_refused_before_any_write(booked_body: bytes) -> None:
    document = json.loads(booked_body)
    wbs = document["data"]["contract"]["project"]["wbs"]
    for n in range(2500):  # a legitimate-looking but enormous work breakdown
        wbs.append({"code": f"9.{n}", "name": "Work package " + "x" * 60, "obligation_id": "IMPL"})
    body = json.dumps(document).encode()
    harness = Harness(max_body_bytes=1024 * 1024)
    with pytest.raises(PayloadTooLarge, match="256 KB"):
        harness.send(body)
    assert harness.nothing_written()
