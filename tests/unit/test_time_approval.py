"""Apply-approved-time rules and steps with in-memory ports: matching, rate card, cap, changed-after-invoice,
the ledger's idempotency and the remeasured revenue."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pssync.errors import BusinessRuleViolation
from pssync.model import examples
from pssync.model.commands import ConnectorCommand
from pssync.model.contract import RateCardLine, TimeAndMaterialsBilling
from pssync.model.events import ContractBooked, TimeApproved
from pssync.money import Money
from pssync.workflows import amendment, provision, time_approval
from pssync.workflows.billed_lines import EntryState
from pssync.workflows.provision import REVENUE_SCHEDULE, CommandReceipt
from pssync.workflows.time_approval import TIME_LEDGER
from tests.fakes import FixedClock, InMemoryDeliveryLog, InMemoryVersionStore

CLOCK = FixedClock()
NOW = CLOCK.now()
CONTRACT_ID = "C-2027-0101"


def _booking() -> ContractBooked:
    booked = examples.contract_booked()
    return booked.model_copy(
        update={"data": booked.data.model_copy(update={"contract": examples.delivery_programme()})}
    )


def _booked_store() -> InMemoryVersionStore:
    store = InMemoryVersionStore()
    booked = _booking()
    contract = provision.record_contract_version(booked, store, NOW)
    provision.build_revenue_schedule(booked, contract, store, NOW)
    return store


class Erp:
    """The delivery path as the step sees it: wiring.deliver over a shadow delivery log."""

    def __init__(self) -> None:
        self.log = InMemoryDeliveryLog()

    def __call__(self, command: ConnectorCommand) -> CommandReceipt:
        recorded = self.log.record(command, NOW.isoformat())
        return CommandReceipt(
            command_id=command.command_id, external_id=command.external_id, newly_recorded=recorded.first_time
        )


def _run(event: TimeApproved, store: InMemoryVersionStore, erp: Erp) -> dict[str, object]:
    """The workflow's steps in order, as the state machine runs them."""
    match = time_approval.match_time_entry(event, store)
    recorded = time_approval.record_time(event, match, store, NOW)
    if recorded.outcome == "unchanged":
        return {"recorded": recorded}
    sent = time_approval.send_billable_time(event, recorded, store, erp, CLOCK)
    revenue = time_approval.remeasure_revenue(event, recorded, store, NOW)
    synced = time_approval.time_synced(event, match, recorded, sent, revenue, NOW)
    return {"match": match, "recorded": recorded, "sent": sent, "revenue": revenue, "synced": synced}


# --- pure rules ----------------------------------------------------------------------------------------


def test_an_entry_matches_the_obligation_of_its_wbs_element_or_its_parents() -> None:
    terms = examples.delivery_programme()
    on_child = time_approval.match_entry(examples.time_approved().data, terms, 1)  # WBS 2.1 -> parent 2
    assert (on_child.obligation_id, on_child.measure, on_child.billing_term, on_child.billable) == (
        "HYPERCARE",
        "time_and_materials",
        1,
        True,
    )
    build = time_approval.match_entry(examples.time_approved(wbs_code="1").data, terms, 1)
    assert (build.obligation_id, build.measure, build.billable) == ("BUILD", "input_hours", False)
    no_wbs = time_approval.match_entry(examples.time_approved(wbs_code=None).data, terms, 1)
    assert no_wbs.obligation_id == "HYPERCARE"  # the contract's only T&M obligation
    not_billable = time_approval.match_entry(examples.time_approved(billable=False).data, terms, 1)
    assert not not_billable.billable


@pytest.mark.parametrize(
    ("changes", "code"),
    [({"wbs_code": "7"}, "unknown_wbs"), ({"wbs_code": "9"}, "unmatched_obligation")],
)
def test_an_entry_that_matches_no_obligation_is_a_business_exception(
    changes: dict[str, object], code: str
) -> None:
    with pytest.raises(BusinessRuleViolation) as error:
        time_approval.match_entry(examples.time_approved(**changes).data, examples.delivery_programme(), 1)
    assert error.value.code == code


