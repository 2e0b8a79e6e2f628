"""Accept a milestone: a completed milestone is accepted (explicitly, or passively when the customer does not
object in time), its invoice is released to the ERP and its output-method revenue is recognised.

The steps, in order: record what the PSA says about the milestone in the contract's milestone ledger;
when only completed, wait (a Step Functions Wait state until `timer_fires_at`: the execution is the durable
timer) and decide from the ledger on waking; release the milestone's invoice (one idempotent ERP command
per milestone); remeasure revenue with every accepted milestone; emit 'milestone invoiced'.

Passive acceptance: the customer may object until the end of the contract's `acceptance_days`-th business
day after completion (Monday to Friday, UTC, no public holidays: the contract states none). The timer
fires at the start of the next day; with `acceptance_days` 0 there is no objection period and it fires at
once. A rejection recorded before the timer fires cancels it: the waking execution finds it in the ledger
(the ledger check is the guarantee; nothing stops the waiting execution early).

The ledger is append-only and every write is keyed on the causing event id, so a Step Functions retry, a
redelivery or a replay changes nothing twice; the ERP command's idempotency key names the contract and the
milestone, so a milestone's invoice is released once whichever event accepted it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pssync import revenue as engine
from pssync.errors import BusinessRuleViolation, TransientDownstreamError
from pssync.model.commands import ConnectorCommand, Target
from pssync.model.contract import BillingMilestone, ContractTerms, MilestoneBilling, OutputMilestones
from pssync.model.events import (
    MilestoneCompleted,
    MilestoneInvoiced,
    MilestoneInvoicedData,
    completion_envelope,
)
from pssync.money import Money
from pssync.observability import elapsed_seconds
from pssync.ports import Clock, StoredVersion, VersionConflict, VersionStore
from pssync.workflows.delivery_facts import remeasure
from pssync.workflows.provision import CONTRACT, PROJECT, CommandReceipt, RevenueReceipt
from pssync.workflows.revenue import EngineVersion

WORKFLOW_SOURCE = "accept-milestone"
MILESTONE_LEDGER = "milestone_ledger"  # per contract: completions, acceptances, rejections, releases
TIMER_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # what a Wait state's TimestampPath accepts (UTC, no offset)

Outcome = Literal["awaiting_acceptance", "accepted", "rejected", "cancelled", "accepted_before", "unchanged"]
Acceptance = Literal["explicit", "passive"]


# --- values the steps pass on ----------------------------------------------------------------------------


class MilestoneState(BaseModel):
    """Where the milestone stands after a step, and what the state machine does next (`outcome`):
    awaiting_acceptance -> wait until `timer_fires_at`, then decide; accepted -> release and recognise;
    anything else ends the execution with `reason`."""

    model_config = ConfigDict(frozen=True)

    contract_id: str
    contract_version: int
    milestone_id: str
    obligation_id: str | None  # the output-method obligation the milestone measures, if any
    outcome: Outcome
    reason: str
    newly_recorded: bool
    completion_version: int | None = None  # the ledger version of the completion this state is about
    completed_on: date | None = None
    completed_at: datetime | None = None
    acceptance_days: int = 0
    passive_acceptance_on: date | None = None
    timer_fires_at: str | None = None
    acceptance: Acceptance | None = None
    accepted_on: date | None = None
    acceptance_version: int | None = None

    def require_accepted(self) -> tuple[Acceptance, date, int]:
        if self.acceptance is None or self.accepted_on is None or self.acceptance_version is None:
            raise ValueError(f"milestone {self.milestone_id} is not accepted ({self.outcome}): nothing to do")
        return self.acceptance, self.accepted_on, self.acceptance_version


class MilestoneRelease(BaseModel):
    """The invoice release: the ERP command (None when the contract bills nothing on the milestone)."""

    model_config = ConfigDict(frozen=True)

    command_id: str | None
    sent: bool
    newly_recorded: bool
    amount: Money | None
    released_at: datetime
    cycle_seconds: float  # completed to invoice released
    reason: str


# --- pure rules ---------------------------------------------------------------------------------------


def add_business_days(start: date, days: int) -> date:
    """`days` business days (Monday to Friday) after `start`; 0 is `start` itself."""
    if days < 0:
        raise ValueError("business days must not be negative")
    current = start
    while days:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


def passive_acceptance(completed_on: date, acceptance_days: int) -> tuple[date, datetime]:
    """(the date the milestone counts as accepted without objection, the instant the timer fires).

    The customer may object through the whole last business day, so the timer fires when it has ended;
    with no objection period (0 days) acceptance is the completion day and the timer fires at once."""
    if acceptance_days == 0:
        return completed_on, datetime.combine(completed_on, time(), UTC)
    last_day = add_business_days(completed_on, acceptance_days)
    return last_day, datetime.combine(last_day + timedelta(days=1), time(), UTC)


def timer_timestamp(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime(TIMER_FORMAT)


def billing_milestone(terms: ContractTerms, milestone_id: str) -> tuple[int, BillingMilestone] | None:
    """The billing term (its 1-based index, as billing.billing_schedule numbers lines) billing it."""
    for index, term in enumerate(terms.billing, start=1):
        if isinstance(term, MilestoneBilling):
            for milestone in term.milestones:
                if milestone.milestone_id == milestone_id:
                    return index, milestone
    return None


def output_obligation(terms: ContractTerms, milestone_id: str) -> str | None:
    """The obligation whose output-method progress counts the milestone."""
    return next(
        (
            o.obligation_id
            for o in terms.obligations
            if isinstance(o.recognition, OutputMilestones) and milestone_id in o.recognition.milestone_ids
        ),
        None,
    )


def knows_milestone(terms: ContractTerms, milestone_id: str) -> bool:
    return (
        billing_milestone(terms, milestone_id) is not None
        or output_obligation(terms, milestone_id) is not None
    )


def completion_instant(event: MilestoneCompleted) -> datetime:
    """When the milestone was completed, as precisely as the PSA tells: the report's instant when it was
    made on the completion day, else the start of that day (UTC); never after the report itself (a
    completion dated ahead of its report would make the cycle time negative)."""
    reported = event.occurred_at.astimezone(UTC)
    if reported.date() == event.data.completed_on:
        return reported
    return min(datetime.combine(event.data.completed_on, time(), UTC), reported)


# --- the milestone ledger -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MilestoneStatus:
    """One milestone as the ledger knows it: the completion it is about and what became of it."""

    milestone_id: str
    state: Literal["awaiting", "accepted", "rejected"]
    completion: StoredVersion | None  # None: rejected without a recorded completion
    decision: StoredVersion | None  # the acceptance or the rejection
    released: StoredVersion | None


def milestone_statuses(history: list[StoredVersion]) -> dict[str, MilestoneStatus]:
    statuses: dict[str, MilestoneStatus] = {}
    for stored in history:
        body = stored.body
        key, kind = body["milestone_id"], body["kind"]
        current = statuses.get(key)
        if kind == "completed":
            statuses[key] = MilestoneStatus(key, "awaiting", stored, None, None)
        elif kind == "accepted" and current is not None:
            statuses[key] = replace(current, state="accepted", decision=stored)
        elif kind == "rejected":
            completion = current.completion if current is not None else None
            statuses[key] = MilestoneStatus(key, "rejected", completion, stored, None)
        elif (
            kind == "released"
            and current is not None
            and current.decision is not None
            and current.decision.version == body["acceptance_version"]
        ):
            statuses[key] = replace(current, released=stored)
    return statuses


def _append(
    store: VersionStore, event: MilestoneCompleted, contract_id: str, body: dict[str, Any], now: datetime
) -> StoredVersion:
    head = store.head(MILESTONE_LEDGER, contract_id)
    try:
        return store.append(
            MILESTONE_LEDGER,
            contract_id,
            expected_version=head.version if head else 0,
            body=body,
            caused_by_event_id=event.event_id,
            correlation_id=event.correlation_id,
            recorded_at=now.isoformat(),
        )
    except VersionConflict:
        # Another event of the contract was recorded meanwhile: the retry re-reads the ledger and decides
        # again on what is now there (an explicit acceptance racing the timer is seen, never overwritten).
        raise TransientDownstreamError(f"milestone ledger of {contract_id} changed concurrently") from None


# --- steps ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchedMilestone:
    terms: ContractTerms
    contract_version: int


def match_milestone(event: MilestoneCompleted, store: VersionStore) -> MatchedMilestone:
    """PSA project id (and the contract id when the PSA names it) -> the contract that plans the milestone."""
    data = event.data
    index = store.head(PROJECT, data.project_id)
    candidates: list[MatchedMilestone] = []
    for contract_id in index.body["contract_ids"] if index else []:
        head = store.head(CONTRACT, contract_id)
        if head is None or (data.contract_id is not None and contract_id != data.contract_id):
            continue
        terms = ContractTerms.model_validate(head.body["terms"])
        if terms.project.project_id == data.project_id:
            candidates.append(MatchedMilestone(terms, head.version))
    if not candidates:
        named = f" (contract {data.contract_id})" if data.contract_id else ""
        raise BusinessRuleViolation(
            f"milestone {data.milestone_id}: project {data.project_id}{named} belongs to no recorded "
            "contract",
            code="unknown_project",
        )
    knowing = [c for c in candidates if knows_milestone(c.terms, data.milestone_id)]
    if not knowing:
        ids = ", ".join(sorted(c.terms.contract_id for c in candidates))
        raise BusinessRuleViolation(
            f"milestone {data.milestone_id} is neither billed nor measured by contract {ids} "
            f"(project {data.project_id})",
            code="unknown_milestone",
        )
    if len(knowing) > 1:
        ids = ", ".join(sorted(c.terms.contract_id for c in knowing))
        raise BusinessRuleViolation(
            f"milestone {data.milestone_id} of project {data.project_id} is planned by several contracts "
            f"({ids}): the PSA must name the contract",
            code="ambiguous_project",
        )
    return knowing[0]


def _state(
    matched: MatchedMilestone,
    milestone_id: str,
    status: MilestoneStatus | None,
    outcome: Outcome,
    reason: str,
    *,
    newly: bool,
) -> MilestoneState:
    """The step result from the ledger's view of the milestone (the facts come from the ledger, not the
    event, so a replay answers what was recorded the first time)."""
    terms = matched.terms
    billed = billing_milestone(terms, milestone_id)
    fields: dict[str, Any] = {
        "contract_id": terms.contract_id,
        "contract_version": matched.contract_version,
        "milestone_id": milestone_id,
        "obligation_id": output_obligation(terms, milestone_id),
        "outcome": outcome,
        "reason": reason,
        "newly_recorded": newly,
        "acceptance_days": billed[1].acceptance_days if billed else 0,
    }
    if status is not None and status.completion is not None:
        completion = status.completion.body
        fields.update(
            completion_version=status.completion.version,
            completed_on=date.fromisoformat(completion["completed_on"]),
            completed_at=datetime.fromisoformat(completion["completed_at"]),
            acceptance_days=completion["acceptance_days"],
            passive_acceptance_on=date.fromisoformat(completion["passive_acceptance_on"]),
            timer_fires_at=completion["timer_fires_at"],
        )
    if status is not None and status.state == "accepted" and status.decision is not None:
        fields.update(
            acceptance=status.decision.body["acceptance"],
            accepted_on=date.fromisoformat(status.decision.body["accepted_on"]),
            acceptance_version=status.decision.version,
        )
    return MilestoneState.model_validate(fields)


def _completion_body(event: MilestoneCompleted, matched: MatchedMilestone) -> dict[str, Any]:
    data = event.data
    billed = billing_milestone(matched.terms, data.milestone_id)
    days = billed[1].acceptance_days if billed else 0  # no acceptance period agreed: none to wait for
    accepted_on, fires_at = passive_acceptance(data.completed_on, days)
    return {
        "kind": "completed",
        "milestone_id": data.milestone_id,
        "contract_version": matched.contract_version,
        "completed_on": data.completed_on.isoformat(),
        "completed_at": completion_instant(event).isoformat(),
        "acceptance_days": days,
        "passive_acceptance_on": accepted_on.isoformat(),
        "timer_fires_at": timer_timestamp(fires_at),
    }


def _mine(history: list[StoredVersion], event: MilestoneCompleted, kind: str) -> StoredVersion | None:
    milestone_id = event.data.milestone_id
    return next(
        (
            v
            for v in history
            if v.caused_by_event_id == event.event_id
            and v.body["kind"] == kind
            and v.body["milestone_id"] == milestone_id
        ),
        None,
    )


def _accepted_before(status: MilestoneStatus) -> str:
    assert status.decision is not None
    body = status.decision.body
    return (
        f"accepted {body['acceptance']}ly on {body['accepted_on']} (ledger v{status.decision.version}): "
        "its invoice was released by that acceptance"
    )


def record_milestone(
    event: MilestoneCompleted, matched: MatchedMilestone, store: VersionStore, now: datetime
) -> MilestoneState:
    """Record what the PSA says (completed, accepted, rejected) in the milestone ledger, once per event."""
    data = event.data
    milestone_id = data.milestone_id
    contract_id = matched.terms.contract_id
    history = store.history(MILESTONE_LEDGER, contract_id)
    status = milestone_statuses(history).get(milestone_id)

    def result(outcome: Outcome, reason: str, *, newly: bool) -> MilestoneState:
        latest = milestone_statuses(store.history(MILESTONE_LEDGER, contract_id)).get(milestone_id)
        return _state(matched, milestone_id, latest if newly else status, outcome, reason, newly=newly)

    if data.acceptance == "pending":
        mine = _mine(history, event, "completed")
        if mine is not None:  # a retry or replay: back to the timer, which decides on what is there then
            replayed = MilestoneStatus(milestone_id, "awaiting", mine, None, None)
            return _state(
                matched, milestone_id, replayed, "awaiting_acceptance", "recorded before", newly=False
            )
        if status is not None and status.state == "accepted":
            return result("accepted_before", _accepted_before(status), newly=False)
        if status is not None and status.state == "awaiting":
            assert status.completion is not None
            return result(
                "unchanged",
                f"completion already recorded (ledger v{status.completion.version}); its timer runs",
                newly=False,
            )
        if status is not None and status.state == "rejected" and _rejects(status, data.completed_on):
            # Delivered out of order: the customer already rejected this completion.
            return result(
                "unchanged", "rejected on or after this completion: nothing to wait for", newly=False
            )
        _append(store, event, contract_id, _completion_body(event, matched), now)
        return result("awaiting_acceptance", "completed: awaiting acceptance", newly=True)

    if data.acceptance == "rejected":
        if _mine(history, event, "rejected") is not None:
            return result("rejected", "rejection recorded before", newly=False)
        if status is not None and status.state == "accepted":
            assert status.decision is not None
            raise BusinessRuleViolation(
                f"milestone {milestone_id} of contract {contract_id} was rejected after it was accepted "
                f"({status.decision.body['acceptance']}ly on {status.decision.body['accepted_on']}, ledger "
                f"v{status.decision.version}); its invoice stands: review it and credit it in billing",
                code="milestone_rejected_after_acceptance",
            )
        if status is not None and status.state == "rejected":
            return result("unchanged", "already rejected; awaiting a new completion", newly=False)
        _append(
            store,
            event,
            contract_id,
            {
                "kind": "rejected",
                "milestone_id": milestone_id,
                "completion_version": status.completion.version if status and status.completion else None,
                "rejected_on": (data.rejected_on or event.occurred_at.astimezone(UTC).date()).isoformat(),
                "reason": data.reason,
            },
            now,
        )
        return result("rejected", "rejected: the passive acceptance timer is cancelled", newly=True)

    # explicit, or passive as the PSA states it
    if _mine(history, event, "accepted") is not None:
        return result("accepted", "acceptance recorded before: continuing a replay", newly=False)
    if status is not None and status.state == "accepted":
        return result("accepted_before", _accepted_before(status), newly=False)
    if status is None or status.state == "rejected":  # completed and accepted at once (or after rework)
        completion = _append(store, event, contract_id, _completion_body(event, matched), now)
        status = MilestoneStatus(milestone_id, "awaiting", completion, None, None)
    assert status.completion is not None
    _accept(store, event, contract_id, status.completion, data.acceptance, _stated_acceptance_on(event), now)
    return result("accepted", f"accepted {data.acceptance}ly", newly=True)


def _rejects(status: MilestoneStatus, completed_on: date) -> bool:
    """A rejection recorded without a completion, stated on or after `completed_on`, is about it."""
    assert status.decision is not None
    body = status.decision.body
    return body["completion_version"] is None and date.fromisoformat(body["rejected_on"]) >= completed_on


def _stated_acceptance_on(event: MilestoneCompleted) -> date:
    return event.data.accepted_on or event.occurred_at.astimezone(UTC).date()


def _accept(
    store: VersionStore,
    event: MilestoneCompleted,
    contract_id: str,
    completion: StoredVersion,
    acceptance: str,
    accepted_on: date,
    now: datetime,
) -> StoredVersion:
    return _append(
        store,
        event,
        contract_id,
        {
            "kind": "accepted",
            "milestone_id": completion.body["milestone_id"],
            "acceptance": acceptance,
            "accepted_on": accepted_on.isoformat(),
            "completion_version": completion.version,
        },
        now,
    )


def decide_acceptance(
    event: MilestoneCompleted, waited: MilestoneState, store: VersionStore, now: datetime
) -> MilestoneState:
    """The timer fired: accepted meanwhile (nothing more), rejected (cancelled), else accepted passively."""
    if waited.completion_version is None or waited.passive_acceptance_on is None:
        raise ValueError("decide_acceptance runs after a recorded completion; the state has none")
    contract_id, milestone_id = waited.contract_id, waited.milestone_id
    history = store.history(MILESTONE_LEDGER, contract_id)
    head = store.head(CONTRACT, contract_id)
    assert head is not None
    matched = MatchedMilestone(ContractTerms.model_validate(head.body["terms"]), head.version)
    status = milestone_statuses(history).get(milestone_id)
    mine = _mine(history, event, "accepted")
    if mine is not None and status is not None and status.decision == mine:
        return _state(
            matched, milestone_id, status, "accepted", "passive acceptance recorded before", newly=False
        )
    if status is None:
        raise BusinessRuleViolation(f"milestone {milestone_id} has no ledger entry in {contract_id}")
    if status.state == "accepted":
        return _state(matched, milestone_id, status, "accepted_before", _accepted_before(status), newly=False)
    if status.state == "rejected":
        assert status.decision is not None
        rejected_on = status.decision.body["rejected_on"]
        reason = f"rejected on {rejected_on}: the passive acceptance timer is cancelled"
        return _state(matched, milestone_id, status, "cancelled", reason, newly=False)
    if status.completion is not None and status.completion.version != waited.completion_version:
        # Rejected and completed again meanwhile: the new completion's own timer decides.
        reason = (
            f"superseded by the completion at ledger v{status.completion.version}, which has its own timer"
        )
        return _state(matched, milestone_id, status, "cancelled", reason, newly=False)
    assert status.completion is not None
    _accept(store, event, contract_id, status.completion, "passive", waited.passive_acceptance_on, now)
    latest = milestone_statuses(store.history(MILESTONE_LEDGER, contract_id)).get(milestone_id)
    return _state(
        matched,
        milestone_id,
        latest,
        "accepted",
        f"accepted passively: no objection within {waited.acceptance_days} business days",
        newly=True,
    )


def release_command(
    event: MilestoneCompleted, state: MilestoneState, terms: ContractTerms, contract_version: int
) -> ConnectorCommand | None:
    """The ERP release of the milestone's invoice (the billing schedule's `milestone_accepted:<id>` line),
    keyed by contract and milestone: one invoice per milestone, whichever event accepted it."""
    billed = billing_milestone(terms, state.milestone_id)
    if billed is None:
        return None
    index, milestone = billed
    acceptance, accepted_on, _ = state.require_accepted()
    return ConnectorCommand(
        target=Target.ERP,
        operation="release_milestone_invoice",
        external_id=f"{terms.contract_id}/{milestone.milestone_id}",
        idempotency_key=f"milestone-invoice:{terms.contract_id}:{milestone.milestone_id}",
        payload={
            "contract_id": terms.contract_id,
            "contract_version": contract_version,
            "customer": terms.customer.model_dump(mode="json"),
            "legal_entity": terms.legal_entity.code,
            "currency": terms.currency,
            "project_id": terms.project.project_id,
            "billing_line_id": f"B{index}-{milestone.milestone_id}",
            "trigger": f"milestone_accepted:{milestone.milestone_id}",
            "milestone_id": milestone.milestone_id,
            "description": milestone.name,
            "obligation_id": milestone.obligation_id,
            "amount": milestone.amount.model_dump(mode="json"),
            "acceptance": acceptance,
            "accepted_on": accepted_on.isoformat(),
            "completed_on": state.completed_on.isoformat() if state.completed_on else None,
        },
        caused_by_event_id=event.event_id,
        correlation_id=event.correlation_id,
    )


def _released(stored: StoredVersion, newly: bool, reason: str) -> MilestoneRelease:
    body = stored.body
    return MilestoneRelease(
        command_id=body["command_id"],
        sent=body["command_id"] is not None,
        newly_recorded=newly,
        amount=None if body["amount"] is None else Money.model_validate(body["amount"]),
        released_at=datetime.fromisoformat(body["released_at"]),
        cycle_seconds=body["cycle_seconds"],
        reason=reason,
    )


def release_milestone_invoice(
    event: MilestoneCompleted,
    state: MilestoneState,
    store: VersionStore,
    deliver: Callable[[ConnectorCommand], CommandReceipt],
    clock: Clock,
) -> MilestoneRelease:
    """Deliver the release (an idempotent upsert), then record it: the cycle ends when it is released."""
    _, _, acceptance_version = state.require_accepted()
    status = milestone_statuses(store.history(MILESTONE_LEDGER, state.contract_id)).get(state.milestone_id)
    if status is None or status.decision is None or status.decision.version != acceptance_version:
        raise BusinessRuleViolation(
            f"milestone {state.milestone_id}: acceptance v{acceptance_version} is not the ledger's current "
            "one"
        )
    if status.released is not None:
        return _released(status.released, False, "released before: continuing a replay")
    head = store.head(CONTRACT, state.contract_id)
    assert head is not None
    terms = ContractTerms.model_validate(head.body["terms"])
    command = release_command(event, state, terms, head.version)
    receipt = deliver(command) if command is not None else None
    now = clock.now()
    completed_at = state.completed_at or now
    billed = billing_milestone(terms, state.milestone_id)
    stored = _append(
        store,
        event,
        state.contract_id,
        {
            "kind": "released",
            "milestone_id": state.milestone_id,
            "acceptance_version": acceptance_version,
            "contract_version": head.version,
            "command_id": receipt.command_id if receipt else None,
            "amount": billed[1].amount.model_dump(mode="json") if billed else None,
            "released_at": now.isoformat(),
            "cycle_seconds": elapsed_seconds(completed_at, now),
        },
        now,
    )
    reason = "released to the ERP" if receipt else "the contract bills nothing on this milestone"
    return _released(stored, receipt.newly_recorded if receipt else False, reason)


def engine_milestone_events(
    contract_id: str, history: list[StoredVersion], latest: EngineVersion
) -> list[engine.MilestoneReached]:
    """Every accepted milestone of an output-method obligation of the latest version, reached on the day it
    was accepted (control transfers on acceptance, not on completion)."""
    events: list[engine.MilestoneReached] = []
    for status in milestone_statuses(history).values():
        obligation_id = output_obligation(latest.terms, status.milestone_id)
        if status.state != "accepted" or status.decision is None or obligation_id is None:
            continue
        events.append(
            engine.MilestoneReached(
                id=f"{status.milestone_id}@{status.decision.version}",
                on=date.fromisoformat(status.decision.body["accepted_on"]),
                contract_id=contract_id,
                obligation_id=obligation_id,
                milestone_id=status.milestone_id,
            )
        )
    return events


def milestone_facts(store: VersionStore, contract_id: str, latest: EngineVersion) -> list[engine.Event]:
    """The milestone ledger's collector (workflows.delivery_facts)."""
    return list(engine_milestone_events(contract_id, store.history(MILESTONE_LEDGER, contract_id), latest))


