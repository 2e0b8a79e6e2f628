"""Apply-approved-expense rules and steps with in-memory ports: matching, currency, category, markup rounding,
cap, changed-after-invoice, late copies, the ledger's idempotency and cost-to-cost revenue.

`expense_contract()` and `expense_approved()` are the scenario the integration and e2e tests use too.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from pssync.errors import BusinessRuleViolation
from pssync.model import examples
from pssync.model.commands import ConnectorCommand
from pssync.model.contract import ContractTerms, ExpenseBilling, InputCost
from pssync.model.events import (
    ContractBooked,
    ExpenseApproved,
    ExpenseApprovedData,
    SourceSystem,
    canonical_event_id,
)
from pssync.money import Money
from pssync.workflows import amendment, expenses, provision
from pssync.workflows.billed_lines import EntryState
from pssync.workflows.delivery_facts import schedule_with_delivery
from pssync.workflows.expenses import EXPENSE_LEDGER
from pssync.workflows.provision import REVENUE_SCHEDULE, CommandReceipt
from tests.fakes import FixedClock, InMemoryDeliveryLog, InMemoryVersionStore

CLOCK = FixedClock()
NOW = CLOCK.now()
CONTRACT_ID = "C-2027-0101"
EXPENSE_POLICY = ExpenseBilling(
    markup_percent=Decimal("10"),
    not_to_exceed=Money.of("2000.00", "EUR"),
    rebillable_categories=["Travel", "lodging"],
    obligation_id="BUILD",
)


def expense_contract(policy: ExpenseBilling = EXPENSE_POLICY) -> ContractTerms:
    """The delivery programme with its build measured cost-to-cost (estimate 20,000 EUR for a 60,000 EUR
    allocation: every 1 EUR of cost earns 3 EUR) and an expense policy: travel and lodging rebilled at cost
    plus 10 %, at most 2,000 EUR, under the build."""
    terms = examples.delivery_programme()
    build, hypercare = terms.obligations
    build = build.model_copy(update={"recognition": InputCost(estimated_cost=Money.of("20000.00", "EUR"))})
    return ContractTerms.model_validate(
        terms.model_copy(
            update={"obligations": [build, hypercare], "billing": [*terms.billing, policy]}
        ).model_dump()
    )


def expense_approved(
    delivery_id: str = "msg_expense_EX-1001_v1",
    *,
    source: str = "psa",
    source_version: str | None = "2027-03-11T09:00:00.000Z",
    **changes: object,
) -> ExpenseApproved:
    """A PSA approval of 450.00 EUR of travel on the build (WBS 1), billable."""
    fields: dict[str, object] = {
        "expense_id": "EX-1001",
        "project_id": "P-FABRIKAM-0101",
        "person_id": "EMP-17",
        "incurred_on": date(2027, 3, 10),
        "amount": Money.of("450.00", "EUR"),
        "billable": True,
        "category": "travel",
        "wbs_code": "1",
        "description": "Train Zurich - Basel, workshop",
        **changes,
    }
    event_id = canonical_event_id(source, delivery_id)
    approved_at = datetime(2027, 3, 11, 9, 0, tzinfo=UTC)
    return ExpenseApproved(
        event_id=event_id,
        source=source,
        source_system=SourceSystem.CERTINIA,
        source_event_id=delivery_id,
        source_version=source_version,
        correlation_id=event_id,
        occurred_at=approved_at,
        received_at=approved_at,
        data=ExpenseApprovedData.model_validate(fields),
    )


def _booking(terms: ContractTerms) -> ContractBooked:
    booked = examples.contract_booked()
    return booked.model_copy(update={"data": booked.data.model_copy(update={"contract": terms})})


def _booked_store(terms: ContractTerms | None = None) -> InMemoryVersionStore:
    store = InMemoryVersionStore()
    booked = _booking(terms or expense_contract())
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


def _run(event: ExpenseApproved, store: InMemoryVersionStore, erp: Erp) -> dict[str, object]:
    """The workflow's steps in order, as the state machine runs them."""
    match = expenses.match_approved_expense(event, store)
    recorded = expenses.record_expense(event, match, store, NOW)
    if recorded.outcome == "unchanged":
        return {"match": match, "recorded": recorded}
    sent = expenses.send_rebillable_expense(event, recorded, store, erp, CLOCK)
    revenue = expenses.remeasure_revenue(event, recorded, store, NOW)
    synced = expenses.expense_synced(event, match, recorded, sent, revenue, NOW)
    return {"match": match, "recorded": recorded, "sent": sent, "revenue": revenue, "synced": synced}


