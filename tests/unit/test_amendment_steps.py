"""Propagate-amendment steps with in-memory ports: ordering guard, version N+1, classification, remeasure."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pssync.errors import TransientDownstreamError
from pssync.model import examples
from pssync.model.events import ContractAmended, ModificationFacts
from pssync.workflows import amendment, provision
from pssync.workflows.provision import CONTRACT, REVENUE_SCHEDULE, CommandReceipt
from tests.fakes import FixedClock, InMemoryVersionStore

NOW = FixedClock().now()


def _booked_store() -> InMemoryVersionStore:
    store = InMemoryVersionStore()
    booked = examples.contract_booked()
    contract = provision.record_contract_version(booked, store, NOW)
    provision.build_revenue_schedule(booked, contract, store, NOW)
    return store


def _amended(**changes: object) -> ContractAmended:
    return examples.contract_amended().model_copy(update=changes)


def test_a_newer_amendment_is_applied_and_recorded_as_version_two() -> None:
    store = _booked_store()
    event = examples.contract_amended()
    assert amendment.guard_contract_version(event, store).action == "apply"
    recorded = amendment.record_amended_version(event, store, NOW)
    assert (recorded.version, recorded.previous_version, recorded.newly_recorded) == (2, 1, True)
    assert recorded.diff.added_obligations == ["ADVISORY"]
    assert recorded.diff.price_change.amount == Decimal("30000.00")
    assert recorded.diff.billing_changed and recorded.diff.project_changed and not recorded.diff.dates_changed
    [v1, v2] = store.history(CONTRACT, "C-2026-0412")
    assert v2.caused_by_event_id == event.event_id and v2.body["effective_date"] == "2027-07-01"
    assert v1.body["terms"]["transaction_price"]["amount"] == "396000.00"  # version 1 is never rewritten


def test_stale_and_duplicate_amendments_are_ignored_never_applied_over_newer_terms() -> None:
    store = _booked_store()
    older = _amended(source_version="2026-11-01T00:00:00.000Z")  # before the booking's LastModifiedDate
    guard = amendment.guard_contract_version(older, store)
    assert guard.action == "ignore" and "not newer" in guard.reason
    amendment.record_amended_version(examples.contract_amended(), store, NOW)
    same_version_again = _amended(event_id="another-delivery-same-version")
    assert amendment.guard_contract_version(same_version_again, store).action == "ignore"
    # Let through by a guard that ran before the newer version was recorded (a concurrent amendment won
    # the race): ignored like a late copy, with its reason, not an exception for the operators.
    late = amendment.record_amended_version(same_version_again, store, NOW)
    assert late.superseded is not None and "not newer" in late.superseded and not late.newly_recorded
    assert len(store.history(CONTRACT, "C-2026-0412")) == 2


def test_a_replayed_amendment_continues_with_the_version_it_recorded() -> None:
    store = _booked_store()
    event = examples.contract_amended()
    amendment.record_amended_version(event, store, NOW)
    assert amendment.guard_contract_version(event, store).action == "apply"
    replay = amendment.record_amended_version(event, store, NOW)
    assert (replay.version, replay.newly_recorded) == (2, False)
    assert replay.diff.added_obligations == ["ADVISORY"]
    assert len(store.history(CONTRACT, "C-2026-0412")) == 2


def test_an_amendment_that_overtakes_its_booking_is_retried_not_failed() -> None:
    with pytest.raises(TransientDownstreamError, match="not recorded yet"):
        amendment.guard_contract_version(examples.contract_amended(), InMemoryVersionStore())


def test_a_late_booking_step_never_writes_its_schedule_over_the_amended_one() -> None:
    store = InMemoryVersionStore()
    booked = examples.contract_booked()
    contract = provision.record_contract_version(booked, store, NOW)
    event = examples.contract_amended()
    recorded = amendment.record_amended_version(event, store, NOW)  # the amendment overtakes provisioning
    amendment.remeasure_revenue(event, recorded, store, NOW)
    late = provision.build_revenue_schedule(booked, contract, store, NOW)
    assert late.superseded
    head = store.head(REVENUE_SCHEDULE, "C-2026-0412")
    assert head is not None and head.body["contract_version"] == 2
    assert len(store.history(REVENUE_SCHEDULE, "C-2026-0412")) == 1


def test_distinct_services_added_at_ssp_are_a_separate_contract() -> None:
    store = _booked_store()
    recorded = amendment.record_amended_version(examples.contract_amended(), store, NOW)
    classification = amendment.classify_modification(store, recorded)
    assert classification.treatment == "separate_contract" and not classification.overridden
    assert "standalone selling price" in classification.rationale


def test_an_override_with_a_rationale_replaces_the_classification() -> None:
    store = _booked_store()
    base = examples.contract_amended()
    facts = ModificationFacts(override="prospective", rationale="Priced with a negotiated discount")
    event = base.model_copy(update={"data": base.data.model_copy(update={"modification": facts})})
    recorded = amendment.record_amended_version(event, store, NOW)
    classification = amendment.classify_modification(store, recorded)
    assert (classification.treatment, classification.overridden) == ("prospective", True)


def test_remeasured_revenue_is_a_new_schedule_version_that_adds_the_retainer() -> None:
    store = _booked_store()
    event = examples.contract_amended()
    recorded = amendment.record_amended_version(event, store, NOW)
    receipt = amendment.remeasure_revenue(event, recorded, store, NOW)
    again = amendment.remeasure_revenue(event, recorded, store, NOW)
    assert receipt.schedule_version == again.schedule_version == 2
    schedule = store.head(REVENUE_SCHEDULE, "C-2026-0412")
    assert schedule is not None and schedule.body["contract_version"] == 2
    advisory = [line for line in schedule.body["schedule"]["lines"] if line["obligation_id"] == "ADVISORY"]
    assert [line["period"] for line in advisory] == [f"2027-{m:02d}" for m in range(7, 13)]
    assert sum(Decimal(line["amount"]["amount"]) for line in advisory) == Decimal("30000.00")
    allocations = schedule.body["schedule"]["allocations"]
    assert set(allocations) == {"IMPL", "TRAIN", "MANAGED", "ADVISORY"}  # existing obligations keep theirs
    assert sum(Decimal(a["amount"]) for a in allocations.values()) == Decimal("426000.00")


def test_amendment_propagated_measures_the_lag_and_links_the_cause() -> None:
    event = examples.contract_amended()
    recorded = amendment.RecordedAmendment(
        contract_id="C-2026-0412", version=2, previous_version=1, newly_recorded=True,
        diff=amendment.diff_terms(examples.transformation_programme(), examples.change_order_terms()),
    )  # fmt: skip
    classification = amendment.Classification(
        treatment="separate_contract", rationale="r", overridden=False, catch_up={}
    )
    receipt = CommandReceipt(command_id="c", external_id="x", newly_recorded=True)
    revenue = provision.RevenueReceipt(schedule_version=2, periods=12, total="1")
    later = examples.AMENDED_AT.replace(minute=31)
    propagated = amendment.amendment_propagated(
        event, recorded, classification, receipt, receipt, revenue, later
    )
    assert propagated.data.propagation_seconds == 60.0
    assert propagated.causation_id == event.event_id and propagated.data.contract_version == 2


@pytest.mark.parametrize(
    ("incoming", "recorded", "newer"),
    [
        ("2027-06-10T14:29:41.000Z", "2026-11-20T10:14:58.000Z", True),
        ("41", "9", True),
        ("9", "41", False),
        ("5", "5", False),
        (None, "5", False),
        ("1", None, True),
        # HubSpot books with epoch ms, the amendment arrives with ISO text: both are instants
        ("2027-06-10T14:29:41Z", "1795169698000", True),
        ("2026-01-01T00:00:00Z", "1795169698000", False),
        # Event Relay's commitTimestamp:commitNumber:transactionKey:sequenceNumber; commitNumber breaks ties
        ("1795169698000:42:tx:1", "1795169698000:41:tx:7", True),
        ("2027-06-10T14:29:41", "1795169698000:1:t:1", True),
    ],
)
def test_version_signals_compare_by_kind(incoming: str | None, recorded: str | None, newer: bool) -> None:
    assert amendment.is_newer(incoming, recorded) is newer
