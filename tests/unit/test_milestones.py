"""Accept-milestone rules and steps with in-memory ports: business-day deadlines, the acceptance
decisions (explicit, passive, rejected, cancelled), rejection after acceptance, idempotency and the
recognised revenue."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pssync.errors import BusinessRuleViolation, TransientDownstreamError
from pssync.model import examples
from pssync.model.commands import ConnectorCommand
from pssync.model.events import MilestoneCompleted, MilestoneCompletedData, SourceSystem, canonical_event_id
from pssync.workflows import milestones, provision
from pssync.workflows.milestones import MILESTONE_LEDGER, MilestoneState
from pssync.workflows.provision import REVENUE_SCHEDULE, CommandReceipt
from pssync.workflows.revenue import EngineVersion
from tests.fakes import FixedClock, InMemoryDeliveryLog, InMemoryVersionStore

CLOCK = FixedClock(datetime(2027, 2, 16, 9, 0, tzinfo=UTC))  # after every date the tests accept on
NOW = CLOCK.now()
CONTRACT_ID = "C-2026-0412"
PROJECT_ID = "P-CONTOSO-0412"
COMPLETED_ON = date(2027, 1, 6)  # a Wednesday (1 January 2027 is a Friday)


def milestone_event(
    delivery_id: str, milestone_id: str = "M1-DISCOVERY", *, occurred_at: datetime | None = None, **data: Any
) -> MilestoneCompleted:
    """What the PSA says about a milestone of the transformation programme (10 business days to accept)."""
    fields: dict[str, Any] = {
        "milestone_id": milestone_id,
        "project_id": PROJECT_ID,
        "completed_on": COMPLETED_ON,
        **data,
    }
    event_id = canonical_event_id("psa", delivery_id)
    at = occurred_at or datetime(2027, 1, 6, 16, 30, tzinfo=UTC)
    return MilestoneCompleted(
        event_id=event_id,
        source="psa",
        source_system=SourceSystem.CERTINIA,
        source_event_id=delivery_id,
        correlation_id=event_id,
        occurred_at=at,
        received_at=at,
        data=MilestoneCompletedData.model_validate(fields),
    )


def _booked_store() -> InMemoryVersionStore:
    store = InMemoryVersionStore()
    booked = examples.contract_booked()
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


def _run(
    event: MilestoneCompleted, store: InMemoryVersionStore, erp: Erp, *, wake: bool = True
) -> dict[str, Any]:
    """The workflow's steps in order, as the state machine runs them; `wake=False` stops at the Wait state."""
    state = milestones.record_milestone(event, milestones.match_milestone(event, store), store, NOW)
    result: dict[str, Any] = {"recorded": state}
    if state.outcome == "awaiting_acceptance":
        if not wake:
            return result
        state = milestones.decide_acceptance(event, state, store, NOW)
        result["decided"] = state
    if state.outcome != "accepted":
        return result
    release = milestones.release_milestone_invoice(event, state, store, erp, CLOCK)
    revenue = milestones.recognise_milestone_revenue(event, state, store, NOW)
    invoiced = milestones.milestone_invoiced(event, state, release, revenue, NOW)
    return {**result, "release": release, "revenue": revenue, "invoiced": invoiced}


def _snapshot(store: InMemoryVersionStore) -> dict[Any, list[Any]]:
    return {k: list(v) for k, v in store.versions.items()}


def _impl(store: InMemoryVersionStore) -> tuple[list[tuple[str, str]], str | None]:
    """IMPL's scheduled lines (period, amount) and its unscheduled amount in the current schedule."""
    head = store.head(REVENUE_SCHEDULE, CONTRACT_ID)
    assert head is not None
    schedule = head.body["schedule"]
    lines = [
        (ln["period"], ln["amount"]["amount"]) for ln in schedule["lines"] if ln["obligation_id"] == "IMPL"
    ]
    unscheduled = schedule["unscheduled"].get("IMPL")
    return lines, None if unscheduled is None else unscheduled["amount"]


# --- deadline arithmetic ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (date(2027, 1, 8), 1, date(2027, 1, 11)),  # Friday + 1 -> Monday
        (date(2027, 1, 9), 1, date(2027, 1, 11)),  # Saturday + 1 -> Monday
        (date(2027, 1, 10), 0, date(2027, 1, 10)),  # 0 is the day itself, even a Sunday
        (date(2027, 1, 4), 5, date(2027, 1, 11)),  # Monday + 5 -> next Monday
        (COMPLETED_ON, 10, date(2027, 1, 20)),  # across two weekends
    ],
)
def test_business_days_skip_weekends(start: date, days: int, expected: date) -> None:
    assert milestones.add_business_days(start, days) == expected


