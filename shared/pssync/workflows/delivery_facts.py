"""Every delivery fact recorded for a contract, as the revenue engine's events, and the schedule from them.

Each delivery workflow keeps its own append-only ledger per contract (approved time, expenses and costs,
milestones, invoices and payments) and exposes one collector that turns the ledger into engine events.
Every remeasurement, whichever event causes it (an amendment, an hour, an accepted milestone), runs the
engine over all of them, so no fact is dropped because another kind of event caused the new schedule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from pssync import revenue as engine
from pssync.errors import TransientDownstreamError
from pssync.model.events import EventEnvelope
from pssync.ports import StoredVersion, VersionConflict, VersionStore
from pssync.workflows.provision import CONTRACT, REVENUE_SCHEDULE, RevenueReceipt
from pssync.workflows.revenue import (
    EngineVersion,
    RevenueSchedule,
    classify_and_schedule,
    to_engine_contract,
)

FactCollector = Callable[[VersionStore, str, EngineVersion], list[engine.Event]]
"""(store, contract id, latest contract version) -> the engine events of one ledger."""


def collectors() -> tuple[FactCollector, ...]:
    """One per delivery ledger. Imported here: each ledger's module builds on the revenue mapping."""
    from pssync.workflows import expenses, milestones, period_close, receivables, time_approval

    return (
        time_approval.time_facts,
        expenses.expense_facts,
        milestones.milestone_facts,
        receivables.receivable_facts,
        receivables.opening_balance_facts,  # onboarded contracts: billed and collected before pssync
        # Locked periods stay as they were closed: facts learned later land in the first open period.
        period_close.closed_period_facts,
    )


def delivery_events(
    store: VersionStore,
    contract_id: str,
    latest: EngineVersion,
    also: Sequence[FactCollector] = (),
) -> list[engine.Event]:
    """Every registered ledger's events, plus `also` (each collector runs once even if named twice)."""
    unique = dict.fromkeys((*collectors(), *also))
    return [event for collect in unique for event in collect(store, contract_id, latest)]


def schedule_with_delivery(
    store: VersionStore,
    contract_id: str,
    versions: list[EngineVersion],
    now: datetime,
    also: Sequence[FactCollector] = (),
) -> RevenueSchedule:
    """The schedule after the latest version with every recorded delivery fact, known as of the latest
    fact, today, or the contract's own start (whichever is last)."""
    events = delivery_events(store, contract_id, versions[-1], also)
    if not events:
        schedule, _ = classify_and_schedule(versions)
        return schedule
    known = [e.on for e in events] + [now.date(), to_engine_contract(versions[-1]).known_from]
    schedule, _ = classify_and_schedule(versions, events=events, as_of=max(known))
    return schedule


def remeasure(
    event: EventEnvelope,
    contract_id: str,
    store: VersionStore,
    now: datetime,
    *,
    ledger: str,
    also: Sequence[FactCollector] = (),
    only_when_changed: bool = False,
) -> RevenueReceipt:
    """A delivery workflow's remeasure step: the schedule with every recorded fact as a new revenue-schedule
    version, once per causing event (a retry or replay finds its own). Never written over a schedule of a
    later contract version (an amendment overtook the step). `only_when_changed`: no new version when the
    schedule is the current one (most expenses move no revenue). `ledger` names the causing ledger, whose
    version the schedule records."""
    # Imported here: amendment builds on this module's schedule_with_delivery.
    from pssync.workflows.amendment import engine_versions

    schedules = store.history(REVENUE_SCHEDULE, contract_id)
    mine = next((v for v in schedules if v.caused_by_event_id == event.event_id), None)
    if mine is not None:
        return _receipt(mine)
    contract_head = store.head(CONTRACT, contract_id)
    assert contract_head is not None
    versions = engine_versions(store, contract_id, contract_head.version)
    schedule = schedule_with_delivery(store, contract_id, versions, now, also=also)
    head = schedules[-1] if schedules else None
    if head is not None:
        head_contract_version = int(head.body.get("contract_version", 0))
        if head_contract_version > contract_head.version:
            return _receipt(head, superseded=True)
        current = RevenueSchedule.model_validate(head.body["schedule"])
        if only_when_changed and head_contract_version == contract_head.version and current == schedule:
            return _receipt(head)
    recorded = store.history(ledger, contract_id)
    try:
        stored = store.append(
            REVENUE_SCHEDULE,
            contract_id,
            expected_version=head.version if head else 0,
            body={
                "contract_version": contract_head.version,
                f"{ledger}_version": recorded[-1].version if recorded else 0,
                "schedule": schedule.model_dump(mode="json"),
            },
            caused_by_event_id=event.event_id,
            correlation_id=event.correlation_id,
            recorded_at=now.isoformat(),
        )
    except VersionConflict:
        raise TransientDownstreamError("revenue schedule changed concurrently") from None
    return _receipt(stored)


def _receipt(stored: StoredVersion, *, superseded: bool = False) -> RevenueReceipt:
    schedule = RevenueSchedule.model_validate(stored.body["schedule"])
    return RevenueReceipt(
        schedule_version=stored.version,
        periods=len(schedule.periods()),
        total=str(schedule.total()),
        superseded=superseded,
    )