def test_the_rate_comes_from_the_rate_card_by_role_in_the_contract_currency() -> None:
    [(_, term)] = time_approval._tm_terms(examples.delivery_programme())
    assert time_approval.rate_for(term, "Architect", "EUR") == Money.of("210.00", "EUR")
    assert time_approval.rate_for(term, "consultant", "EUR") == Money.of("150.00", "EUR")
    with pytest.raises(BusinessRuleViolation) as unknown:
        time_approval.rate_for(term, "intern", "EUR")
    assert unknown.value.code == "rate_not_found"
    with pytest.raises(BusinessRuleViolation) as no_role:
        time_approval.rate_for(term, None, "EUR")  # two roles on the card: which one is not ours to guess
    assert no_role.value.code == "rate_not_found"
    single = TimeAndMaterialsBilling(rate_card=[RateCardLine(role="any", hourly_rate=Money.of("99", "USD"))])
    assert time_approval.rate_for(single, None, "USD").amount == Decimal("99")
    with pytest.raises(BusinessRuleViolation) as currency:
        time_approval.rate_for(single, None, "EUR")
    assert currency.value.code == "currency_mismatch"
    assert time_approval.billed_amount(Decimal("1.333"), Money.of("150.00", "EUR")) == Money.of(
        "199.95", "EUR"
    )


def test_the_cap_refuses_the_line_that_would_pass_it_and_allows_reaching_it() -> None:
    [(_, term)] = time_approval._tm_terms(examples.delivery_programme())  # not to exceed 10,000 EUR
    time_approval.check_cap(term, Money.of("8320.00", "EUR"), Money.of("1680.00", "EUR"))  # exactly 10,000
    with pytest.raises(BusinessRuleViolation) as error:
        time_approval.check_cap(term, Money.of("8320.01", "EUR"), Money.of("1680.00", "EUR"))
    assert error.value.code == "time_over_cap" and "10000.00 EUR" in error.value.message


def test_a_change_after_invoicing_is_refused_unless_nothing_billable_changed() -> None:
    facts = {"approved": True, "hours": "8"}
    invoiced = EntryState("psa/TE-1", 1, "v1", facts, {}, sent_command_id="erp:time:psa/TE-1:v1")
    time_approval.check_not_invoiced("psa/TE-1", invoiced, dict(facts))  # same facts: fine
    time_approval.check_not_invoiced("psa/TE-1", None, facts)  # never recorded: fine
    not_sent = EntryState("psa/TE-1", 1, "v1", facts, {}, sent_command_id=None)
    time_approval.check_not_invoiced("psa/TE-1", not_sent, {**facts, "hours": "9"})  # not invoiced yet
    for changed in ({**facts, "hours": "9"}, {**facts, "approved": False}):
        with pytest.raises(BusinessRuleViolation) as error:
            time_approval.check_not_invoiced("psa/TE-1", invoiced, changed)
        assert error.value.code == "time_changed_after_invoice"


# --- the steps --------------------------------------------------------------------------------------------