def recognise_milestone_revenue(
    event: MilestoneCompleted, state: MilestoneState, store: VersionStore, now: datetime
) -> RevenueReceipt:
    """A new revenue-schedule version with every accepted milestone (and every other delivery fact), once
    per causing event."""
    return remeasure(event, state.contract_id, store, now, ledger=MILESTONE_LEDGER, also=(milestone_facts,))


def milestone_invoiced(
    event: MilestoneCompleted,
    state: MilestoneState,
    release: MilestoneRelease,
    revenue: RevenueReceipt,
    now: datetime,
) -> MilestoneInvoiced:
    acceptance, accepted_on, acceptance_version = state.require_accepted()
    if state.completed_on is None:
        raise ValueError(f"milestone {state.milestone_id} has no recorded completion")
    return MilestoneInvoiced(
        **completion_envelope(WORKFLOW_SOURCE, event, "invoiced", str(acceptance_version), now),
        data=MilestoneInvoicedData(
            contract_id=state.contract_id,
            contract_version=state.contract_version,
            milestone_id=state.milestone_id,
            obligation_id=state.obligation_id,
            acceptance=acceptance,
            completed_on=state.completed_on,
            accepted_on=accepted_on,
            invoice_amount=release.amount,
            erp_command_id=release.command_id,
            revenue_schedule_version=revenue.schedule_version,
            cycle_seconds=release.cycle_seconds,
        ),
    )
