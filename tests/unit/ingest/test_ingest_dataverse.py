"""Dataverse: header key, organisation allowlist, freshness, RemoteExecutionContext mapping, dedupe.

There is no signature, so "one byte changed" cannot be detected here by design: the key and TLS
authenticate the caller, not the body. That is why the allowlist and the RequestId dedupe matter.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from pssync.errors import (
    DeliveryInProgress,
    MalformedDelivery,
    PayloadTooLarge,
    SignatureInvalid,
    StaleDelivery,
    UnknownTenant,
)
from pssync.model.events import ContractBooked, InvoicePosted, canonical_event_id
from pssync.money import Money
from tests.unit.ingest.sources_kit import (
    DATAVERSE_KEY,
    DATAVERSE_OPPORTUNITY,
    DATAVERSE_PREVIOUS,
    Harness,
    assert_refused_without_writes,
    dataverse_request,
    request,
    sample,
    with_json,
)

UPDATE_WON = sample("dataverse/opportunity-update-won.json")
WIN = sample("dataverse/opportunity-win.json")
INVOICE = sample("dataverse/invoice-create.json")
ACCOUNT = "3d5e7f90-1a2b-4c3d-8e9f-0a1b2c3d4e5f"


def test_update_to_won_maps_the_post_image_without_a_fetch() -> None:
    harness = Harness()
    result = harness.send("dataverse", dataverse_request(UPDATE_WON))
    [event] = harness.publisher.published
    assert isinstance(event, ContractBooked)
    request_id = "6c1d2e3f-4a5b-4c6d-9e7f-8a9b0c1d2e3f"
    assert result.delivery_id == event.source_event_id == request_id
    assert event.event_id == event.correlation_id == canonical_event_id("dataverse", request_id)
    assert event.source_version == "2026-11-20T10:15:00.000Z"
    assert event.occurred_at == event.data.closed_won_at == datetime(2026, 11, 20, 10, 15, tzinfo=UTC)
    assert event.data.contract.crm_opportunity_id == DATAVERSE_OPPORTUNITY
    assert event.data.contract.customer.external_ids["dynamics365"] == ACCOUNT
    assert event.data.contract.transaction_price == Money.of("396000.00", "EUR")
    assert harness.fetcher.calls == []


def test_thin_win_message_is_signalled_then_resolved_through_the_web_api() -> None:
    harness = Harness()
    harness.send("dataverse", dataverse_request(WIN))
    [signal] = harness.signals()
    assert harness.fetcher.calls == []
    assert (signal.data.record_type, signal.data.record_id) == (
        "dataverse-opportunity",
        DATAVERSE_OPPORTUNITY,
    )
    harness.resolve_signals()
    [event] = harness.bookings()
    assert harness.fetcher.calls == [("opportunity", DATAVERSE_OPPORTUNITY)]
    assert event.source_event_id == signal.source_event_id == "7d2e3f40-5b6c-4d7e-8f90-9b0c1d2e3f40"
    assert event.source_version == signal.source_version and event.causation_id == signal.event_id
    assert event.data.contract.customer.external_ids["dynamics365"] == ACCOUNT


def test_a_thin_win_reopened_before_it_is_resolved_is_not_booked() -> None:
    harness = Harness()
    harness.send("dataverse", dataverse_request(WIN))
    harness.fetcher.records[("opportunity", DATAVERSE_OPPORTUNITY)]["statecode"] = 0  # open again
    [resolution] = harness.resolve_signals()
    assert resolution.dropped and harness.bookings() == []


def test_invoice_create_is_invoice_posted_with_exact_amounts() -> None:
    harness = Harness()
    harness.send("dataverse", dataverse_request(INVOICE))
    [event] = harness.publisher.published
    assert isinstance(event, InvoicePosted)
    data = event.data
    assert data.invoice_id == "b7c8d9e0-f1a2-4b3c-8d4e-5f6a7b8c9d0e"
    assert data.invoice_number == "INV-01042-Q7R2S9" and data.contract_id == "C-2026-0412"
    assert data.customer_id == ACCOUNT
    assert data.invoice_date == date(2026, 11, 20) and data.due_date == date(2026, 12, 20)
    assert data.total == Money.of("109480.00", "EUR") and data.tax == Money.of("17480.00", "EUR")
    [line] = data.lines
    assert line.amount.amount == Decimal("92000.00") and line.description == "Contoso SOW 3: M1 Discovery"
    assert event.source_version == "2026-11-20T10:15:00.000Z"


def test_an_open_opportunity_update_is_acknowledged_without_an_event() -> None:
    document = json.loads(UPDATE_WON)
    document["InputParameters"][0]["value"]["Attributes"][0]["value"]["Value"] = 0
    document["PostEntityImages"][0]["value"]["Attributes"][1]["value"]["Value"] = 0
    harness = Harness()
    assert harness.send("dataverse", dataverse_request(json.dumps(document).encode())).events == []
    assert harness.nothing_written()


def test_request_id_falls_back_to_the_x_request_id_header() -> None:
    body = with_json(INVOICE, RequestId=None)
    headers = {"x-pssync-key": DATAVERSE_KEY, "x-request-id": "hdr-1", "Content-Type": "application/json"}
    raw = request(body, headers)
    harness = Harness()
    assert harness.send("dataverse", raw).delivery_id == "hdr-1"


def test_previous_key_and_duplicates() -> None:
    harness = Harness()
    harness.send("dataverse", dataverse_request(INVOICE, key=DATAVERSE_PREVIOUS))
    assert harness.send("dataverse", dataverse_request(INVOICE)).all_duplicates

    def attempt(_: int) -> bool:
        try:
            return harness.send("dataverse", dataverse_request(INVOICE)).all_duplicates
        except DeliveryInProgress:
            return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(attempt, range(12)))
    assert len(harness.publisher.published) == 1


CASES = {
    "wrong key": (lambda: dataverse_request(INVOICE, key="guess"), SignatureInvalid),
    "key missing": (lambda: dataverse_request(INVOICE, key=[]), SignatureInvalid),
    "key duplicated": (
        lambda: dataverse_request(INVOICE, key=["dataverse-service-endpoint-key-current"] * 2),
        SignatureInvalid,
    ),
    "unknown organisation": (
        lambda: dataverse_request(with_json(INVOICE, OrganizationId="11111111-2222-3333-4444-555555555555")),
        UnknownTenant,
    ),
    "no organisation": (
        lambda: dataverse_request(with_json(INVOICE, OrganizationId=None)),
        MalformedDelivery,
    ),
    "stale OperationCreatedOn": (
        lambda: dataverse_request(with_json(INVOICE, OperationCreatedOn="/Date(1795169399000)/")),
        StaleDelivery,
    ),
    "future OperationCreatedOn": (
        lambda: dataverse_request(with_json(INVOICE, OperationCreatedOn="/Date(1795170031000)/")),
        StaleDelivery,
    ),
    "no request id at all": (
        lambda: dataverse_request(with_json(INVOICE, RequestId=None)),
        MalformedDelivery,
    ),
    "not JSON": (lambda: dataverse_request(b"{nope"), MalformedDelivery),
    "an array": (lambda: dataverse_request(b"[]"), MalformedDelivery),
    "oversize": (lambda: dataverse_request(INVOICE + b" " * 70_000), PayloadTooLarge),
}


@pytest.mark.parametrize("case", CASES)
def test_rejections_have_their_status_and_write_nothing(case: str) -> None:
    assert_refused_without_writes("dataverse", *CASES[case])


@pytest.mark.parametrize("value", [5, 1795169700000, True, [], {}, ""], ids=repr)
def test_an_operation_created_on_that_is_not_a_date_is_400_not_skipped(value: object) -> None:
    """Found by the scorecard (R4): a present OperationCreatedOn that is not a date string (a number, a
    boolean, an empty string) was treated as absent, so the freshness check was skipped and the invoice
    booked (202). Absent stays allowed (the field is optional); present must be a date."""
    body = with_json(INVOICE, OperationCreatedOn=value)
    assert_refused_without_writes("dataverse", lambda: dataverse_request(body), MalformedDelivery)


def test_an_absent_operation_created_on_is_still_accepted() -> None:
    document = json.loads(INVOICE)
    document.pop("OperationCreatedOn")
    harness = Harness()
    harness.send("dataverse", dataverse_request(json.dumps(document).encode()))
    assert len(harness.publisher.published) == 1
