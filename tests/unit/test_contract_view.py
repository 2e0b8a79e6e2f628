"""`contract show` / `contract explain` over in-memory ports: a contract booked, billed from approved time,
amended and worked on again, each step recorded at a known instant by the real workflow functions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from pssync import revenue as engine
from pssync.model import examples
from pssync.model.commands import ConnectorCommand
from pssync.model.contract import TimeAndMaterialsBilling
from pssync.model.events import ContractAmended, ContractBooked, Lineage, TimeApproved
from pssync.money import Money
from pssync.ops import contract_view
from pssync.ops.contract_view import ContractNotFound, Cutoff, LoggedCommand
from pssync.workflows import amendment, provision, time_approval
from pssync.workflows.provision import CONTRACT, REVENUE_SCHEDULE, CommandReceipt
from pssync.workflows.time_approval import TIME_LEDGER
from tests.fakes import FixedClock, InMemoryVersionStore

CONTRACT_ID = "C-2027-0101"
BOOKED_AT = datetime(2026, 12, 15, 10, 0, tzinfo=UTC)
TIME_AT = datetime(2027, 5, 4, 9, 5, tzinfo=UTC)
AMENDED_AT = datetime(2027, 6, 10, 14, 31, tzinfo=UTC)
BUILD_TIME_AT = datetime(2027, 6, 21, 8, 0, tzinfo=UTC)
LATER = datetime(2027, 12, 31, tzinfo=UTC)
WEBHOOK = Lineage(raw_payload_ref="s3://raw/raw/crm/ab/abcd", raw_sha256="abcd", delivery_id="msg_book_1")


@dataclass
class RecordingLog:
    """The delivery log with when each command was first recorded (what DynamoDBDeliveryLog keeps)."""

    items: dict[str, LoggedCommand] = field(default_factory=dict)

    def deliver_at(self, now: datetime) -> FixedDeliver:
        return FixedDeliver(self, now)

    def logged_commands(self) -> Iterable[LoggedCommand]:
        return list(self.items.values())


@dataclass
class FixedDeliver:
    log: RecordingLog
    now: datetime

    def __call__(self, command: ConnectorCommand) -> CommandReceipt:
        first = command.command_id not in self.log.items
        if first:
            self.log.items[command.command_id] = LoggedCommand(command, self.now.isoformat())
        return CommandReceipt(
            command_id=command.command_id, external_id=command.external_id, newly_recorded=first
        )


def _booking() -> ContractBooked:
    booked = examples.contract_booked()
    return booked.model_copy(
        update={"data": booked.data.model_copy(update={"contract": examples.delivery_programme()})}
    )


def _amendment() -> ContractAmended:
    """The T&M hypercare cap raised from 10,000 to 15,000 EUR and the price to 65,000 EUR."""
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


def _approve(event: TimeApproved, store: InMemoryVersionStore, log: RecordingLog, now: datetime) -> None:
    match = time_approval.match_time_entry(event, store)
    recorded = time_approval.record_time(event, match, store, now)
    time_approval.send_billable_time(event, recorded, store, log.deliver_at(now), FixedClock(now))
    time_approval.remeasure_revenue(event, recorded, store, now)


def _book(store: InMemoryVersionStore, log: RecordingLog, booked: ContractBooked) -> None:
    contract = provision.record_contract_version(booked, store, BOOKED_AT)
    terms = booked.data.contract
    deliver = log.deliver_at(BOOKED_AT)
    deliver(provision.provision_project_command(booked, terms, contract.version))
    deliver(provision.billing_schedule_command(booked, terms, contract.version))
    provision.build_revenue_schedule(booked, contract, store, BOOKED_AT)


def _amend(store: InMemoryVersionStore, log: RecordingLog) -> None:
    event = _amendment()
    recorded = amendment.record_amended_version(event, store, AMENDED_AT)
    deliver = log.deliver_at(AMENDED_AT)
    deliver(provision.provision_project_command(event, event.data.contract, recorded.version))
    deliver(provision.billing_schedule_command(event, event.data.contract, recorded.version))
    amendment.remeasure_revenue(event, recorded, store, AMENDED_AT)


def _build_time() -> TimeApproved:
    """40 hours on the fixed-fee build (WBS 1): input-method progress, not billed."""
    return examples.time_approved(
        "msg_time_TE-2001_v1", time_entry_id="TE-2001", wbs_code="1", role="consultant",
        hours=Decimal("40"), work_date=date(2027, 6, 18), source_version="2027-06-21T07:59:00.000Z",
    )  # fmt: skip


@pytest.fixture
def world() -> tuple[InMemoryVersionStore, RecordingLog]:
    store, log = InMemoryVersionStore(), RecordingLog()
    _book(store, log, _booking())
    _approve(examples.time_approved(), store, log, TIME_AT)
    _amend(store, log)
    _approve(_build_time(), store, log, BUILD_TIME_AT)
    return store, log


def test_show_lists_every_version_with_its_change_cause_and_the_commands_each_system_was_told(
    world: tuple[InMemoryVersionStore, RecordingLog],
) -> None:
    store, log = world
    view = contract_view.show(store, log, CONTRACT_ID, Cutoff.parse(None, LATER))

    assert [v.version for v in view.versions] == [1, 2]
    assert view.versions[0].changes is None
    assert view.versions[0].caused_by_event_id == _booking().event_id
    change = view.versions[1].changes
    assert change is not None
    assert (change.price_change, change.billing_changed, change.added_obligations) == (
        Money.of("5000.00", "EUR"),
        True,
        [],
    )
    assert view.versions[1].caused_by_event_id == _amendment().event_id
    assert view.versions[1].effective_date == "2027-06-10"

    assert [(c.target, c.operation, c.idempotency_key, c.recorded_at) for c in view.deliveries] == [
        ("erp", "upsert_billing_schedule", f"billing-schedule:{CONTRACT_ID}:v1", BOOKED_AT.isoformat()),
        ("psa", "upsert_project", "project:P-FABRIKAM-0101:contract-v1", BOOKED_AT.isoformat()),
        ("erp", "upsert_billable_time", "time:psa/TE-1001:2027-05-04T09:00:00.000Z", TIME_AT.isoformat()),
        ("erp", "upsert_billing_schedule", f"billing-schedule:{CONTRACT_ID}:v2", AMENDED_AT.isoformat()),
        ("psa", "upsert_project", "project:P-FABRIKAM-0101:contract-v2", AMENDED_AT.isoformat()),
    ]
    # booking, TE-1001, the amendment, TE-2001: one schedule version each, the last on contract v2
    assert [(s.version, s.contract_version) for s in view.revenue_schedule] == [
        (1, 1),
        (2, 1),
        (3, 2),
        (4, 2),
    ]
    [ledger] = view.ledgers
    assert ledger.aggregate == TIME_LEDGER
    assert [v.body["kind"] for v in ledger.versions] == ["line", "sent", "line"]
    assert set(view.hidden_after_as_of.values()) == {0}

    # T&M hypercare earns what it may invoice (8 h x 210 = 1,680 EUR), its own variable consideration; the
    # build keeps the whole 65,000 EUR fixed price and has 40 of its 400 estimated hours: 6,500.
    balances = view.balances
    assert balances.measured_on == LATER.date()
    assert balances.recognised_to_date == Money.of("8180.00", "EUR")
    assert balances.billed == Money.zero("EUR") and balances.collected is None
    assert balances.contract_asset == Money.of("8180.00", "EUR")  # revenue ahead of any invoice
    assert "no invoice or payment recorded" in balances.basis


def test_as_of_hides_what_was_recorded_later_and_measures_revenue_on_that_day(
    world: tuple[InMemoryVersionStore, RecordingLog],
) -> None:
    store, log = world
    view = contract_view.show(store, log, CONTRACT_ID, Cutoff.parse("2027-05-31", LATER))

    assert [v.version for v in view.versions] == [1]
    assert [c.recorded_at for c in view.deliveries] == [BOOKED_AT.isoformat()] * 2 + [TIME_AT.isoformat()]
    assert [s.version for s in view.revenue_schedule] == [1, 2]
    assert view.revenue_schedule_head is not None
    assert view.revenue_schedule_head.total() == Decimal("1680.00")
    assert [v.version for v in view.ledgers[0].versions] == [1, 2]
    hidden = {name: count for name, count in view.hidden_after_as_of.items() if count}
    assert hidden == {CONTRACT: 1, REVENUE_SCHEDULE: 2, TIME_LEDGER: 1, "deliveries": 2}
    # By the end of May only the hypercare hours were known: 8 h x 210 EUR, all recognised in May.
    assert view.balances.measured_on == date(2027, 5, 31)
    assert view.balances.recognised_to_date == Money.of("1680.00", "EUR")


def test_a_date_cut_off_includes_that_whole_day_and_an_instant_cut_off_is_exact(
    world: tuple[InMemoryVersionStore, RecordingLog],
) -> None:
    store, log = world
    same_day = contract_view.show(store, log, CONTRACT_ID, Cutoff.parse("2027-06-10", LATER))
    assert [v.version for v in same_day.versions] == [1, 2]
    just_before = contract_view.show(store, log, CONTRACT_ID, Cutoff.parse("2027-06-10T14:30:59Z", LATER))
    assert [v.version for v in just_before.versions] == [1]


def test_a_contract_not_recorded_by_the_cut_off_is_not_found(
    world: tuple[InMemoryVersionStore, RecordingLog],
) -> None:
    store, log = world
    with pytest.raises(ContractNotFound, match="2 version"):
        contract_view.show(store, log, CONTRACT_ID, Cutoff.parse("2026-12-01", LATER))
    with pytest.raises(ContractNotFound):
        contract_view.show(store, log, "C-NOBODY", Cutoff.parse(None, LATER))


def test_explain_walks_a_period_back_to_the_hours_their_events_and_the_contract_version(
    world: tuple[InMemoryVersionStore, RecordingLog],
) -> None:
    store, _ = world
    explained = contract_view.explain(store, CONTRACT_ID, "2027-06", Cutoff.parse(None, LATER))

    assert explained.schedule_version == 4
    assert explained.schedule_caused_by.event_id == _build_time().event_id
    [build] = [line for line in explained.lines if line.obligation_id == "BUILD"]
    assert build.recomputed == build.amount  # the engine reproduces the stored figure from the same facts
    assert build.recognition == {"kind": "input_hours", "estimated_hours": "400"}
    assert build.contract_version == 2
    assert build.contract_event.event_id == _amendment().event_id
    [fact] = build.facts
    assert (fact.ledger, fact.kind, fact.on, fact.ledger_version) == (
        TIME_LEDGER,
        "time",
        date(2027, 6, 18),
        3,
    )
    assert fact.detail == {"hours": "40"}
    assert fact.event is not None and fact.event.event_id == _build_time().event_id
    assert explained.total == sum((line.amount for line in explained.lines), Money.zero("EUR"))

    may = contract_view.explain(store, CONTRACT_ID, "2027-05", Cutoff.parse("2027-05-31", LATER))
    [hypercare] = may.lines
    assert (hypercare.obligation_id, hypercare.amount, hypercare.recomputed) == (
        "HYPERCARE",
        Money.of("1680.00", "EUR"),
        Money.of("1680.00", "EUR"),
    )
    assert [f.event.event_id for f in hypercare.facts if f.event] == [examples.time_approved().event_id]
    assert hypercare.contract_event.event_id == _booking().event_id


def test_explain_names_the_webhook_when_the_version_recorded_its_lineage() -> None:
    store, log = InMemoryVersionStore(), RecordingLog()
    booked = _booking()
    store.append(
        CONTRACT,
        CONTRACT_ID,
        expected_version=0,
        body={
            "terms": booked.data.contract.model_dump(mode="json"),
            "source_version": booked.source_version,
            "lineage": WEBHOOK.model_dump(mode="json"),
        },
        caused_by_event_id=booked.event_id,
        correlation_id=booked.correlation_id,
        recorded_at=BOOKED_AT.isoformat(),
    )
    provision.link_project(store, booked, booked.data.contract, BOOKED_AT)
    recorded = provision.RecordedContract(contract_id=CONTRACT_ID, version=1, newly_recorded=True)
    provision.build_revenue_schedule(booked, recorded, store, BOOKED_AT)
    _approve(examples.time_approved(), store, log, TIME_AT)

    view = contract_view.show(store, log, CONTRACT_ID, Cutoff.parse(None, LATER))
    assert view.versions[0].webhook == WEBHOOK
    [line] = contract_view.explain(store, CONTRACT_ID, "2027-05", Cutoff.parse(None, LATER)).lines
    assert line.contract_event.webhook == WEBHOOK
    [fact] = line.facts
    assert fact.event is not None and fact.event.webhook is None  # the time ledger records no lineage


def test_a_period_with_no_revenue_explains_nothing_and_an_unscheduled_contract_is_not_found(
    world: tuple[InMemoryVersionStore, RecordingLog],
) -> None:
    store, _ = world
    assert contract_view.explain(store, CONTRACT_ID, "2026-12", Cutoff.parse(None, LATER)).lines == []
    with pytest.raises(ContractNotFound):
        contract_view.explain(store, CONTRACT_ID, "2027-05", Cutoff.parse("2026-12-01", LATER))


def test_a_fact_from_a_ledger_the_view_does_not_list_is_shown_untraced_never_tied_to_another_ledger(
    world: tuple[InMemoryVersionStore, RecordingLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A collector registered before its ledger's name joins CONTRACT_AGGREGATES: its `@1` is not the time
    ledger's version 1."""
    store, _ = world

    def unlisted(_: object, contract_id: str, __: object) -> list[engine.Event]:
        return [
            engine.TimeEntry(
                id="other/X-1@1",
                on=date(2027, 6, 19),
                contract_id=contract_id,
                obligation_id="BUILD",
                hours=Decimal(0),
            )
        ]

    monkeypatch.setattr(contract_view, "collectors", lambda: (time_approval.time_facts, unlisted))
    [build] = contract_view.explain(store, CONTRACT_ID, "2027-06", Cutoff.parse(None, LATER)).lines
    assert [(f.fact_id, f.ledger, f.ledger_version) for f in build.facts] == [
        ("psa/TE-2001@3", TIME_LEDGER, 3),
        ("other/X-1@1", None, None),
    ]
    assert build.recomputed == build.amount


def test_the_as_of_view_is_read_only(world: tuple[InMemoryVersionStore, RecordingLog]) -> None:
    store, _ = world
    known = contract_view.KnownAt(store, Cutoff.parse(None, LATER))
    with pytest.raises(PermissionError):
        known.append(CONTRACT, CONTRACT_ID, expected_version=2, body={})