def test_approved_t_and_m_time_is_billed_sent_once_and_remeasured() -> None:
    store, erp = _booked_store(), Erp()
    event = examples.time_approved()
    result = _run(event, store, erp)
    recorded = result["recorded"]
    assert isinstance(recorded, time_approval.RecordedTime) and recorded.line is not None
    assert recorded.line.amount == Money.of("1680.00", "EUR")  # 8 h x architect 210.00
    [command] = erp.log.commands.values()
    assert command.operation == "upsert_billable_time" and command.payload["amount"]["amount"] == "1680.00"
    assert command.idempotency_key == "time:psa/TE-1001:2027-05-04T09:00:00.000Z"
    head = store.head(REVENUE_SCHEDULE, CONTRACT_ID)
    assert head is not None and head.version == 2 and head.caused_by_event_id == event.event_id
    hypercare = [line for line in head.body["schedule"]["lines"] if line["obligation_id"] == "HYPERCARE"]
    assert [(line["period"], line["amount"]["amount"]) for line in hypercare] == [("2027-05", "1680.00")]
    synced = result["synced"]
    assert synced.data.outcome == "billed" and synced.data.revenue_schedule_version == 2  # type: ignore[attr-defined]

    # The same event again (a retry, a redelivery, a replay): nothing new anywhere.
    before = {k: list(v) for k, v in store.versions.items()}
    again = time_approval.record_time(event, result["match"], store, NOW)  # type: ignore[arg-type]
    assert again.newly_recorded is False and again.ledger_version == recorded.ledger_version
    resent = time_approval.send_billable_time(event, again, store, erp, CLOCK)
    assert resent.sent and resent.newly_recorded is False
    assert time_approval.remeasure_revenue(event, again, store, NOW).schedule_version == 2
    assert {k: list(v) for k, v in store.versions.items()} == before and len(erp.log.commands) == 1

    # Another delivery of the same entry version (a new webhook id): unchanged, the workflow stops.
    copy = examples.time_approved("msg_time_TE-1001_v1_again")
    assert _run(copy, store, erp)["recorded"].outcome == "unchanged"  # type: ignore[attr-defined]
    assert {k: list(v) for k, v in store.versions.items()} == before


def test_hours_on_an_input_method_obligation_move_its_progress_and_bill_nothing() -> None:
    store, erp = _booked_store(), Erp()
    result = _run(
        examples.time_approved("d-build", time_entry_id="TE-2", wbs_code="1", hours="40"), store, erp
    )
    assert result["sent"].sent is False and not erp.log.commands  # type: ignore[attr-defined]
    head = store.head(REVENUE_SCHEDULE, CONTRACT_ID)
    assert head is not None
    build = [line for line in head.body["schedule"]["lines"] if line["obligation_id"] == "BUILD"]
    assert [line["amount"]["amount"] for line in build] == ["6000.00"]  # 40 / 400 h x 60,000


def test_an_entry_past_the_not_to_exceed_is_an_exception_and_nothing_is_billed() -> None:
    store, erp = _booked_store(), Erp()
    _run(examples.time_approved("d1", time_entry_id="TE-1", hours="40"), store, erp)  # 8,400.00
    ledger_before = store.history(TIME_LEDGER, CONTRACT_ID)
    over = examples.time_approved("d2", time_entry_id="TE-2", hours="8")  # +1,680.00 > 10,000.00
    match = time_approval.match_time_entry(over, store)
    with pytest.raises(BusinessRuleViolation) as error:
        time_approval.record_time(over, match, store, NOW)
    assert error.value.code == "time_over_cap"
    assert store.history(TIME_LEDGER, CONTRACT_ID) == ledger_before and len(erp.log.commands) == 1


def test_time_changed_or_withdrawn_after_it_was_invoiced_is_an_exception_for_review() -> None:
    store, erp = _booked_store(), Erp()
    _run(examples.time_approved(), store, erp)  # sent to the ERP: invoiced
    ledger_before = store.history(TIME_LEDGER, CONTRACT_ID)
    changed = examples.time_approved("d-v2", hours="10", source_version="2027-05-05T09:00:00.000Z")
    withdrawn = examples.time_approved("d-v3", approved=False, source_version="2027-05-06T09:00:00.000Z")
    for event in (changed, withdrawn):
        with pytest.raises(BusinessRuleViolation) as error:
            time_approval.record_time(event, time_approval.match_time_entry(event, store), store, NOW)
        assert error.value.code == "time_changed_after_invoice"
    assert store.history(TIME_LEDGER, CONTRACT_ID) == ledger_before and len(erp.log.commands) == 1