@given(start=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)), days=st.integers(1, 60))
def test_n_business_days_later_is_a_weekday_with_exactly_n_weekdays_in_between(
    start: date, days: int
) -> None:
    end = milestones.add_business_days(start, days)
    assert end.weekday() < 5
    between = [start + timedelta(days=i) for i in range(1, (end - start).days + 1)]
    assert sum(1 for d in between if d.weekday() < 5) == days


def test_the_timer_fires_when_the_last_objection_day_has_ended_or_at_once_without_one() -> None:
    accepted_on, fires_at = milestones.passive_acceptance(COMPLETED_ON, 10)
    assert accepted_on == date(2027, 1, 20)
    assert milestones.timer_timestamp(fires_at) == "2027-01-21T00:00:00Z"
    accepted_on, fires_at = milestones.passive_acceptance(COMPLETED_ON, 0)
    assert (accepted_on, milestones.timer_timestamp(fires_at)) == (COMPLETED_ON, "2027-01-06T00:00:00Z")
    _, friday_fires = milestones.passive_acceptance(date(2027, 1, 7), 1)  # Thursday + 1 -> Friday
    assert milestones.timer_timestamp(friday_fires) == "2027-01-09T00:00:00Z"  # Saturday's start


def test_the_cycle_starts_at_the_completion_as_precisely_as_the_psa_reports_it() -> None:
    same_day = milestone_event("d1", occurred_at=datetime(2027, 1, 6, 16, 30, tzinfo=UTC))
    assert milestones.completion_instant(same_day) == datetime(2027, 1, 6, 16, 30, tzinfo=UTC)
    later = milestone_event("d2", occurred_at=datetime(2027, 1, 8, 9, 0, tzinfo=UTC))
    assert milestones.completion_instant(later) == datetime(2027, 1, 6, tzinfo=UTC)
    ahead = milestone_event("d3", occurred_at=datetime(2027, 1, 4, 9, 0, tzinfo=UTC))  # dated ahead
    assert milestones.completion_instant(ahead) == datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


# --- decisions --------------------------------------------------------------------------------------------


def test_explicit_acceptance_releases_the_invoice_once_and_recognises_the_milestone() -> None:
    store, erp = _booked_store(), Erp()
    assert _impl(store) == ([], "273103.45")  # allocated, never scheduled
    event = milestone_event("d-m1-accepted", acceptance="explicit", accepted_on=date(2027, 2, 15))
    result = _run(event, store, erp)
    state = result["recorded"]
    assert (state.outcome, state.acceptance, state.accepted_on) == ("accepted", "explicit", date(2027, 2, 15))
    [command] = erp.log.commands.values()
    assert command.operation == "release_milestone_invoice"
    assert command.idempotency_key == f"milestone-invoice:{CONTRACT_ID}:M1-DISCOVERY"
    assert command.payload["amount"] == {"amount": "92000.00", "currency": "EUR"}
    assert command.payload["trigger"] == "milestone_accepted:M1-DISCOVERY"
    assert command.payload["billing_line_id"] == "B1-M1-DISCOVERY"  # the billing schedule's line
    lines, unscheduled = _impl(store)
    assert [period for period, _ in lines] == ["2027-02"]  # the month control transferred
    assert Decimal(lines[0][1]) + Decimal(unscheduled or "0") == Decimal("273103.45")
    # Equal weights (92,000 billed each): a third, within the engine's progress rounding (0.1 %).
    assert abs(Decimal(lines[0][1]) - Decimal("273103.45") / 3) <= Decimal("273103.45") * Decimal("0.0005")
    invoiced = result["invoiced"]
    assert invoiced.data.acceptance == "explicit" and invoiced.data.erp_command_id == command.command_id
    assert invoiced.data.invoice_amount.amount == Decimal("92000.00")
    # Completed 2027-01-06 16:30 (reported that day) to released at the clock's instant.
    assert invoiced.data.cycle_seconds == (NOW - datetime(2027, 1, 6, 16, 30, tzinfo=UTC)).total_seconds()
    assert invoiced.data.revenue_schedule_version == result["revenue"].schedule_version == 2


def test_pending_completion_waits_then_is_accepted_passively_on_the_last_objection_day() -> None:
    store, erp = _booked_store(), Erp()
    event = milestone_event("d-m2-done", "M2-DESIGN")
    waiting = _run(event, store, erp, wake=False)["recorded"]
    assert (waiting.outcome, waiting.timer_fires_at) == ("awaiting_acceptance", "2027-01-21T00:00:00Z")
    assert waiting.passive_acceptance_on == date(2027, 1, 20) and not erp.log.commands
    assert [v.body["kind"] for v in store.history(MILESTONE_LEDGER, CONTRACT_ID)] == ["completed"]

    decided = milestones.decide_acceptance(event, waiting, store, NOW)
    assert (decided.outcome, decided.acceptance, decided.accepted_on) == (
        "accepted",
        "passive",
        date(2027, 1, 20),
    )
    release = milestones.release_milestone_invoice(event, decided, store, erp, CLOCK)
    assert release.sent and release.amount is not None and release.amount.amount == Decimal("92000.00")
    milestones.recognise_milestone_revenue(event, decided, store, NOW)
    assert [period for period, _ in _impl(store)[0]] == ["2027-01"]
    kinds = [v.body["kind"] for v in store.history(MILESTONE_LEDGER, CONTRACT_ID)]
    assert kinds == ["completed", "accepted", "released"]