def _lines(store: InMemoryVersionStore, obligation_id: str) -> list[tuple[str, str]]:
    head = store.head(REVENUE_SCHEDULE, CONTRACT_ID)
    assert head is not None
    lines = head.body["schedule"]["lines"]
    return [
        (line["period"], line["amount"]["amount"]) for line in lines if line["obligation_id"] == obligation_id
    ]


def _versions(store: InMemoryVersionStore) -> dict[tuple[str, str], list[object]]:
    return {k: list(v) for k, v in store.versions.items()}


# --- pure rules ----------------------------------------------------------------------------------------


def test_an_expense_matches_its_wbs_obligation_else_the_policy_obligation_else_none() -> None:
    terms = expense_contract()
    on_build = expenses.match_expense(expense_approved().data, terms, 1)
    assert (on_build.obligation_id, on_build.measure, on_build.policy_term, on_build.rebillable) == (
        "BUILD",
        "input_cost",
        2,
        True,
    )
    no_wbs = expenses.match_expense(expense_approved(wbs_code=None).data, terms, 1)
    assert (no_wbs.obligation_id, no_wbs.rebillable) == ("BUILD", True)  # the policy's obligation
    # WBS 2.1 inherits HYPERCARE (T&M): a cost that measures nothing; the policy is scoped to the build.
    hypercare = expenses.match_expense(expense_approved(wbs_code="2.1").data, terms, 1)
    assert (hypercare.obligation_id, hypercare.measure, hypercare.rebillable) == ("HYPERCARE", "none", False)
    # WBS 9 (internal, not billable) names no obligation: that answer stands, nothing is rebilled.
    internal = expenses.match_expense(expense_approved(wbs_code="9").data, terms, 1)
    assert (internal.obligation_id, internal.measure, internal.rebillable) == (None, "none", False)
    not_billable = expenses.match_expense(expense_approved(billable=False).data, terms, 1)
    assert not not_billable.rebillable and not_billable.measure == "input_cost"

    contract_wide = expense_contract(EXPENSE_POLICY.model_copy(update={"obligation_id": None}))
    on_hypercare = expenses.match_expense(expense_approved(wbs_code="2.1").data, contract_wide, 1)
    assert (on_hypercare.obligation_id, on_hypercare.rebillable) == ("HYPERCARE", True)
    unassigned = expenses.match_expense(expense_approved(wbs_code=None).data, contract_wide, 1)
    assert (unassigned.obligation_id, unassigned.measure, unassigned.rebillable) == (None, "none", True)

    without_policy = examples.delivery_programme()
    assert not expenses.match_expense(expense_approved().data, without_policy, 1).rebillable


def test_an_unknown_wbs_or_an_expense_several_scoped_policies_could_claim_is_an_exception() -> None:
    with pytest.raises(BusinessRuleViolation) as unknown:
        expenses.match_expense(expense_approved(wbs_code="7").data, expense_contract(), 1)
    assert unknown.value.code == "unknown_wbs"
    two_policies = expense_contract()
    two_policies = two_policies.model_copy(
        update={
            "billing": [
                *two_policies.billing,
                EXPENSE_POLICY.model_copy(update={"obligation_id": "HYPERCARE"}),
            ]
        }
    )
    with pytest.raises(BusinessRuleViolation) as ambiguous:
        expenses.match_expense(expense_approved(wbs_code=None).data, two_policies, 1)
    assert ambiguous.value.code == "ambiguous_expense_policy"
    on_wbs = expenses.match_expense(expense_approved(wbs_code="2").data, two_policies, 1)
    assert (on_wbs.obligation_id, on_wbs.policy_term, on_wbs.rebillable) == ("HYPERCARE", 3, True)


