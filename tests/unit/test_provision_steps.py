"""Provision-engagement steps with in-memory ports: outputs, idempotency on replay, business exceptions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pssync.connectors.shadow import ShadowConnector
from pssync.errors import BusinessRuleViolation, TransientDownstreamError
from pssync.model import examples
from pssync.model.commands import Target
from pssync.model.contract import BillingMilestone, MilestoneBilling
from pssync.model.events import ContractBooked
from pssync.workflows import provision
from tests.fakes import FixedClock, InMemoryDeliveryLog, InMemoryVersionStore, RecordingPublisher

NOW = FixedClock().now()


def _booked_with(**changes: object) -> ContractBooked:
    booked = examples.contract_booked()
    terms = booked.data.contract.model_copy(update=changes)
    return booked.model_copy(update={"data": booked.data.model_copy(update={"contract": terms})})


def test_valid_contract_passes_master_data_validation() -> None:
    report = provision.validate_master_data(examples.contract_booked())
    assert report.contract_id == "C-2026-0412"
    assert report.warnings == []


def test_billing_that_does_not_add_up_to_the_price_is_a_business_exception() -> None:
    booked = _booked_with(transaction_price=examples.eur("400000.00"))
    with pytest.raises(BusinessRuleViolation, match=r"billing terms total 396000\.00 EUR") as error:
        provision.validate_master_data(booked)
    assert error.value.code == "master_data_invalid"


def test_billing_milestone_unknown_to_the_obligations_is_reported() -> None:
    terms = examples.transformation_programme()
    milestones = MilestoneBilling(
        milestones=[
            BillingMilestone(
                milestone_id="M9-UNKNOWN", name="?", amount=examples.eur("276000.00"), obligation_id="IMPL"
            )
        ]
    )
    booked = _booked_with(billing=[milestones, *terms.billing[1:]])
    with pytest.raises(BusinessRuleViolation, match="M9-UNKNOWN is not a milestone"):
        provision.validate_master_data(booked)


def test_contract_version_one_is_recorded_once_and_a_replay_finds_it() -> None:
    store = InMemoryVersionStore()
    booked = examples.contract_booked()
    first = provision.record_contract_version(booked, store, NOW)
    replay = provision.record_contract_version(booked, store, NOW)
    assert (first.version, first.newly_recorded) == (1, True)
    assert (replay.version, replay.newly_recorded) == (1, False)
    [stored] = store.history(provision.CONTRACT, "C-2026-0412")
    assert stored.caused_by_event_id == booked.event_id
    assert stored.correlation_id == booked.correlation_id


def test_a_second_booking_of_the_same_contract_by_another_event_is_refused() -> None:
    store = InMemoryVersionStore()
    provision.record_contract_version(examples.contract_booked(), store, NOW)
    other = examples.contract_booked().model_copy(update={"event_id": "another-event"})
    with pytest.raises(BusinessRuleViolation, match="already booked"):
        provision.record_contract_version(other, store, NOW)
    assert len(store.history(provision.CONTRACT, "C-2026-0412")) == 1


def test_psa_and_erp_commands_are_idempotent_upserts() -> None:
    booked = examples.contract_booked()
    contract = provision.RecordedContract(contract_id="C-2026-0412", version=1, newly_recorded=True)
    log = InMemoryDeliveryLog()
    connector = ShadowConnector(log)
    psa = provision.send(
        connector, provision.provision_project_command(booked, booked.data.contract, contract.version), NOW
    )
    erp = provision.send(
        connector, provision.billing_schedule_command(booked, booked.data.contract, contract.version), NOW
    )
    again = provision.send(
        connector, provision.provision_project_command(booked, booked.data.contract, contract.version), NOW
    )
    assert psa.newly_recorded and erp.newly_recorded and not again.newly_recorded
    assert {c.target for c in log.commands.values()} == {Target.PSA, Target.ERP}
    project = log.commands[psa.command_id].payload["project"]
    assert [w["code"] for w in project["wbs"]] == ["1", "1.1", "1.2", "1.3", "2", "3"]
    lines = log.commands[erp.command_id].payload["lines"]
    assert sum(Decimal(line["amount"]["amount"]) for line in lines) == Decimal("396000.00")


def test_revenue_schedule_is_versioned_once_per_contract_version() -> None:
    store = InMemoryVersionStore()
    booked = examples.contract_booked()
    contract = provision.record_contract_version(booked, store, NOW)
    first = provision.build_revenue_schedule(booked, contract, store, NOW)
    replay = provision.build_revenue_schedule(booked, contract, store, NOW)
    assert first.schedule_version == replay.schedule_version == 1
    assert len(store.history(provision.REVENUE_SCHEDULE, "C-2026-0412")) == 1


def test_engagement_activated_carries_lineage_and_activation_time() -> None:
    booked = examples.contract_booked()
    contract = provision.RecordedContract(contract_id="C-2026-0412", version=1, newly_recorded=True)
    receipt = provision.CommandReceipt(command_id="psa:x", external_id="P", newly_recorded=True)
    revenue = provision.RevenueReceipt(schedule_version=1, periods=12, total="1")
    activated = provision.engagement_activated(booked, contract, receipt, receipt, revenue, NOW)
    assert activated.causation_id == booked.event_id
    assert activated.correlation_id == booked.correlation_id
    assert activated.data.activation_seconds == (NOW - booked.data.closed_won_at).total_seconds()
    # Deterministic: a replayed step publishes the same event id, so consumers dedupe it.
    again = provision.engagement_activated(booked, contract, receipt, receipt, revenue, NOW)
    assert again.event_id == activated.event_id
    publisher = RecordingPublisher()
    assert provision.emit_engagement_activated(publisher, activated) == activated.event_id
    assert publisher.published == [activated]


class _ContendedStore(InMemoryVersionStore):
    """A customer's index appended to by another booking just before each of our first `conflicts` appends."""

    def __init__(self, conflicts: int) -> None:
        super().__init__()
        self.conflicts = conflicts

    def append(self, aggregate: str, aggregate_id: str, **kwargs: object) -> object:  # type: ignore[override]
        if aggregate == provision.CUSTOMER and self.conflicts > 0:
            self.conflicts -= 1
            head = self.head(aggregate, aggregate_id)
            other = f"C-OTHER-{self.conflicts}"
            super().append(
                aggregate,
                aggregate_id,
                expected_version=head.version if head else 0,
                body={"contract_ids": [*(head.body["contract_ids"] if head else []), other]},
                caused_by_event_id=f"other-booking-{self.conflicts}",
                correlation_id="other",
                recorded_at=NOW.isoformat(),
            )
        return super().append(aggregate, aggregate_id, **kwargs)  # type: ignore[arg-type]


def test_a_customer_index_contended_by_other_bookings_links_the_contract_once_without_a_retry() -> None:
    booked = examples.contract_booked()
    terms = booked.data.contract
    store = _ContendedStore(conflicts=3)
    provision.link_project(store, booked, terms, NOW)
    head = store.head(provision.CUSTOMER, terms.customer.customer_id)
    assert head is not None
    assert head.body["contract_ids"].count(terms.contract_id) == 1
    assert {"C-OTHER-2", "C-OTHER-1", "C-OTHER-0"} <= set(head.body["contract_ids"])


def test_a_customer_index_that_never_settles_hands_the_step_back_as_transient() -> None:
    booked = examples.contract_booked()
    store = _ContendedStore(conflicts=10_000)
    with pytest.raises(TransientDownstreamError, match="changed concurrently 10 times"):
        provision.link_project(store, booked, booked.data.contract, NOW)
