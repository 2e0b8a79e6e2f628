"""Reconciliation over in-memory ports: a portfolio built by the real workflow functions is clean; each
planted variance (a version the PSA has not received, an accepted milestone without an invoice release,
time billed at a rate off the card) is found with its named cause and amount, and nothing else is."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from pssync.model import examples
from pssync.model.commands import ConnectorCommand
from pssync.model.contract import TimeAndMaterialsBilling
from pssync.model.events import (
    ContractAmended,
    ContractBooked,
    MilestoneCompleted,
    MilestoneCompletedData,
    SourceSystem,
    canonical_event_id,
)
from pssync.money import Money
from pssync.ops import reconcile
from pssync.ops.contract_view import Cutoff, LoggedCommand
from pssync.ops.reconcile import ReconciliationTolerance, VarianceCause
from pssync.workflows import amendment, milestones, provision, receivables, time_approval
from pssync.workflows.provision import CommandReceipt
from tests.fakes import FixedClock, InMemoryVersionStore

DELIVERY = "C-2027-0101"  # delivery programme: fixed-fee build by hours, T&M hypercare
TRANSFORMATION = "C-2026-0412"  # transformation programme: milestones, an instalment, a managed service
BOOKED_AT = datetime(2026, 12, 15, 10, 0, tzinfo=UTC)
TIME_AT = datetime(2027, 5, 4, 9, 5, tzinfo=UTC)
AMENDED_AT = datetime(2027, 6, 10, 14, 31, tzinfo=UTC)
MILESTONE_AT = datetime(2027, 2, 16, 9, 0, tzinfo=UTC)
LATER = datetime(2027, 12, 31, 12, 0, tzinfo=UTC)
CUTOFF = Cutoff.parse(None, LATER)


@dataclass
class RecordingLog:
    """The delivery log with when each command was first recorded (DynamoDBDeliveryLog's items)."""

    items: dict[str, LoggedCommand] = field(default_factory=dict)

    def deliver_at(self, now: datetime) -> Any:
        def deliver(command: ConnectorCommand) -> CommandReceipt:
            first = command.command_id not in self.items
            if first:
                self.items[command.command_id] = LoggedCommand(command, now.isoformat())
            return CommandReceipt(
                command_id=command.command_id, external_id=command.external_id, newly_recorded=first
            )

        return deliver

    def logged_commands(self) -> Iterable[LoggedCommand]:
        return list(self.items.values())


@dataclass
class Plant:
    """What to leave out or get wrong while the portfolio is built."""

    psa_misses_amendment: bool = False
    m2_accepted_not_released: bool = False


def _delivery_booking() -> ContractBooked:
    booked = examples.contract_booked()
    return booked.model_copy(
        update={"data": booked.data.model_copy(update={"contract": examples.delivery_programme()})}
    )


def _delivery_amendment() -> ContractAmended:
    """The hypercare cap raised to 15,000 EUR and the price to 65,000 EUR."""
    terms = examples.delivery_programme()
    hypercare = terms.billing[1]
    assert isinstance(hypercare, TimeAndMaterialsBilling)
    raised = hypercare.model_copy(update={"not_to_exceed": Money.of("15000.00", "EUR")})
    amended = terms.model_copy(
        update={"billing": [terms.billing[0], raised], "transaction_price": Money.of("65000.00", "EUR")}
    )
    event = examples.contract_amended()
    return event.model_copy(
        update={
            "data": event.data.model_copy(update={"contract": amended, "effective_date": date(2027, 6, 10)})
        }
    )


def _book(store: InMemoryVersionStore, log: RecordingLog, booked: ContractBooked, at: datetime) -> None:
    contract = provision.record_contract_version(booked, store, at)
    terms = booked.data.contract
    deliver = log.deliver_at(at)
    deliver(provision.provision_project_command(booked, terms, contract.version))
    deliver(provision.billing_schedule_command(booked, terms, contract.version))
    provision.build_revenue_schedule(booked, contract, store, at)


def _milestone(milestone_id: str, accepted_on: date) -> MilestoneCompleted:
    delivery_id = f"msg_{milestone_id}_accepted"
    event_id = canonical_event_id("psa", delivery_id)
    return MilestoneCompleted(
        event_id=event_id,
        source="psa",
        source_system=SourceSystem.CERTINIA,
        source_event_id=delivery_id,
        correlation_id=event_id,
        occurred_at=MILESTONE_AT,
        received_at=MILESTONE_AT,
        data=MilestoneCompletedData(
            milestone_id=milestone_id,
            project_id="P-CONTOSO-0412",
            completed_on=accepted_on,
            accepted_on=accepted_on,
            acceptance="explicit",
        ),
    )


def _accept(
    store: InMemoryVersionStore, log: RecordingLog, event: MilestoneCompleted, *, release: bool
) -> None:
    state = milestones.record_milestone(event, milestones.match_milestone(event, store), store, MILESTONE_AT)
    assert state.outcome == "accepted"
    if release:
        milestones.release_milestone_invoice(
            event, state, store, log.deliver_at(MILESTONE_AT), FixedClock(MILESTONE_AT)
        )
    milestones.recognise_milestone_revenue(event, state, store, MILESTONE_AT)


def build_portfolio(plant: Plant) -> tuple[InMemoryVersionStore, RecordingLog]:
    store, log = InMemoryVersionStore(), RecordingLog()
    # The delivery programme: booked, 8 architect hours approved and billed, amended.
    _book(store, log, _delivery_booking(), BOOKED_AT)
    time_event = examples.time_approved()
    match = time_approval.match_time_entry(time_event, store)
    recorded = time_approval.record_time(time_event, match, store, TIME_AT)
    time_approval.send_billable_time(
        time_event, recorded, store, log.deliver_at(TIME_AT), FixedClock(TIME_AT)
    )
    time_approval.remeasure_revenue(time_event, recorded, store, TIME_AT)
    change = _delivery_amendment()
    amended = amendment.record_amended_version(change, store, AMENDED_AT)
    deliver = log.deliver_at(AMENDED_AT)
    if not plant.psa_misses_amendment:
        deliver(provision.provision_project_command(change, change.data.contract, amended.version))
    deliver(provision.billing_schedule_command(change, change.data.contract, amended.version))
    amendment.remeasure_revenue(change, amended, store, AMENDED_AT)
    # The transformation programme: booked, discovery accepted and invoiced, design accepted.
    _book(store, log, examples.contract_booked(), BOOKED_AT)
    _accept(store, log, _milestone("M1-DISCOVERY", date(2027, 1, 20)), release=True)
    _accept(
        store, log, _milestone("M2-DESIGN", date(2027, 2, 10)), release=not plant.m2_accepted_not_released
    )
    return store, log


def _portfolio(
    store: InMemoryVersionStore, log: RecordingLog, tolerance: ReconciliationTolerance | None = None
) -> reconcile.PortfolioReconciliation:
    return reconcile.reconcile_portfolio(
        store, log.logged_commands(), [DELIVERY, TRANSFORMATION], CUTOFF, tolerance
    )


def _causes(portfolio: reconcile.PortfolioReconciliation) -> list[tuple[str, str, str]]:
    return [(e.contract_id, v.cause.value, v.system) for e in portfolio.engagements for v in e.variances]


def _engagement(
    portfolio: reconcile.PortfolioReconciliation, contract_id: str
) -> reconcile.EngagementReconciliation:
    return next(e for e in portfolio.engagements if e.contract_id == contract_id)


def test_a_clean_portfolio_has_no_variance_and_every_system_side_by_side() -> None:
    store, log = build_portfolio(Plant())
    portfolio = _portfolio(store, log)

    assert _causes(portfolio) == []
    assert portfolio.above_tolerance == [] and portfolio.not_reconciled == {}
    transformation, delivery = portfolio.engagements
    assert delivery.contract_id == DELIVERY
    assert (delivery.crm.contract_version, delivery.psa.contract_version) == (2, 2)
    assert delivery.erp.billing_schedule_version == 2
    assert delivery.crm.contract_value == Money.of("65000.00", "EUR")
    assert delivery.psa.budget_hours == delivery.crm.budget_hours == 400
    # Two 30,000 instalments due by the cut-off, 8 h x 210 EUR of hypercare billed.
    assert delivery.erp.scheduled_due_to_date == Money.of("60000.00", "EUR")
    assert delivery.erp.billed_time == Money.of("1680.00", "EUR")
    assert delivery.erp.invoiced_to_date == delivery.pssync.expected_billed_to_date
    assert delivery.billing_difference == Money.of("0.00", "EUR")
    assert delivery.pssync.revenue_schedule_contract_version == 2
    # No receivables ledger: the engine booked no invoice, so billed and deferred are not compared.
    assert delivery.pssync.engine_billed is None and delivery.deferred_revenue_variance is None
    # Two released milestones, the training instalment and twelve managed-service months.
    assert transformation.erp.milestone_invoices == Money.of("184000.00", "EUR")
    assert transformation.erp.scheduled_due_to_date == Money.of("120000.00", "EUR")
    assert transformation.pssync.recognised_to_date.amount > 0
    assert reconcile.exception_for(transformation) is None


def test_a_version_the_psa_has_not_received_is_named_with_what_it_holds() -> None:
    store, log = build_portfolio(Plant(psa_misses_amendment=True))
    portfolio = _portfolio(store, log)

    assert _causes(portfolio) == [(DELIVERY, "version_not_received", "psa")]
    [variance] = _engagement(portfolio, DELIVERY).variances
    assert (variance.pssync, variance.held, variance.amount) == ("v2", "v1", None)
    assert variance.above_tolerance  # not money: always material
    assert _engagement(portfolio, DELIVERY).psa.contract_version == 1


def test_an_accepted_milestone_without_an_invoice_release_is_unbilled_by_its_amount() -> None:
    store, log = build_portfolio(Plant(m2_accepted_not_released=True))
    portfolio = _portfolio(store, log)

    assert _causes(portfolio) == [(TRANSFORMATION, "unbilled_milestone", "erp")]
    transformation = _engagement(portfolio, TRANSFORMATION)
    [variance] = transformation.variances
    assert variance.reference == "M2-DESIGN"
    assert variance.amount == Money.of("-92000.00", "EUR")
    assert transformation.billing_difference == variance.amount  # the whole difference, explained
    record = reconcile.exception_for(transformation)
    assert record is not None and record.cause == "reconciliation_variance"
    assert record.contract_id == TRANSFORMATION and [v.cause for v in record.variances] == [
        VarianceCause.UNBILLED_MILESTONE
    ]
    assert record.message_attributes()["pssync-reason"] == "reconciliation_variance"


def _plant_rate_difference(log: RecordingLog, rate: str) -> None:
    """The ERP line of TE-1001 rewritten at another rate (a later upsert of the same record)."""
    [sent] = [c for c in log.items.values() if c.command.operation == "upsert_billable_time"]
    hours = Decimal(sent.command.payload["hours"])
    wrong = sent.command.model_copy(
        update={
            "idempotency_key": sent.command.idempotency_key + ":rerated",
            "payload": {
                **sent.command.payload,
                "rate": Money.of(rate, "EUR").model_dump(mode="json"),
                "amount": Money.of(Decimal(rate) * hours, "EUR").model_dump(mode="json"),
            },
        }
    )
    log.items[wrong.command_id] = LoggedCommand(wrong, datetime(2027, 5, 5, tzinfo=UTC).isoformat())


def test_time_billed_at_a_rate_off_the_card_is_a_rate_difference_of_rate_gap_times_hours() -> None:
    store, log = build_portfolio(Plant())
    _plant_rate_difference(log, "250.00")
    portfolio = _portfolio(store, log)

    assert _causes(portfolio) == [(DELIVERY, "rate_difference", "erp")]
    [variance] = _engagement(portfolio, DELIVERY).variances
    assert (variance.pssync, variance.held) == ("210.00 EUR", "250.00 EUR")
    assert variance.amount == Money.of("320.00", "EUR")  # 8 h x 40 EUR
    assert variance.reference == "psa/TE-1001"
    assert reconcile.variance_totals(portfolio) == {"EUR": Money.of("320.00", "EUR")}


def test_a_variance_within_the_currency_tolerance_is_reported_but_raises_nothing() -> None:
    store, log = build_portfolio(Plant())
    _plant_rate_difference(log, "250.00")
    portfolio = _portfolio(store, log, ReconciliationTolerance.parse('{"EUR": "500.00"}'))

    [variance] = _engagement(portfolio, DELIVERY).variances
    assert variance.cause is VarianceCause.RATE_DIFFERENCE and not variance.above_tolerance
    assert reconcile.exception_for(_engagement(portfolio, DELIVERY)) is None
    assert reconcile.variance_totals(portfolio) == {}


def test_every_planted_variance_at_once_is_found_each_with_its_cause() -> None:
    store, log = build_portfolio(Plant(psa_misses_amendment=True, m2_accepted_not_released=True))
    _plant_rate_difference(log, "199.00")
    portfolio = _portfolio(store, log)

    assert sorted(_causes(portfolio)) == sorted(
        [
            (DELIVERY, "rate_difference", "erp"),
            (DELIVERY, "version_not_received", "psa"),
            (TRANSFORMATION, "unbilled_milestone", "erp"),
        ]
    )
    assert reconcile.variance_totals(portfolio) == {"EUR": Money.of("92088.00", "EUR")}  # 92,000 + 8 x 11


def test_the_as_of_cut_off_reconciles_what_was_known_then() -> None:
    store, log = build_portfolio(Plant(psa_misses_amendment=True))
    before_amendment = Cutoff.parse("2027-05-31", LATER)
    portfolio = reconcile.reconcile_portfolio(
        store, log.logged_commands(), [DELIVERY, "C-UNKNOWN"], before_amendment
    )
    [delivery] = portfolio.engagements
    assert delivery.variances == []  # v1 everywhere by the end of May
    assert delivery.crm.contract_version == 1
    assert "C-UNKNOWN" in portfolio.not_reconciled


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("[1]", "JSON object"),
        ('{"EUR": -1}', "negative"),
        ('{"EUR": 1.5}', "string"),
        ('{"EURO": "1"}', "EURO"),
        ("{", "not JSON"),
    ],
)
def test_a_malformed_tolerance_is_refused_with_a_clear_message(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReconciliationTolerance.parse(raw)


def test_tolerance_is_per_currency_and_zero_when_unlisted() -> None:
    tolerance = ReconciliationTolerance.parse('{"EUR": "5.00", "USD": 2}')
    assert tolerance.of("EUR") == Money.of("5.00", "EUR") and tolerance.of("GBP").amount == 0
    assert not tolerance.exceeded_by(Money.of("-5.00", "EUR"))
    assert tolerance.exceeded_by(Money.of("5.01", "EUR"))
    assert tolerance.exceeded_by(Money.of("0.01", "GBP"))
    assert tolerance.exceeded_by(None)


def test_invoices_the_erp_posted_are_compared_with_what_it_was_told_to_invoice_and_deferred_revenue() -> None:
    from tests.unit.test_receivables import invoice

    store, log = build_portfolio(Plant())
    posted = invoice("INV-M1", [("B1-M1-DISCOVERY", "92000.00")], on=date(2027, 1, 25))
    match = receivables.match_receivable(posted, store)
    receivables.record_receivable(posted, match, store, MILESTONE_AT)
    portfolio = _portfolio(store, log)

    transformation = _engagement(portfolio, TRANSFORMATION)
    assert transformation.pssync.engine_billed == Money.of("92000.00", "EUR")
    billed = next(v for v in transformation.variances if v.cause is VarianceCause.BILLED_DIFFERS)
    # Told to invoice two milestones, the training instalment and twelve months; one invoice posted.
    assert billed.amount == transformation.erp.invoiced_to_date - Money.of("92000.00", "EUR")
    assert billed.amount == Money.of("212000.00", "EUR")
    implied = transformation.erp.invoiced_to_date - transformation.pssync.recognised_to_date
    erp_deferred = implied if implied.amount > 0 else Money.zero("EUR")
    assert transformation.deferred_revenue_variance == transformation.pssync.contract_liability - erp_deferred
    deferred = [v for v in transformation.variances if v.cause is VarianceCause.DEFERRED_REVENUE_DIFFERS]
    assert len(deferred) == (0 if transformation.deferred_revenue_variance.amount == 0 else 1)
    assert reconcile.deferred_revenue_variances(portfolio) == {
        "EUR": transformation.deferred_revenue_variance
    }
    # The delivery programme has no receivables ledger: nothing compared there.
    assert _engagement(portfolio, DELIVERY).deferred_revenue_variance is None