def test_an_expense_in_another_currency_than_the_contract_is_a_currency_mismatch() -> None:
    with pytest.raises(BusinessRuleViolation) as error:
        expenses.match_expense(expense_approved(amount=Money.of("450.00", "CHF")).data, expense_contract(), 1)
    assert error.value.code == "currency_mismatch" and "CHF" in error.value.message


def test_the_category_filter_admits_only_listed_categories_case_insensitively() -> None:
    assert expenses.category_admitted(EXPENSE_POLICY, "TRAVEL")
    assert expenses.category_admitted(EXPENSE_POLICY, "Lodging")
    assert not expenses.category_admitted(EXPENSE_POLICY, "software")
    assert not expenses.category_admitted(EXPENSE_POLICY, None)  # a list names categories; none is not one
    every_category = EXPENSE_POLICY.model_copy(update={"rebillable_categories": None})
    assert expenses.category_admitted(every_category, None) and expenses.category_admitted(
        every_category, "x"
    )
    software = expenses.match_expense(expense_approved(category="software").data, expense_contract(), 1)
    assert not software.rebillable and software.measure == "input_cost"  # still a cost of the build


@pytest.mark.parametrize(
    ("cost", "markup", "billed", "added"),
    [
        (Money.of("10.30", "EUR"), "15", "11.85", "1.55"),  # 11.845: half up (half even would show 11.84)
        (Money.of("123.45", "EUR"), "7.5", "132.71", "9.26"),  # 132.70875
        (Money.of("450.00", "EUR"), "0", "450.00", "0.00"),
        (Money.of("1001", "JPY"), "12.5", "1126", "125"),  # 1126.125 in a currency without minor units
        (Money.of("10.005", "KWD"), "10", "11.006", "1.001"),  # 11.0055: three minor digits
    ],
)
def test_the_rebilled_amount_is_cost_plus_markup_rounded_half_up_to_the_minor_unit(
    cost: Money, markup: str, billed: str, added: str
) -> None:
    line = expenses.rebill(cost, Decimal(markup), "psa/EX-1@1")
    assert line.amount == Money.of(billed, cost.currency) and line.markup == Money.of(added, cost.currency)
    assert line.cost + line.markup == line.amount and line.amount.amount.as_tuple().exponent == (
        Money.zero(cost.currency).rounded(expenses.REBILL_ROUNDING).amount.as_tuple().exponent
    )


def test_the_cap_refuses_the_line_that_would_pass_it_and_allows_reaching_it() -> None:
    expenses.check_cap(EXPENSE_POLICY, Money.of("1505.00", "EUR"), Money.of("495.00", "EUR"))  # exactly 2,000
    with pytest.raises(BusinessRuleViolation) as error:
        expenses.check_cap(EXPENSE_POLICY, Money.of("1505.01", "EUR"), Money.of("495.00", "EUR"))
    assert error.value.code == "expense_over_cap" and "2000.00 EUR" in error.value.message
    uncapped = EXPENSE_POLICY.model_copy(update={"not_to_exceed": None})
    expenses.check_cap(uncapped, Money.of("1000000.00", "EUR"), Money.of("495.00", "EUR"))