def test_a_change_before_invoicing_supersedes_the_unsent_line_and_a_late_copy_is_ignored() -> None:
    store, erp = _booked_store(), Erp()
    first = examples.time_approved()
    match = time_approval.match_time_entry(first, store)
    recorded_v1 = time_approval.record_time(first, match, store, NOW)  # not sent yet
    changed = examples.time_approved("d-v2", hours="10", source_version="2027-05-05T09:00:00.000Z")
    result = _run(changed, store, erp)
    assert result["recorded"].line.amount == Money.of("2100.00", "EUR")  # type: ignore[attr-defined]
    late = time_approval.send_billable_time(first, recorded_v1, store, erp, CLOCK)
    assert late.sent is False and "superseded" in late.reason  # the older line is never sent
    assert [c.payload["hours"] for c in erp.log.commands.values()] == ["10"]
    stale = examples.time_approved("d-old", hours="6", source_version="2027-05-01T09:00:00.000Z")
    ignored = time_approval.record_time(stale, match, store, NOW)
    assert ignored.outcome == "unchanged" and "not newer" in ignored.reason


def test_a_withdrawal_before_invoicing_removes_the_hours_from_revenue() -> None:
    store, erp = _booked_store(), Erp()
    build = examples.time_approved("d1", time_entry_id="TE-2", wbs_code="1", hours="40")
    _run(build, store, erp)
    withdrawn = examples.time_approved(
        "d2", time_entry_id="TE-2", wbs_code="1", hours="40", approved=False,
        source_version="2027-05-05T09:00:00.000Z",
    )  # fmt: skip
    result = _run(withdrawn, store, erp)
    assert result["recorded"].outcome == "withdrawn" and result["synced"].data.outcome == "withdrawn"  # type: ignore[attr-defined]
    head = store.head(REVENUE_SCHEDULE, CONTRACT_ID)
    assert head is not None and head.version == 3
    assert not [line for line in head.body["schedule"]["lines"] if line["obligation_id"] == "BUILD"]


def test_unknown_and_ambiguous_projects_are_business_exceptions() -> None:
    with pytest.raises(BusinessRuleViolation) as unknown:
        time_approval.match_time_entry(examples.time_approved(project_id="P-NOPE"), _booked_store())
    assert unknown.value.code == "unknown_project"
    store = _booked_store()
    other = _booking()
    terms = other.data.contract.model_copy(update={"contract_id": "C-OTHER"})
    provision.record_contract_version(
        other.model_copy(
            update={"event_id": "other", "data": other.data.model_copy(update={"contract": terms})}
        ),
        store,
        NOW,
    )
    with pytest.raises(BusinessRuleViolation) as ambiguous:
        time_approval.match_time_entry(examples.time_approved(), store)
    assert ambiguous.value.code == "ambiguous_project"


def test_an_amendment_after_approved_time_keeps_the_hours_in_its_remeasured_schedule() -> None:
    store, erp = _booked_store(), Erp()
    _run(examples.time_approved("d-build", time_entry_id="TE-2", wbs_code="1", hours="40"), store, erp)
    terms = examples.delivery_programme()
    amended_terms = terms.model_copy(update={"title": terms.title + " (change order 1)"})
    template = examples.contract_amended()
    amendment_event = template.model_copy(
        update={"data": template.data.model_copy(update={"contract": amended_terms})}
    )
    recorded = amendment.record_amended_version(amendment_event, store, NOW)
    assert recorded.newly_recorded
    amendment.remeasure_revenue(amendment_event, recorded, store, NOW)
    head = store.head(REVENUE_SCHEDULE, CONTRACT_ID)
    assert head is not None and head.body["contract_version"] == 2
    build = [line for line in head.body["schedule"]["lines"] if line["obligation_id"] == "BUILD"]
    assert [line["amount"]["amount"] for line in build] == ["6000.00"]  # the 40 hours are still there
