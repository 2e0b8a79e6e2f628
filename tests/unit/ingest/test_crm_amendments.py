"""Amendments from the CRMs themselves: a change on a won deal, read behind the queue and diffed against the
contract's head version, becomes a ContractAmended only when something contractual changed.

The contract's versions are recorded by the real workflow steps (record_contract_version,
guard_contract_version, record_amended_version) into the in-memory version store the resolver reads.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from pssync.ingest.crm_amendments import (
    CONTRACT_AGGREGATE,
    contractual_changes,
    effective_date_of,
)
from pssync.model import examples
from pssync.model.contract import ContractTerms
from pssync.model.events import ContractAmended, ContractBooked
from pssync.money import Money
from pssync.sources.crm_terms import ContractMappingError
from pssync.workflows.amendment import guard_contract_version, record_amended_version
from pssync.workflows.provision import CONTRACT, record_contract_version
from tests.unit.ingest.sources_kit import (
    CLOCK,
    DATAVERSE_OPPORTUNITY,
    Harness,
    dataverse_request,
    hubspot_request,
    salesforce_request,
    sample,
)

DEAL = "18472934001"
CONTRACT_ID = "C-2026-0412"
OPPORTUNITY = "0065g00000AbCdEAAX"
HUBSPOT_BATCH = json.loads(sample("hubspot/deal-closed-won-batch.json"))


def change_order(contract_id: str = CONTRACT_ID) -> ContractTerms:
    return examples.change_order_terms().model_copy(update={"contract_id": contract_id})


def hubspot_events(*changes: tuple[str, str, int], deal: str = DEAL) -> bytes:
    """Property changes of one deal: (property, value, occurredAt ms); event ids numbered from 1480913001."""
    template = {**HUBSPOT_BATCH[0], "objectId": int(deal)}
    return json.dumps(
        [
            {**template, "eventId": 1480913001 + n, "propertyName": p, "propertyValue": v, "occurredAt": at}
            for n, (p, v, at) in enumerate(changes)
        ]
    ).encode()


def booked_hubspot_deal() -> Harness:
    """Deal DEAL closed won, resolved into its booking, and the booking recorded as contract v1."""
    harness = Harness()
    harness.send("hubspot", hubspot_request(hubspot_events(("dealstage", "closedwon", 1795169695800))))
    harness.resolve_signals()
    [booking] = harness.bookings()
    record_contract_version(booking, harness.contracts, CLOCK.now())
    harness.publisher.published.clear()
    return harness


def amend_deal(harness: Harness, modified: str = "2026-12-01T09:30:00.125Z", **properties: Any) -> None:
    deal = harness.fetcher.records[("deals", DEAL)]["properties"]
    deal.update(
        {
            "amount": "426000.00",
            "pssync_contract_json": change_order().model_dump_json(),
            "hs_lastmodifieddate": modified,
            **properties,
        }
    )


def amendments(harness: Harness) -> list[ContractAmended]:
    return [e for e in harness.publisher.published if isinstance(e, ContractAmended)]


def record(harness: Harness, amendment: ContractAmended) -> str:
    """What propagate-amendment does first: the guard, then version N+1 (the guard's action returned)."""
    guard = guard_contract_version(amendment, harness.contracts)
    if guard.action == "apply":
        record_amended_version(amendment, harness.contracts, CLOCK.now())
    return guard.action


# --- what is contractual -------------------------------------------------------------------------


def test_the_aggregate_read_is_the_one_the_workflows_write() -> None:
    assert CONTRACT_AGGREGATE == CONTRACT


def test_identical_terms_have_no_contractual_change() -> None:
    terms = examples.transformation_programme()
    assert contractual_changes(terms, terms.model_copy()) == []


@pytest.mark.parametrize(
    "update",
    [
        {"title": "Contoso platform (renamed in the CRM)"},
        {"crm_opportunity_id": "18472934999"},
        {"msa_reference": "MSA-2026-001", "sow_reference": "SOW-3 rev B"},
    ],
)
def test_titles_record_ids_and_document_references_are_not_contractual(update: dict[str, Any]) -> None:
    terms = examples.transformation_programme()
    assert contractual_changes(terms, terms.model_copy(update=update)) == []


def test_the_customers_ids_in_other_systems_and_the_order_of_obligations_are_not_contractual() -> None:
    terms = examples.transformation_programme()
    customer = terms.customer.model_copy(update={"external_ids": {"hubspot": "9120331"}})
    reordered = terms.model_copy(
        update={
            "customer": customer,
            "obligations": list(reversed(terms.obligations)),
            "billing": list(reversed(terms.billing)),
        }
    )
    assert contractual_changes(terms, reordered) == []


@pytest.mark.parametrize(
    ("update", "aspects"),
    [
        ({"transaction_price": Money.of("400000.00", "EUR")}, ["price"]),
        ({"end_date": date(2028, 3, 31)}, ["dates"]),
        ({"signed_on": date(2026, 11, 21)}, ["dates"]),
    ],
)
def test_price_and_dates_are_contractual(update: dict[str, Any], aspects: list[str]) -> None:
    terms = examples.transformation_programme()
    assert contractual_changes(terms, terms.model_copy(update=update)) == aspects


def test_a_change_order_names_every_aspect_it_changes() -> None:
    before = examples.transformation_programme()
    assert contractual_changes(before, examples.change_order_terms()) == [
        "price",
        "obligations",
        "billing",
        "project",
    ]


def test_an_obligation_changed_in_place_is_contractual() -> None:
    terms = examples.transformation_programme()
    training = terms.obligations[1].model_copy(update={"description": "Key-user training, remote"})
    changed = terms.model_copy(update={"obligations": [terms.obligations[0], training, terms.obligations[2]]})
    assert contractual_changes(terms, changed) == ["obligations"]


def test_the_effective_date_is_the_change_date_never_before_the_amended_version() -> None:
    late_evening_in_utc = datetime(2027, 6, 10, 23, 30, tzinfo=UTC)
    assert effective_date_of(late_evening_in_utc, date(2027, 1, 4)) == date(2027, 6, 10)
    before_the_contract_starts = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert effective_date_of(before_the_contract_starts, date(2027, 1, 4)) == date(2027, 1, 4)


# --- HubSpot -------------------------------------------------------------------------------------


def test_a_deal_saved_closed_won_with_an_amount_is_one_closed_won_signal() -> None:
    harness = Harness()
    body = hubspot_events(("amount", "396000", 1795169695800), ("dealstage", "closedwon", 1795169695800))
    result = harness.send("hubspot", hubspot_request(body))
    [signal] = harness.signals()
    assert signal.data.kind == "closed_won" and signal.source_event_id.endswith("-1480913002-1795169695800")
    assert [e.event_id for e in result.events] == [signal.event_id]


def test_contract_property_changes_are_one_changed_signal_per_deal_and_the_owner_is_none() -> None:
    harness = Harness()
    body = hubspot_events(
        ("amount", "426000.00", 1796117400000),
        ("pssync_contract_json", "{...}", 1796117400125),
        ("hubspot_owner_id", "4811187", 1796117400300),
    )
    harness.send("hubspot", hubspot_request(body))
    [signal] = harness.signals()
    assert signal.data.kind == "changed" and signal.data.record_id == DEAL
    assert signal.source_event_id.endswith("-1480913002-1796117400125")  # the latest contract change
    assert harness.fetcher.calls == []  # read behind the queue, not in the webhook

    owner_only = Harness()
    result = owner_only.send("hubspot", hubspot_request(hubspot_events(("hubspot_owner_id", "1", 1))))
    assert result.events == [] and owner_only.nothing_written()


def test_a_contract_change_on_a_booked_deal_is_a_contract_amended_from_the_deal() -> None:
    harness = booked_hubspot_deal()
    amend_deal(harness)
    harness.send("hubspot", hubspot_request(hubspot_events(("pssync_contract_json", "{}", 1796117400125))))
    signal = harness.signals()[-1]
    [resolution] = [harness.resolver.resolve(signal)]
    [amended] = amendments(harness)
    assert (resolution.outcome, resolution.event_id, resolution.published) == (
        "amended",
        amended.event_id,
        True,
    )
    assert amended.event_id == signal.amendment_event_id != signal.booking_event_id
    assert amended.causation_id == signal.event_id and amended.source_event_id == signal.source_event_id
    assert amended.source_version == "2026-12-01T09:30:00.125Z"  # hs_lastmodifieddate
    assert amended.data.amended_at == amended.occurred_at == datetime(2026, 12, 1, 9, 30, 0, 125000, UTC)
    # Before the contract starts (2027-01-04): effective when version 1 is.
    assert amended.data.effective_date == date(2027, 1, 4)
    assert amended.data.reason is not None and "price, obligations, billing, project" in amended.data.reason
    assert amended.data.contract.transaction_price == Money.of("426000.00", "EUR")
    assert amended.data.contract.crm_opportunity_id == DEAL  # identity from the CRM, as when booked
    assert record(harness, amended) == "apply"
    assert [v.version for v in harness.contracts.history(CONTRACT, CONTRACT_ID)] == [1, 2]


def test_a_change_that_leaves_the_terms_as_recorded_publishes_nothing() -> None:
    harness = booked_hubspot_deal()
    deal = harness.fetcher.records[("deals", DEAL)]["properties"]
    terms = ContractTerms.model_validate_json(deal["pssync_contract_json"])
    deal.update(
        {
            "hubspot_owner_id": "4811187",
            "hs_deal_stage_probability": "1.0",
            "description": "renewal expected",
            "hs_lastmodifieddate": "2026-12-01T09:30:00.125Z",
            "pssync_contract_json": terms.model_copy(update={"title": "Contoso (renamed)"}).model_dump_json(),
        }
    )
    harness.send("hubspot", hubspot_request(hubspot_events(("pssync_contract_json", "{}", 1796117400125))))
    [resolution] = [harness.resolver.resolve(harness.signals()[-1])]
    assert (resolution.outcome, resolution.event_id, resolution.published) == ("unchanged", None, False)
    assert harness.publisher.published[-1:] == harness.signals()[-1:]  # the signal only: nothing resolved


def test_delivered_twice_and_replayed_after_recording_it_is_one_amendment() -> None:
    harness = booked_hubspot_deal()
    amend_deal(harness)
    harness.send("hubspot", hubspot_request(hubspot_events(("amount", "426000.00", 1796117400125))))
    signal = harness.signals()[-1]
    first, redelivered = harness.resolver.resolve(signal), harness.resolver.resolve(signal)
    assert (first.published, redelivered.published) == (True, False)
    assert first.event_id == redelivered.event_id and len(amendments(harness)) == 1
    record(harness, amendments(harness)[0])
    replayed = harness.resolver.resolve(signal)  # from the DLQ, after v2 was recorded
    assert (replayed.outcome, replayed.event_id, replayed.published) == ("amended", first.event_id, False)
    assert replayed.reason == "recorded before as v2"
    assert len(amendments(harness)) == 1


def test_a_replayed_closed_won_signal_finds_its_own_booking_even_after_the_deal_changed() -> None:
    harness = Harness()
    harness.send("hubspot", hubspot_request(hubspot_events(("dealstage", "closedwon", 1795169695800))))
    [closed_won] = harness.signals()
    harness.resolver.resolve(closed_won)
    [booking] = harness.bookings()
    record_contract_version(booking, harness.contracts, CLOCK.now())
    amend_deal(harness)  # the change has a signal of its own; replaying the booking must not amend
    replayed = harness.resolver.resolve(closed_won)
    assert (replayed.outcome, replayed.event_id, replayed.published) == ("booked", booking.event_id, False)
    assert amendments(harness) == []


def test_amendments_are_ordered_by_the_deals_stamp_not_by_arrival() -> None:
    harness = booked_hubspot_deal()
    amend_deal(harness, modified="2026-12-01T09:30:00.000Z")
    harness.send("hubspot", hubspot_request(hubspot_events(("amount", "426000.00", 1796117400000))))
    older = harness.resolver.resolve(harness.signals()[-1])
    price = Money.of("431000.00", "EUR")
    newer_terms = change_order().model_copy(update={"transaction_price": price})
    amend_deal(
        harness,
        modified="2026-12-02T08:00:00.000Z",
        amount="431000.00",
        pssync_contract_json=newer_terms.model_dump_json(),
    )
    harness.send("hubspot", hubspot_request(hubspot_events(("amount", "431000.00", 1796198400000))))
    newer = harness.resolver.resolve(harness.signals()[-1])
    assert (older.outcome, newer.outcome) == ("amended", "amended")  # both diffed against v1
    first_sent, second_sent = amendments(harness)
    assert record(harness, second_sent) == "apply"  # the newer one is recorded first
    assert record(harness, first_sent) == "ignore"  # the older one arrives late: never applied over it
    head = harness.contracts.history(CONTRACT, CONTRACT_ID)[-1]
    assert (head.version, head.body["terms"]["transaction_price"]["amount"]) == (2, "431000.00")


def test_a_deal_moved_out_of_closed_won_amends_nothing() -> None:
    harness = booked_hubspot_deal()
    amend_deal(harness, dealstage="contractsent")
    harness.send("hubspot", hubspot_request(hubspot_events(("amount", "426000.00", 1796117400125))))
    resolution = harness.resolver.resolve(harness.signals()[-1])
    assert resolution.dropped and resolution.reason == "the deal is not won (any more)"
    assert amendments(harness) == []


def test_a_change_on_a_won_deal_without_a_contract_books_it() -> None:
    harness = Harness()
    harness.send("hubspot", hubspot_request(hubspot_events(("amount", "396000.00", 1795169695800))))
    [resolution] = harness.resolve_signals()
    [booking] = harness.bookings()
    assert (resolution.outcome, resolution.event_id) == ("booked", booking.event_id)
    assert isinstance(booking, ContractBooked) and booking.data.contract.contract_id == CONTRACT_ID


def test_sow_terms_naming_a_contract_of_another_deal_are_refused_for_review() -> None:
    harness = booked_hubspot_deal()
    other = harness.fetcher.records[("deals", "18472934002")]["properties"]
    other["pssync_contract_json"] = change_order().model_dump_json()  # C-2026-0412: DEAL's contract
    other["amount"] = "426000.00"
    changed = hubspot_events(("amount", "426000.00", 1796117400125), deal="18472934002")
    harness.send("hubspot", hubspot_request(changed))
    with pytest.raises(ContractMappingError, match="belongs to CRM record 18472934001"):
        harness.resolver.resolve(harness.signals()[-1])
    assert amendments(harness) == []


def test_a_crm_amount_without_amended_terms_is_refused_for_review_not_published() -> None:
    harness = booked_hubspot_deal()
    harness.fetcher.records[("deals", DEAL)]["properties"]["amount"] = "426000.00"
    harness.send("hubspot", hubspot_request(hubspot_events(("amount", "426000.00", 1796117400125))))
    with pytest.raises(ContractMappingError, match="SOW terms are out of date"):
        harness.resolver.resolve(harness.signals()[-1])
    assert amendments(harness) == []


# --- Salesforce outbound messages ----------------------------------------------------------------


def test_salesforce_notifications_of_a_won_opportunity_amend_only_when_the_terms_changed() -> None:
    harness = Harness()
    harness.send("salesforce", salesforce_request(sample("salesforce-outbound/opportunity-closed-won.xml")))
    booking_signal = harness.signals()[0]
    harness.resolver.resolve(booking_signal)
    [booking] = harness.bookings()
    record_contract_version(booking, harness.contracts, CLOCK.now())
    assert booking.source_version == "2026-11-20T10:15:03.000Z"

    # The owner changed: outbound messages send every update of a won opportunity, with no changed fields.
    opportunity = harness.fetcher.records[("Opportunity", OPPORTUNITY)]
    opportunity.update({"OwnerId": "0055g00000Usr09AAA", "LastModifiedDate": "2026-12-01T09:00:00.000+0000"})
    again = booking_signal.model_copy(update={"source_event_id": "04l5g00000ZzZzZAAX"})
    assert harness.resolver.resolve(again).outcome == "unchanged"

    opportunity.update(
        {
            "Amount": 426000.0,
            "PSSync_Contract_JSON__c": change_order().model_dump_json(),
            "LastModifiedDate": "2026-12-01T09:30:00.000+0000",
        }
    )
    changed = booking_signal.model_copy(update={"source_event_id": "04l5g00000ZzZzYAAX"})
    resolution = harness.resolver.resolve(changed)
    [amended] = amendments(harness)
    assert (resolution.outcome, amended.source_version) == ("amended", "2026-12-01T09:30:00.000Z")
    assert amended.data.contract.crm_opportunity_id == OPPORTUNITY
    assert record(harness, amended) == "apply"


# --- Dataverse -----------------------------------------------------------------------------------


def dataverse_update(changed: dict[str, Any], request_id: str) -> bytes:
    """An Update of the won opportunity: the Target holds only the changed columns, the post image
    (registered with statecode) says it is won."""
    document = json.loads(sample("dataverse/opportunity-update-won.json"))
    document["RequestId"] = request_id
    target = document["InputParameters"][0]["value"]
    target["Attributes"] = [{"key": k, "value": v} for k, v in changed.items()]
    return json.dumps(document).encode()


def test_dataverse_updates_of_a_won_opportunity_are_changed_signals_only_for_contract_columns() -> None:
    harness = Harness()
    harness.send("dataverse", dataverse_request(sample("dataverse/opportunity-update-won.json")))
    [booking] = harness.bookings()  # statecode set in the Target: the booking, from the post image
    record_contract_version(booking, harness.contracts, CLOCK.now())

    described = harness.send(
        "dataverse",
        dataverse_request(
            dataverse_update({"description": "renewal"}, "0a0b0c0d-0000-4000-8000-000000000001")
        ),
    )
    assert described.events == []

    opportunity = harness.fetcher.records[("opportunity", DATAVERSE_OPPORTUNITY)]
    opportunity.update(
        {
            "actualvalue": 426000.0,
            "pssync_contractjson": change_order().model_dump_json(),
            "modifiedon": "2026-12-01T09:30:00Z",
        }
    )
    harness.send(
        "dataverse",
        dataverse_request(
            dataverse_update({"actualvalue": {"Value": 426000.0}}, "0a0b0c0d-0000-4000-8000-000000000002")
        ),
    )
    [signal] = harness.signals()
    assert (signal.data.kind, signal.data.record_id) == ("changed", DATAVERSE_OPPORTUNITY)
    resolution = harness.resolver.resolve(signal)
    [amended] = amendments(harness)
    assert (resolution.outcome, amended.source_version) == ("amended", "2026-12-01T09:30:00.000Z")
    assert record(harness, amended) == "apply"