def test_a_rejection_before_the_timer_fires_cancels_it_and_nothing_is_released() -> None:
    store, erp = _booked_store(), Erp()
    completed = milestone_event("d-m3-done", "M3-GOLIVE")
    waiting = _run(completed, store, erp, wake=False)["recorded"]
    rejection = milestone_event(
        "d-m3-rejected", "M3-GOLIVE", acceptance="rejected", rejected_on=date(2027, 1, 12), reason="defects"
    )
    assert _run(rejection, store, erp)["recorded"].outcome == "rejected"
    woken = milestones.decide_acceptance(completed, waiting, store, NOW)
    assert woken.outcome == "cancelled" and "2027-01-12" in woken.reason
    assert not erp.log.commands and _impl(store)[0] == []
    assert [v.body["kind"] for v in store.history(MILESTONE_LEDGER, CONTRACT_ID)] == ["completed", "rejected"]


def test_explicit_acceptance_during_the_wait_leaves_the_timer_nothing_to_do() -> None:
    store, erp = _booked_store(), Erp()
    completed = milestone_event("d-m1-done")
    waiting = _run(completed, store, erp, wake=False)["recorded"]
    accepted = milestone_event("d-m1-ok", acceptance="explicit", accepted_on=date(2027, 1, 11))
    result = _run(accepted, store, erp)
    # The acceptance is about the recorded completion: the cycle counts from it.
    assert result["recorded"].completion_version == waiting.completion_version
    woken = milestones.decide_acceptance(completed, waiting, store, NOW)
    assert woken.outcome == "accepted_before" and "explicitly on 2027-01-11" in woken.reason
    assert len(erp.log.commands) == 1
    # Another acceptance of the same milestone (a new delivery from the PSA) releases nothing again.
    again = _run(milestone_event("d-m1-ok-again", acceptance="explicit"), store, erp)
    assert again["recorded"].outcome == "accepted_before" and "release" not in again
    assert len(erp.log.commands) == 1


def test_a_rejection_after_acceptance_is_an_exception_for_review() -> None:
    store, erp = _booked_store(), Erp()
    _run(milestone_event("d-m1-ok", acceptance="explicit"), store, erp)
    before = _snapshot(store)
    rejection = milestone_event("d-m1-no", acceptance="rejected", reason="changed our mind")
    with pytest.raises(BusinessRuleViolation) as error:
        _run(rejection, store, erp)
    assert error.value.code == "milestone_rejected_after_acceptance"
    assert _snapshot(store) == before and len(erp.log.commands) == 1


def test_a_milestone_rejected_then_completed_again_gets_a_new_timer_and_the_old_one_stands_down() -> None:
    store, erp = _booked_store(), Erp()
    first = milestone_event("d-m2-done", "M2-DESIGN")
    first_wait = _run(first, store, erp, wake=False)["recorded"]
    _run(
        milestone_event("d-m2-no", "M2-DESIGN", acceptance="rejected", rejected_on=date(2027, 1, 8)),
        store,
        erp,
    )
    rework = milestone_event("d-m2-redone", "M2-DESIGN", completed_on=date(2027, 1, 25))
    second_wait = _run(rework, store, erp, wake=False)["recorded"]
    assert (
        second_wait.outcome == "awaiting_acceptance" and second_wait.timer_fires_at == "2027-02-09T00:00:00Z"
    )
    assert milestones.decide_acceptance(first, first_wait, store, NOW).outcome == "cancelled"
    decided = milestones.decide_acceptance(rework, second_wait, store, NOW)
    assert (decided.outcome, decided.accepted_on) == ("accepted", date(2027, 2, 8))


def test_a_completion_arriving_after_its_own_rejection_starts_no_timer() -> None:
    store, erp = _booked_store(), Erp()
    _run(milestone_event("d-m1-no", acceptance="rejected", rejected_on=date(2027, 1, 7)), store, erp)
    late = _run(milestone_event("d-m1-done"), store, erp, wake=False)["recorded"]  # completed 2027-01-06
    assert late.outcome == "unchanged" and "rejected" in late.reason


