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
from pssync.ports import VersionStore
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
