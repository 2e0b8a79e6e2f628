"""Data ownership: a source states only the facts its system owns (CRM: bookings and amendments; PSA:
time, expenses, milestones; ERP: invoices and payments). Anything else is 422 with nothing written."""

from __future__ import annotations

import json

import pytest

from pssync.errors import UnprocessableDelivery
from pssync.model.events import InvoicePosted
from pssync.model.sources import SourceConfig
from tests.unit.ingest.sources_kit import SOURCES, Harness, standard_request

INVOICE = json.dumps(
    {
        "type": "invoice.posted",
        "timestamp": "2026-11-20T10:15:00Z",
        "data": {
            "invoice_id": "INV-1001",
            "contract_id": "C-2026-0412",
            "customer_id": "CUST-7",
            "invoice_date": "2026-11-20",
            "lines": [
                {"description": "Discovery milestone", "amount": {"amount": "1000.00", "currency": "EUR"}}
            ],
            "total": {"amount": "1000.00", "currency": "EUR"},
        },
    }
).encode()


def _standard_source_of(system: str, **fields: object) -> Harness:
    return Harness(standard={"system": system, **fields})


def test_an_invoice_from_the_erp_is_accepted() -> None:
    harness = _standard_source_of("netsuite")
    harness.send("standard", standard_request(INVOICE))
    [event] = harness.publisher.published
    assert isinstance(event, InvoicePosted)


def test_an_invoice_stated_by_a_crm_source_is_refused_and_nothing_is_written() -> None:
    harness = _standard_source_of("salesforce")
    with pytest.raises(UnprocessableDelivery, match="does not own InvoicePosted: the ERP") as refused:
        harness.send("standard", standard_request(INVOICE))
    assert refused.value.code == "not_owner" and refused.value.status == 422
    assert harness.nothing_written()


def test_a_source_may_be_given_its_own_list() -> None:
    harness = _standard_source_of("salesforce", owns=["InvoicePosted"])
    harness.send("standard", standard_request(INVOICE))
    assert len(harness.publisher.published) == 1


def test_an_unknown_event_type_in_owns_fails_at_configuration() -> None:
    with pytest.raises(ValueError, match="unknown event types"):
        SourceConfig.model_validate({**SOURCES["standard"].model_dump(), "owns": ["InvoicePaid"]})