def test_unknown_projects_and_milestones_are_business_exceptions() -> None:
    store = _booked_store()
    for event, code in (
        (milestone_event("d-x", project_id="P-NOPE"), "unknown_project"),
        (milestone_event("d-y", contract_id="C-OTHER"), "unknown_project"),
        (milestone_event("d-z", "M9-NOPE"), "unknown_milestone"),
    ):
        with pytest.raises(BusinessRuleViolation) as error:
            milestones.match_milestone(event, store)
        assert error.value.code == code
    assert not store.history(MILESTONE_LEDGER, CONTRACT_ID)


# --- idempotency ------------------------------------------------------------------------------------------


def test_every_step_run_again_changes_nothing() -> None:
    store, erp = _booked_store(), Erp()
    event = milestone_event("d-m2-done", "M2-DESIGN")
    first = _run(event, store, erp)
    before, commands = _snapshot(store), dict(erp.log.commands)
    # A replay of the whole execution (a DLQ replay: attempt N+1 with the same event).
    again = _run(event, store, erp)
    assert again["recorded"].newly_recorded is False and again["decided"].newly_recorded is False
    assert (
        again["release"].newly_recorded is False
        and again["release"].command_id == first["release"].command_id
    )
    assert again["revenue"].schedule_version == first["revenue"].schedule_version
    assert again["invoiced"].event_id == first["invoiced"].event_id  # the same completion event
    # A Step Functions retry of each step on its own.
    decided: MilestoneState = first["decided"]
    assert milestones.decide_acceptance(event, first["recorded"], store, NOW) == decided.model_copy(
        update={"newly_recorded": False, "reason": "passive acceptance recorded before"}
    )
    assert milestones.release_milestone_invoice(event, decided, store, erp, CLOCK).cycle_seconds == (
        first["release"].cycle_seconds
    )
    assert _snapshot(store) == before and erp.log.commands == commands


def test_a_concurrent_ledger_write_is_transient_and_the_retry_sees_it() -> None:
    store, erp = _booked_store(), Erp()
    completed = milestone_event("d-m1-done")
    waiting = _run(completed, store, erp, wake=False)["recorded"]

    class RacingStore:
        """The explicit acceptance lands between the timer's read and its write."""

        def append(self, aggregate: str, aggregate_id: str, **kwargs: Any) -> Any:
            if aggregate == MILESTONE_LEDGER and not raced:
                raced.append(True)
                _run(milestone_event("d-m1-ok", acceptance="explicit"), store, erp)
            return store.append(aggregate, aggregate_id, **kwargs)

        def head(self, aggregate: str, aggregate_id: str) -> Any:
            return store.head(aggregate, aggregate_id)

        def history(self, aggregate: str, aggregate_id: str) -> Any:
            return store.history(aggregate, aggregate_id)

    raced: list[bool] = []
    with pytest.raises(TransientDownstreamError):
        milestones.decide_acceptance(completed, waiting, RacingStore(), NOW)  # type: ignore[arg-type]
    retried = milestones.decide_acceptance(completed, waiting, store, NOW)
    assert retried.outcome == "accepted_before" and len(erp.log.commands) == 1


# --- revenue ----------------------------------------------------------------------------------------------


def test_only_accepted_milestones_of_an_output_obligation_are_engine_facts() -> None:
    store, erp = _booked_store(), Erp()
    _run(milestone_event("d-m1-ok", acceptance="explicit", accepted_on=date(2027, 2, 1)), store, erp)
    _run(milestone_event("d-m2-done", "M2-DESIGN"), store, erp, wake=False)  # awaiting: not reached
    _run(milestone_event("d-m3-no", "M3-GOLIVE", acceptance="rejected"), store, erp)
    head = store.head(provision.CONTRACT, CONTRACT_ID)
    assert head is not None
    latest = EngineVersion(1, examples.transformation_programme(), head.caused_by_event_id)
    facts = milestones.milestone_facts(store, CONTRACT_ID, latest)
    assert [(f.milestone_id, f.on, f.obligation_id) for f in facts] == [  # type: ignore[union-attr]
        ("M1-DISCOVERY", date(2027, 2, 1), "IMPL")
    ]


def test_with_every_milestone_accepted_nothing_of_the_obligation_is_left_unscheduled() -> None:
    store, erp = _booked_store(), Erp()
    for n, milestone_id in enumerate(("M1-DISCOVERY", "M2-DESIGN", "M3-GOLIVE"), start=1):
        accepted_on = date(2027, n + 1, 1)
        _run(
            milestone_event(f"d-{n}", milestone_id, acceptance="explicit", accepted_on=accepted_on),
            store,
            erp,
        )
    lines, unscheduled = _impl(store)
    assert unscheduled is None and [period for period, _ in lines] == ["2027-02", "2027-03", "2027-04"]
    assert sum(Decimal(amount) for _, amount in lines) == Decimal("273103.45")
    assert sorted(c.payload["milestone_id"] for c in erp.log.commands.values()) == [
        "M1-DISCOVERY",
        "M2-DESIGN",
        "M3-GOLIVE",
    ]