def test_a_change_after_rebilling_is_refused_unless_nothing_billable_changed() -> None:
    facts = {"approved": True, "amount": "450.00"}
    invoiced = EntryState("psa/EX-1", 1, "v1", facts, {}, sent_command_id="erp:expense:psa/EX-1:v1")
    expenses.check_not_invoiced("psa/EX-1", invoiced, dict(facts))  # same facts: fine
    expenses.check_not_invoiced("psa/EX-1", None, facts)  # never recorded: fine
    not_sent = EntryState("psa/EX-1", 1, "v1", facts, {}, sent_command_id=None)
    expenses.check_not_invoiced("psa/EX-1", not_sent, {**facts, "amount": "460.00"})  # not invoiced yet
    for changed, what in (
        ({**facts, "amount": "460.00"}, "changed"),
        ({**facts, "approved": False}, "withdrawn"),
    ):
        with pytest.raises(BusinessRuleViolation) as error:
            expenses.check_not_invoiced("psa/EX-1", invoiced, changed)
        assert error.value.code == "expense_changed_after_invoice" and what in error.value.message


# --- the steps --------------------------------------------------------------------------------------------


def test_a_rebillable_expense_is_billed_at_its_markup_sent_once_and_its_cost_moves_revenue() -> None:
    store, erp = _booked_store(), Erp()
    event = expense_approved()
    result = _run(event, store, erp)
    recorded = result["recorded"]
    assert isinstance(recorded, expenses.RecordedExpense) and recorded.line is not None
    assert (recorded.line.amount, recorded.line.markup) == (
        Money.of("495.00", "EUR"),
        Money.of("45.00", "EUR"),
    )
    [command] = erp.log.commands.values()
    assert (
        command.operation == "upsert_rebillable_expense" and command.payload["amount"]["amount"] == "495.00"
    )
    assert command.idempotency_key == "expense:psa/EX-1001:2027-03-11T09:00:00.000Z"
    # The cost, not the bill: 450 / 20,000 = 2.25 %, 2.3 % under the engine's progress rounding (0.1 %).
    assert _lines(store, "BUILD") == [("2027-03", "1380.00")]
    head = store.head(REVENUE_SCHEDULE, CONTRACT_ID)
    assert head is not None and head.version == 2 and head.caused_by_event_id == event.event_id
    synced = result["synced"]
    assert isinstance(synced, expenses.ExpenseSynced)
    assert (synced.data.outcome, synced.data.billed, synced.data.markup, synced.data.cost) == (
        "rebilled",
        Money.of("495.00", "EUR"),
        Money.of("45.00", "EUR"),
        Money.of("450.00", "EUR"),
    )
    assert synced.data.erp_command_id == command.command_id and synced.data.revenue_schedule_version == 2
    assert event.occurred_at > NOW  # approved in 2027, after the test clock: skew, reported as 0 lag
    assert synced.data.sync_seconds == 0.0

    # The same event again (a retry, a redelivery, a replay): nothing new anywhere.
    before = _versions(store)
    match = expenses.match_approved_expense(event, store)
    again = expenses.record_expense(event, match, store, NOW)
    assert again.newly_recorded is False and again.ledger_version == recorded.ledger_version
    resent = expenses.send_rebillable_expense(event, again, store, erp, CLOCK)
    assert resent.sent and resent.newly_recorded is False
    assert expenses.remeasure_revenue(event, again, store, NOW).schedule_version == 2
    assert expenses.expense_synced(event, match, again, resent, result["revenue"], NOW) == synced  # type: ignore[arg-type]
    assert _versions(store) == before and len(erp.log.commands) == 1

    # Another delivery of the same expense version (a new webhook id): unchanged, the workflow stops.
    copy = expense_approved("msg_expense_EX-1001_v1_again")
    assert _run(copy, store, erp)["recorded"].outcome == "unchanged"  # type: ignore[attr-defined]
    assert _versions(store) == before


