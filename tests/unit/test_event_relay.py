"""Event Relay normaliser with fakes: fan-out, own writes dropped, GAP refetch, tenants, dedupe ids."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pssync.errors import UnknownTenant, UnprocessableDelivery
from pssync.ingest.service import IngestService
from pssync.model.events import ContractBooked, canonical_event_id
from pssync.model.sources import SourceConfig, SourceRegistry
from pssync.sources.crm_terms import ContractMappingError
from pssync.sources.salesforce.event_relay import (
    EventRelayNormaliser,
    event_uuid_of,
    org_id_of,
    relay_source_for,
)
from tests.fakes import (
    FakeRecordFetcher,
    FakeSecrets,
    FixedClock,
    InMemoryDeduplicator,
    InMemoryRawPayloads,
    RecordingPublisher,
)

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "samples" / "salesforce-event-relay"
NOW = datetime(2026, 11, 20, 10, 16, tzinfo=UTC)
SOURCE = SourceConfig(
    name="sf-relay",
    scheme="salesforce-event-relay",
    system="salesforce",
    tenants=["00D5g000004SxYzEAK"],
    own_client_ids=["pssync-int"],
)


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((SAMPLES / f"{name}.json").read_text()))


def opportunity(record_id: str, *, won: bool = True) -> dict[str, Any]:
    record = sample("opportunity-record")
    terms = json.loads(record["PSSync_Contract_JSON__c"])
    terms["contract_id"] = f"C-{record_id}"
    return {
        **record,
        "Id": record_id,
        "IsWon": won,
        "StageName": "Closed Won" if won else "Negotiation",
        "PSSync_Contract_JSON__c": json.dumps(terms),
    }


def fetcher(*record_ids: str) -> FakeRecordFetcher:
    return FakeRecordFetcher(records={("Opportunity", r): opportunity(r) for r in record_ids})


def test_cdc_create_carries_its_terms_and_needs_no_fetch() -> None:
    fake = fetcher()
    (item,) = EventRelayNormaliser(fake).normalise(SOURCE, sample("cdc-create-closed-won"), NOW)
    event = item.event
    assert isinstance(event, ContractBooked)
    assert fake.calls == []
    assert event.source_event_id == "6d2f8f0e-1b1c-4c3d-9e6f-2a7b8c9d0e01:0065g00000XyZ01AAB"
    assert event.event_id == canonical_event_id("sf-relay", event.source_event_id)
    assert event.source_version == (
        "1763633700000:1763633700123456789:0002a6c4-2d3b-4a2e-8e1e-6b8f0e5f7f10:1"
    )
    assert event.occurred_at == datetime.fromtimestamp(1763633700, tz=UTC)
    assert event.data.contract.crm_opportunity_id is not None


def test_multi_record_update_fans_out_one_event_per_record_after_fetching_each() -> None:
    fake = fetcher("0065g00000XyZ01AAB", "0065g00000XyZ02AAB")
    items = EventRelayNormaliser(fake).normalise(SOURCE, sample("cdc-update-two-records"), NOW)
    assert fake.calls == [("Opportunity", "0065g00000XyZ01AAB"), ("Opportunity", "0065g00000XyZ02AAB")]
    ids = [i.event.source_event_id for i in items]
    assert ids == [
        "6d2f8f0e-1b1c-4c3d-9e6f-2a7b8c9d0e02:0065g00000XyZ01AAB",
        "6d2f8f0e-1b1c-4c3d-9e6f-2a7b8c9d0e02:0065g00000XyZ02AAB",
    ]
    assert len({i.event.event_id for i in items}) == 2
    assert len({i.fingerprint for i in items}) == 2
    assert all(i.event.source_version for i in items)


def test_gap_event_refetches_the_record() -> None:
    fake = fetcher("0065g00000XyZ01AAB")
    (item,) = EventRelayNormaliser(fake).normalise(SOURCE, sample("cdc-gap-update"), NOW)
    assert fake.calls == [("Opportunity", "0065g00000XyZ01AAB")]
    assert item.event.data.contract.contract_id == "C-0065g00000XyZ01AAB"  # type: ignore[attr-defined]


def test_gap_event_for_an_open_opportunity_books_nothing() -> None:
    fake = FakeRecordFetcher(records={("Opportunity", "0065g00000XyZ01AAB"): opportunity("x", won=False)})
    assert EventRelayNormaliser(fake).normalise(SOURCE, sample("cdc-gap-update"), NOW) == []


def test_own_writes_are_dropped_without_fetching() -> None:
    fake = fetcher("0065g00000XyZ01AAB")
    assert EventRelayNormaliser(fake).normalise(SOURCE, sample("cdc-own-write"), NOW) == []
    assert fake.calls == []


@pytest.mark.parametrize("change_type", ["DELETE", "GAP_DELETE"])
def test_deletes_book_nothing(change_type: str) -> None:
    envelope = sample("cdc-gap-update")
    envelope["detail"]["payload"]["ChangeEventHeader"]["changeType"] = change_type
    assert EventRelayNormaliser(fetcher()).normalise(SOURCE, envelope, NOW) == []


def test_updates_that_do_not_touch_the_stage_book_nothing() -> None:
    envelope = sample("cdc-update-two-records")
    envelope["detail"]["payload"]["ChangeEventHeader"]["changedFields"] = ["Description"]
    fake = fetcher()
    assert EventRelayNormaliser(fake).normalise(SOURCE, envelope, NOW) == []
    assert fake.calls == []


def test_unknown_organisation_is_rejected() -> None:
    envelope = sample("cdc-create-closed-won")
    envelope["source"] = "aws.partner/salesforce.com/00D000000000001AAA/0YLabc"
    with pytest.raises(UnknownTenant):
        EventRelayNormaliser(fetcher()).normalise(SOURCE, envelope, NOW)
    with pytest.raises(UnknownTenant):
        relay_source_for(SourceRegistry([SOURCE]), org_id_of(envelope))


def test_fifteen_character_org_id_matches_its_eighteen_character_form() -> None:
    envelope = sample("cdc-create-closed-won")
    envelope["source"] = "aws.partner/salesforce.com/00D5g000004SxYz/0YLabc"
    assert relay_source_for(SourceRegistry([SOURCE]), org_id_of(envelope)) is SOURCE


def test_platform_event_uses_the_event_uuid_and_fetches_terms() -> None:
    fake = fetcher("0065g00000XyZ01AAB")
    (item,) = EventRelayNormaliser(fake).normalise(SOURCE, sample("platform-event-closed-won"), NOW)
    assert item.event.source_event_id == "9a7e1c2b-3d4f-4a5b-8c6d-7e8f9a0b1c2d"
    assert item.event.source_version == "2026-11-20T10:15:00.000Z"
    assert fake.calls == [("Opportunity", "0065g00000XyZ01AAB")]


def test_dedupe_id_prefers_the_salesforce_uuid_over_the_envelope_id() -> None:
    envelope = sample("platform-event-closed-won")
    assert event_uuid_of(envelope) == envelope["detail"]["id"]
    del envelope["detail"]["id"]
    assert event_uuid_of(envelope) == envelope["detail"]["payload"]["EventUuid"]
    del envelope["detail"]["payload"]["EventUuid"]
    assert event_uuid_of(envelope) == envelope["id"]


def test_thin_event_without_a_fetcher_is_unprocessable() -> None:
    with pytest.raises(UnprocessableDelivery, match="must be fetched"):
        EventRelayNormaliser(None).normalise(SOURCE, sample("cdc-gap-update"), NOW)


def test_redelivered_relay_event_publishes_once_through_accept() -> None:
    publisher = RecordingPublisher()
    service = IngestService(
        registry=SourceRegistry([SOURCE]),
        secrets=FakeSecrets({}),
        publisher=publisher,
        deduplicator=InMemoryDeduplicator(),
        clock=FixedClock(),
        raw_payloads=InMemoryRawPayloads(),
    )
    normaliser = EventRelayNormaliser(fetcher("0065g00000XyZ01AAB", "0065g00000XyZ02AAB"))
    envelope = sample("cdc-update-two-records")
    for attempt in range(2):
        # An Event Relay redelivery comes with a new EventBridge envelope id; the Salesforce UUID stays.
        copy_ = copy.deepcopy(envelope)
        copy_["id"] = f"envelope-{attempt}"
        body = json.dumps(copy_).encode()
        result = service.accept(
            SOURCE, event_uuid_of(copy_), body, normaliser.normalise(SOURCE, copy_, NOW), NOW
        )
        assert [e.duplicate for e in result.events] == [attempt == 1, attempt == 1]
    assert len(publisher.published) == 2


def _cdc_create(**changes: Any) -> dict[str, Any]:
    envelope = copy.deepcopy(sample("cdc-create-closed-won"))
    envelope["detail"]["payload"].update(changes)
    return envelope


def test_relayed_records_go_through_the_one_salesforce_mapping_amount_checked() -> None:
    """An Event Relay CREATE whose Amount disagrees with the SOW terms is refused, as an outbound message's
    fetched record is (it was booked: the relay mapping skipped the amount check)."""
    with pytest.raises(ContractMappingError, match="differs from the contract's transaction price"):
        EventRelayNormaliser(fetcher()).normalise(SOURCE, _cdc_create(Amount=1.0), NOW)


def test_relayed_records_take_the_opportunity_id_from_the_record_not_the_terms_json() -> None:
    payload = sample("cdc-create-closed-won")["detail"]["payload"]
    terms = json.loads(payload["PSSync_Contract_JSON__c"])
    terms["crm_opportunity_id"] = "0065g00000WRONGAAA"
    envelope = _cdc_create(PSSync_Contract_JSON__c=json.dumps(terms))
    (item,) = EventRelayNormaliser(fetcher()).normalise(SOURCE, envelope, NOW)
    contract = item.event.data.contract  # type: ignore[attr-defined]
    assert contract.crm_opportunity_id == "0065g00000XyZ01AAB"
    assert contract.customer.external_ids["salesforce"] == "0015g00000XyZ12AAB"


def test_relayed_line_items_must_name_obligations_of_the_terms() -> None:
    record = opportunity("0065g00000XyZ01AAB")
    record["OpportunityLineItems"] = {
        "records": [{"Id": "00k5g00000LiNe1AAB", "PSSync_Obligation_Id__c": "NOT-IN-THE-SOW"}]
    }
    fake = FakeRecordFetcher(records={("Opportunity", "0065g00000XyZ01AAB"): record})
    with pytest.raises(ContractMappingError, match="NOT-IN-THE-SOW"):
        EventRelayNormaliser(fake).normalise(SOURCE, sample("cdc-gap-update"), NOW)