def test_a_non_rebillable_expense_on_a_cost_to_cost_obligation_moves_revenue_and_bills_nothing() -> None:
    store, erp = _booked_store(), Erp()
    result = _run(expense_approved(category="software", amount=Money.of("2000.00", "EUR")), store, erp)
    assert result["sent"].sent is False and not erp.log.commands  # type: ignore[attr-defined]
    assert result["synced"].data.outcome == "cost_only" and result["synced"].data.billed is None  # type: ignore[attr-defined]
    assert _lines(store, "BUILD") == [("2027-03", "6000.00")]  # 2,000 / 20,000 x 60,000
    [ledger] = store.history(EXPENSE_LEDGER, CONTRACT_ID)
    assert ledger.body["line"] is None and ledger.body["cost"] == {"amount": "2000.00", "currency": "EUR"}


def test_an_expense_that_moves_no_revenue_writes_no_new_schedule_version() -> None:
    store, erp = _booked_store(), Erp()
    result = _run(expense_approved(wbs_code="2.1"), store, erp)  # hypercare (T&M), not rebillable here
    revenue = result["revenue"]
    assert isinstance(revenue, provision.RevenueReceipt) and revenue.schedule_version == 1
    assert len(store.history(REVENUE_SCHEDULE, CONTRACT_ID)) == 1
    assert result["synced"].data.outcome == "cost_only"  # type: ignore[attr-defined]
    assert [v.body["kind"] for v in store.history(EXPENSE_LEDGER, CONTRACT_ID)] == ["expense"]


def test_an_expense_past_the_not_to_exceed_is_an_exception_and_nothing_is_billed() -> None:
    store, erp = _booked_store(), Erp()
    _run(expense_approved("d1", expense_id="EX-1", amount=Money.of("1500.00", "EUR")), store, erp)  # 1,650.00
    ledger_before = store.history(EXPENSE_LEDGER, CONTRACT_ID)
    over = expense_approved("d2", expense_id="EX-2", amount=Money.of("320.00", "EUR"))  # +352.00 > 2,000.00
    match = expenses.match_approved_expense(over, store)
    with pytest.raises(BusinessRuleViolation) as error:
        expenses.record_expense(over, match, store, NOW)
    assert error.value.code == "expense_over_cap"
    assert store.history(EXPENSE_LEDGER, CONTRACT_ID) == ledger_before and len(erp.log.commands) == 1
    # A line that reaches the cap exactly is billed; a non-rebillable cost is never capped.
    _run(expense_approved("d3", expense_id="EX-3", amount=Money.of("318.18", "EUR")), store, erp)  # 349.998
    _run(expense_approved("d4", expense_id="EX-4", category="software"), store, erp)
    assert [c.payload["amount"]["amount"] for c in erp.log.commands.values()] == ["1650.00", "350.00"]


def test_an_expense_changed_or_withdrawn_after_it_was_rebilled_is_an_exception_for_review() -> None:
    store, erp = _booked_store(), Erp()
    _run(expense_approved(), store, erp)  # sent to the ERP: invoiced
    ledger_before = store.history(EXPENSE_LEDGER, CONTRACT_ID)
    schedule_before = store.history(REVENUE_SCHEDULE, CONTRACT_ID)
    changed = expense_approved(
        "d-v2", amount=Money.of("470.00", "EUR"), source_version="2027-03-12T09:00:00.000Z"
    )
    withdrawn = expense_approved("d-v3", approved=False, source_version="2027-03-13T09:00:00.000Z")
    for event in (changed, withdrawn):
        with pytest.raises(BusinessRuleViolation) as error:
            expenses.record_expense(event, expenses.match_approved_expense(event, store), store, NOW)
        assert error.value.code == "expense_changed_after_invoice"
    assert store.history(EXPENSE_LEDGER, CONTRACT_ID) == ledger_before and len(erp.log.commands) == 1
    assert store.history(REVENUE_SCHEDULE, CONTRACT_ID) == schedule_before
    # A new description only (not a billing fact) is no change at all.
    reworded = expense_approved(
        "d-v4", description="Train, corrected", source_version="2027-03-14T09:00:00.000Z"
    )
    assert _run(reworded, store, erp)["recorded"].outcome == "unchanged"  # type: ignore[attr-defined]


def test_a_change_before_rebilling_supersedes_the_unsent_line_and_a_late_copy_is_ignored() -> None:
    store, erp = _booked_store(), Erp()
    first = expense_approved()
    match = expenses.match_approved_expense(first, store)
    recorded_v1 = expenses.record_expense(first, match, store, NOW)  # not sent yet
    changed = expense_approved(
        "d-v2", amount=Money.of("500.00", "EUR"), source_version="2027-03-12T09:00:00.000Z"
    )
    result = _run(changed, store, erp)
    assert result["recorded"].line.amount == Money.of("550.00", "EUR")  # type: ignore[attr-defined]
    late = expenses.send_rebillable_expense(first, recorded_v1, store, erp, CLOCK)
    assert late.sent is False and "superseded" in late.reason  # the older line is never sent
    assert [c.payload["cost"]["amount"] for c in erp.log.commands.values()] == ["500.00"]
    assert _lines(store, "BUILD") == [("2027-03", "1500.00")]  # only the current cost counts
    stale = expense_approved(
        "d-old", amount=Money.of("300.00", "EUR"), source_version="2027-03-10T09:00:00.000Z"
    )
    ignored = expenses.record_expense(stale, match, store, NOW)
    assert ignored.outcome == "unchanged" and "not newer" in ignored.reason
    assert ignored.cost == Money.of("500.00", "EUR")


def test_a_withdrawal_before_rebilling_removes_the_cost_from_revenue() -> None:
    store, erp = _booked_store(), Erp()
    _run(expense_approved(billable=False), store, erp)
    assert _lines(store, "BUILD") == [("2027-03", "1380.00")]
    withdrawn = expense_approved(
        "d2", billable=False, approved=False, source_version="2027-03-12T09:00:00.000Z"
    )
    result = _run(withdrawn, store, erp)
    synced = result["synced"]
    assert isinstance(synced, expenses.ExpenseSynced)
    assert (synced.data.outcome, synced.data.cost) == ("withdrawn", Money.zero("EUR"))
    assert _lines(store, "BUILD") == [] and len(store.history(REVENUE_SCHEDULE, CONTRACT_ID)) == 3
    nothing = expense_approved("d3", expense_id="EX-NEVER", approved=False)
    assert _run(nothing, store, erp)["recorded"].outcome == "unchanged"  # type: ignore[attr-defined]


def test_unknown_projects_are_business_exceptions() -> None:
    with pytest.raises(BusinessRuleViolation) as unknown:
        expenses.match_approved_expense(expense_approved(project_id="P-NOPE"), _booked_store())
    assert unknown.value.code == "unknown_project"


def test_the_collector_feeds_costs_to_every_remeasurement_that_names_it() -> None:
    """What an amendment's remeasure keeps once the collector is registered in delivery_facts.collectors()."""
    store, erp = _booked_store(), Erp()
    _run(expense_approved(category="software"), store, erp)
    terms = expense_contract()
    amended_terms = terms.model_copy(update={"title": terms.title + " (change order 1)"})
    template = examples.contract_amended()
    amended = template.model_copy(
        update={"data": template.data.model_copy(update={"contract": amended_terms})}
    )
    recorded = amendment.record_amended_version(amended, store, NOW)
    versions = amendment.engine_versions(store, CONTRACT_ID, recorded.version)
    schedule = schedule_with_delivery(store, CONTRACT_ID, versions, NOW, also=(expenses.expense_facts,))
    build = [(line.period, line.amount.amount) for line in schedule.lines if line.obligation_id == "BUILD"]
    assert build == [("2027-03", Decimal("1380.00"))]
    [cost] = expenses.expense_facts(store, CONTRACT_ID, versions[-1])
    assert isinstance(cost, expenses.engine.CostEntry) and cost.amount == Decimal("450.00")
