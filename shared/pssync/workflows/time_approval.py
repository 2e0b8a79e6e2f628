"""Apply approved time: an approved time entry reaches billing (T&M lines) and the revenue schedule.

The steps, in order: match the entry to its contract, obligation and WBS element; rate it and record it in
the contract's time ledger (append-only: every approval, change and withdrawal is a new version); send the
billable line to the ERP; remeasure revenue with every recorded hour; emit 'time synced'.

The pure rules (matching, rate, cap, changed-after-invoice) take plain values and raise
BusinessRuleViolation with a stable code; the steps around them read and append versions, each idempotent
on the causing event id, so a Step Functions retry, a redelivery or a replay changes nothing twice.

"Invoiced" here means: the entry's billable line was sent to the ERP (the ledger holds a `sent` record for
it). pssync has no invoice workflow yet; when InvoicePosted is consumed, an invoice line naming the time
entry is the stronger fact, and this rule should also look there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pssync import revenue as engine
from pssync.errors import BusinessRuleViolation, TransientDownstreamError
from pssync.model.commands import ConnectorCommand, Target
from pssync.model.contract import (
    ContractTerms,
    InputHours,
    PerformanceObligation,
    TimeAndMaterials,
    TimeAndMaterialsBilling,
)
from pssync.model.events import (
    TimeApproved,
    TimeApprovedData,
    TimeSynced,
    TimeSyncedData,
    completion_envelope,
)
from pssync.model.project import WbsElement
from pssync.money import Money, RoundingPolicy
from pssync.observability import elapsed_seconds
from pssync.ports import Clock, StoredVersion, VersionConflict, VersionStore
from pssync.workflows.amendment import is_newer
from pssync.workflows.billed_lines import (
    EntryState,
    billed_under_term,
    ledger_entries,
    refuse_rewrite_of_invoiced,
)
from pssync.workflows.delivery_facts import remeasure
from pssync.workflows.provision import (
    CONTRACT,
    CommandReceipt,
    RevenueReceipt,
    contract_for_project,
    lineage_of,
)
from pssync.workflows.revenue import EngineVersion, to_engine_contract

WORKFLOW_SOURCE = "apply-approved-time"
TIME_LEDGER = "time_ledger"  # per contract: every rated time entry version and every line sent to the ERP
BILLING_ROUNDING = RoundingPolicy.HALF_UP  # what invoices show


# --- values the steps pass on ----------------------------------------------------------------------------


class TimeMatch(BaseModel):
    """Which contract version, obligation and WBS element an entry belongs to, and how it is billed."""

    model_config = ConfigDict(frozen=True)

    contract_id: str
    contract_version: int
    obligation_id: str
    wbs_code: str | None
    measure: Literal["time_and_materials", "input_hours", "none"]  # what the hours do to revenue
    billing_term: int | None  # index in terms.billing of the T&M term that bills it, when one does
    billable: bool  # the entry, its WBS element and a T&M term all say so


class BillableLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    line_id: str
    hours: Decimal
    rate: Money
    amount: Money
    role: str | None


class RecordedTime(BaseModel):
    model_config = ConfigDict(frozen=True)

    contract_id: str
    ledger_version: int
    entry: str  # the ledger's key of the time entry: <source>/<time entry id>
    entry_version: str | None
    outcome: Literal["recorded", "withdrawn", "unchanged"]
    reason: str
    newly_recorded: bool
    line: BillableLine | None = None


class TimeCommandReceipt(BaseModel):
    model_config = ConfigDict(frozen=True)

    command_id: str | None
    sent: bool
    newly_recorded: bool
    reason: str


# --- pure rules ---------------------------------------------------------------------------------------


def _obligation_of(element: WbsElement, by_code: dict[str, WbsElement]) -> str | None:
    """A WBS element delivers its own obligation, else its nearest ancestor's."""
    seen: set[str] = set()
    current: WbsElement | None = element
    while current is not None and current.code not in seen:
        if current.obligation_id is not None:
            return current.obligation_id
        seen.add(current.code)
        current = by_code.get(current.parent_code) if current.parent_code else None
    return None


def _tm_terms(terms: ContractTerms) -> list[tuple[int, TimeAndMaterialsBilling]]:
    return [(i, t) for i, t in enumerate(terms.billing) if isinstance(t, TimeAndMaterialsBilling)]


def _measure(obligation: PerformanceObligation) -> Literal["time_and_materials", "input_hours", "none"]:
    if isinstance(obligation.recognition, TimeAndMaterials):
        return "time_and_materials"
    if isinstance(obligation.recognition, InputHours):
        return "input_hours"
    return "none"


def match_entry(entry: TimeApprovedData, terms: ContractTerms, contract_version: int) -> TimeMatch:
    """The obligation an entry's hours deliver: its WBS element's (inherited from the parent), else the one
    T&M obligation of the contract. An unknown WBS code or no obligation at all is a business exception."""
    by_code = {w.code: w for w in terms.project.wbs}
    element: WbsElement | None = None
    if entry.wbs_code is not None:
        element = by_code.get(entry.wbs_code)
        if element is None:
            raise BusinessRuleViolation(
                f"WBS {entry.wbs_code} is not in project {terms.project.project_id} "
                f"(contract {terms.contract_id} v{contract_version})",
                code="unknown_wbs",
            )
        obligation_id = _obligation_of(element, by_code)
    else:
        tm_obligations = [
            o.obligation_id for o in terms.obligations if isinstance(o.recognition, TimeAndMaterials)
        ]
        obligation_id = tm_obligations[0] if len(tm_obligations) == 1 else None
    obligations = {o.obligation_id: o for o in terms.obligations}
    if obligation_id is None or obligation_id not in obligations:
        raise BusinessRuleViolation(
            f"time entry {entry.time_entry_id} on WBS {entry.wbs_code or '(none)'} matches no performance "
            f"obligation of contract {terms.contract_id} v{contract_version}",
            code="unmatched_obligation",
        )
    term = next(
        (i for i, t in _tm_terms(terms) if t.obligation_id == obligation_id),
        next((i for i, t in _tm_terms(terms) if t.obligation_id is None), None),
    )
    billable = entry.billable and (element is None or element.billable) and term is not None
    return TimeMatch(
        contract_id=terms.contract_id,
        contract_version=contract_version,
        obligation_id=obligation_id,
        wbs_code=entry.wbs_code,
        measure=_measure(obligations[obligation_id]),
        billing_term=term,
        billable=billable,
    )


def rate_for(term: TimeAndMaterialsBilling, role: str | None, currency: str) -> Money:
    """The rate card line for the entry's role (case-insensitive); a one-line card rates every role."""
    if role is not None:
        line = next((r for r in term.rate_card if r.role.casefold() == role.casefold()), None)
    else:
        line = term.rate_card[0] if len(term.rate_card) == 1 else None
    if line is None:
        roles = ", ".join(r.role for r in term.rate_card)
        raise BusinessRuleViolation(
            f"no rate for role {role or '(none)'} on the rate card ({roles})", code="rate_not_found"
        )
    if line.hourly_rate.currency != currency:
        raise BusinessRuleViolation(
            f"rate for {line.role} is in {line.hourly_rate.currency}, the contract in {currency}",
            code="currency_mismatch",
        )
    return line.hourly_rate


def billed_amount(hours: Decimal, rate: Money) -> Money:
    return Money(amount=hours * rate.amount, currency=rate.currency).rounded(BILLING_ROUNDING)


def check_cap(term: TimeAndMaterialsBilling, billed_before: Money, amount: Money) -> None:
    """Not-to-exceed: a line that would take the term past its cap is refused, never billed in part."""
    cap = term.not_to_exceed
    if cap is None:
        return
    after = billed_before + amount
    if after.amount > cap.amount:
        raise BusinessRuleViolation(
            f"billing {amount} would take T&M billing to {after}, past the not-to-exceed of {cap} "
            f"({billed_before} billed before)",
            code="time_over_cap",
        )


def billing_facts(entry: TimeApprovedData, match: TimeMatch) -> dict[str, Any]:
    """What billing and revenue depend on; a change in anything else (notes) is not a change to bill."""
    return {
        "approved": entry.approved,
        "hours": str(entry.hours),
        "work_date": entry.work_date.isoformat(),
        "person_id": entry.person_id,
        "role": entry.role,
        "billable": match.billable,
        "obligation_id": match.obligation_id,
        "wbs_code": match.wbs_code,
    }


def check_not_invoiced(entry: str, previous: EntryState | None, facts: dict[str, Any]) -> None:
    """An entry whose line was invoiced (sent to the ERP) is never rewritten: its change is for review."""
    refuse_rewrite_of_invoiced(
        f"time entry {entry} was {{what}} after it was invoiced",
        previous,
        facts,
        code="time_changed_after_invoice",
    )


# --- the time ledger ------------------------------------------------------------------------------------


def entry_key(event: TimeApproved) -> str:
    return f"{event.source}/{event.data.time_entry_id}"


# --- steps ------------------------------------------------------------------------------------------------


def _terms(stored: StoredVersion) -> ContractTerms:
    return ContractTerms.model_validate(stored.body["terms"])


def match_time_entry(event: TimeApproved, store: VersionStore) -> TimeMatch:
    """The contract whose latest version plans the entry's PSA project, then its obligation and WBS."""
    data = event.data
    terms, version = contract_for_project(
        store, data.project_id, data.wbs_code, f"time entry {data.time_entry_id}"
    )
    return match_entry(data, terms, version)


def record_time(event: TimeApproved, match: TimeMatch, store: VersionStore, now: datetime) -> RecordedTime:
    """Rate the entry and append it to the contract's time ledger, once per event and entry version."""
    key = entry_key(event)
    history = store.history(TIME_LEDGER, match.contract_id)
    mine = next(
        (v for v in history if v.caused_by_event_id == event.event_id and v.body["kind"] == "line"), None
    )
    if mine is not None:  # a retry or replay of this step
        return _recorded(match.contract_id, mine, newly=False, reason="recorded before: continuing a replay")
    states = ledger_entries(history)
    previous = states.get(key)
    facts = billing_facts(event.data, match)
    head_version = history[-1].version if history else 0

    def unchanged(reason: str) -> RecordedTime:
        return RecordedTime(
            contract_id=match.contract_id,
            ledger_version=previous.ledger_version if previous else head_version,
            entry=key,
            entry_version=event.source_version,
            outcome="unchanged",
            reason=reason,
            newly_recorded=False,
        )

    if previous is not None:
        if previous.facts == facts:
            return unchanged(f"same billing facts as ledger v{previous.ledger_version}: nothing to change")
        if (
            previous.entry_version is not None
            and event.source_version is not None
            and not is_newer(event.source_version, previous.entry_version)
        ):
            return unchanged(
                f"entry version {event.source_version!r} is not newer than the recorded "
                f"{previous.entry_version!r}: a late copy, ignored"
            )
        check_not_invoiced(key, previous, facts)
    elif not event.data.approved:
        return unchanged("withdrawn before anything was recorded: nothing to withdraw")

    terms = _terms(_require(store.get(CONTRACT, match.contract_id, match.contract_version), match))
    line: BillableLine | None = None
    if event.data.approved and match.billable and match.billing_term is not None:
        term = terms.billing[match.billing_term]
        assert isinstance(term, TimeAndMaterialsBilling)
        rate = rate_for(term, event.data.role, terms.currency)
        amount = billed_amount(event.data.hours, rate)
        check_cap(
            term,
            billed_under_term(states, "billing_term", match.billing_term, terms.currency, excluding=key),
            amount,
        )
        line = BillableLine(
            line_id=f"{key}@{head_version + 1}",
            hours=event.data.hours,
            rate=rate,
            amount=amount,
            role=event.data.role,
        )
    body = {
        "kind": "line",
        "entry": key,
        "time_entry_id": event.data.time_entry_id,
        "entry_version": event.source_version,
        "contract_version": match.contract_version,
        "obligation_id": match.obligation_id,
        "measure": match.measure,
        "billing_term": match.billing_term if line is not None else None,
        "work_date": event.data.work_date.isoformat(),
        "hours": str(event.data.hours) if event.data.approved else "0",
        "facts": facts,
        "line": None if line is None else line.model_dump(mode="json"),
        "approved_at": event.occurred_at.isoformat(),
        "lineage": lineage_of(event),
    }
    try:
        stored = store.append(
            TIME_LEDGER,
            match.contract_id,
            expected_version=head_version,
            body=body,
            caused_by_event_id=event.event_id,
            correlation_id=event.correlation_id,
            recorded_at=now.isoformat(),
        )
    except VersionConflict:
        # Another entry of the contract was recorded meanwhile: retrying re-reads the ledger and re-checks
        # the cap against it (the cap check and the write are one conditional append).
        raise TransientDownstreamError(f"time ledger of {match.contract_id} changed concurrently") from None
    return _recorded(match.contract_id, stored, newly=True, reason="recorded")


def _require(stored: StoredVersion | None, match: TimeMatch) -> StoredVersion:
    if stored is None:
        raise BusinessRuleViolation(f"contract {match.contract_id} v{match.contract_version} is not recorded")
    return stored


def _recorded(contract_id: str, stored: StoredVersion, *, newly: bool, reason: str) -> RecordedTime:
    body = stored.body
    return RecordedTime(
        contract_id=contract_id,
        ledger_version=stored.version,
        entry=body["entry"],
        entry_version=body.get("entry_version"),
        outcome="recorded" if body["facts"]["approved"] else "withdrawn",
        reason=reason,
        newly_recorded=newly,
        line=None if body.get("line") is None else BillableLine.model_validate(body["line"]),
    )


def billable_time_command(
    event: TimeApproved, recorded: RecordedTime, terms: ContractTerms
) -> ConnectorCommand:
    """Upsert of one billable T&M line in the ERP, keyed by the time entry and the ledger line."""
    assert recorded.line is not None
    data = event.data
    return ConnectorCommand(
        target=Target.ERP,
        operation="upsert_billable_time",
        external_id=recorded.entry,
        idempotency_key=f"time:{recorded.entry}:{recorded.entry_version or recorded.line.line_id}",
        payload={
            "contract_id": terms.contract_id,
            "customer": terms.customer.model_dump(mode="json"),
            "legal_entity": terms.legal_entity.code,
            "currency": terms.currency,
            "project_id": terms.project.project_id,
            "line_id": recorded.line.line_id,
            "time_entry_id": data.time_entry_id,
            "person_id": data.person_id,
            "role": recorded.line.role,
            "work_date": data.work_date.isoformat(),
            "hours": str(recorded.line.hours),
            "rate": recorded.line.rate.model_dump(mode="json"),
            "amount": recorded.line.amount.model_dump(mode="json"),
        },
        caused_by_event_id=event.event_id,
        correlation_id=event.correlation_id,
    )


@dataclass(frozen=True)
class PendingSend:
    """What the send step should do: nothing (with the reason), or send this command."""

    command: ConnectorCommand | None
    reason: str


def pending_send(event: TimeApproved, recorded: RecordedTime, store: VersionStore) -> PendingSend:
    if recorded.line is None:
        return PendingSend(None, "no billable line: not billable, or withdrawn before it was invoiced")
    history = store.history(TIME_LEDGER, recorded.contract_id)
    state = ledger_entries(history).get(recorded.entry)
    if state is None or state.ledger_version != recorded.ledger_version:
        return PendingSend(None, "superseded by a later version of the entry before it was sent")
    line_version = store.get(TIME_LEDGER, recorded.contract_id, recorded.ledger_version)
    assert line_version is not None
    contract = store.get(CONTRACT, recorded.contract_id, int(line_version.body["contract_version"]))
    assert contract is not None
    return PendingSend(billable_time_command(event, recorded, _terms(contract)), "sent")


def mark_sent(
    event: TimeApproved, recorded: RecordedTime, command_id: str, store: VersionStore, now: datetime
) -> None:
    """The line is invoiced from now on: later changes to the entry are exceptions for review."""
    history = store.history(TIME_LEDGER, recorded.contract_id)
    if any(v.body["kind"] == "sent" and v.body["line_version"] == recorded.ledger_version for v in history):
        return
    try:
        store.append(
            TIME_LEDGER,
            recorded.contract_id,
            expected_version=history[-1].version,
            body={
                "kind": "sent",
                "entry": recorded.entry,
                "line_version": recorded.ledger_version,
                "command_id": command_id,
            },
            caused_by_event_id=event.event_id,
            correlation_id=event.correlation_id,
            recorded_at=now.isoformat(),
        )
    except VersionConflict:
        raise TransientDownstreamError(
            f"time ledger of {recorded.contract_id} changed concurrently"
        ) from None


def engine_time_events(
    contract_id: str, history: list[StoredVersion], latest: EngineVersion
) -> list[engine.TimeEntry]:
    """Every entry's current hours as the engine's time events: hours for input-method obligations; for a
    T&M obligation the billed amount expressed in hours at the engine's rate (right to invoice: revenue is
    what may be invoiced, whatever the role's rate)."""
    terms = latest.terms
    engine_rates = {
        o.id: o.pattern.rate_per_hour
        for o in to_engine_contract(latest).obligations
        if isinstance(o.pattern, engine.RightToInvoicePattern)
    }
    obligations = {o.obligation_id: o for o in terms.obligations}
    events: list[engine.TimeEntry] = []
    for state in ledger_entries(history).values():
        body = state.body
        obligation = obligations.get(body["obligation_id"])
        if obligation is None or not body["facts"]["approved"]:
            continue
        measure = _measure(obligation)
        hours = Decimal(body["hours"])
        if measure == "time_and_materials":
            if body.get("line") is None:
                continue  # non-billable time earns nothing under the right-to-invoice expedient
            engine_rate = engine_rates.get(obligation.obligation_id, Decimal(0))
            if engine_rate == 0:
                continue
            amount = Money.model_validate(body["line"]["amount"]).amount
            hours = amount / engine_rate
        elif measure != "input_hours" or hours == 0:
            continue
        events.append(
            engine.TimeEntry(
                id=f"{body['entry']}@{state.ledger_version}",
                on=date.fromisoformat(body["work_date"]),
                contract_id=contract_id,
                obligation_id=obligation.obligation_id,
                hours=hours,
            )
        )
    return events


def time_facts(store: VersionStore, contract_id: str, latest: EngineVersion) -> list[engine.Event]:
    """The time ledger's collector (workflows.delivery_facts)."""
    return list(engine_time_events(contract_id, store.history(TIME_LEDGER, contract_id), latest))


def remeasure_revenue(
    event: TimeApproved, recorded: RecordedTime, store: VersionStore, now: datetime
) -> RevenueReceipt:
    """A new revenue-schedule version with every recorded hour, once per causing event."""
    return remeasure(event, recorded.contract_id, store, now, ledger=TIME_LEDGER)


def time_synced(
    event: TimeApproved,
    match: TimeMatch,
    recorded: RecordedTime,
    erp: TimeCommandReceipt,
    revenue: RevenueReceipt,
    now: datetime,
) -> TimeSynced:
    outcome: Literal["billed", "not_billable", "withdrawn"] = (
        "withdrawn" if recorded.outcome == "withdrawn" else "billed" if erp.sent else "not_billable"
    )
    return TimeSynced(
        **completion_envelope(WORKFLOW_SOURCE, event, "synced", str(recorded.ledger_version), now),
        data=TimeSyncedData(
            contract_id=recorded.contract_id,
            contract_version=match.contract_version,
            time_entry_id=event.data.time_entry_id,
            entry_version=event.source_version,
            obligation_id=match.obligation_id,
            wbs_code=match.wbs_code,
            outcome=outcome,
            hours=event.data.hours if event.data.approved else Decimal(0),
            amount=recorded.line.amount if recorded.line else None,
            erp_command_id=erp.command_id,
            revenue_schedule_version=revenue.schedule_version,
            sync_seconds=elapsed_seconds(event.occurred_at, now),
        ),
    )


def send_billable_time(
    event: TimeApproved,
    recorded: RecordedTime,
    store: VersionStore,
    deliver: Callable[[ConnectorCommand], CommandReceipt],
    clock: Clock,
) -> TimeCommandReceipt:
    """Deliver the line (an idempotent upsert), then mark it sent: from then on it counts as invoiced."""
    pending = pending_send(event, recorded, store)
    if pending.command is None:
        return TimeCommandReceipt(command_id=None, sent=False, newly_recorded=False, reason=pending.reason)
    receipt = deliver(pending.command)
    mark_sent(event, recorded, receipt.command_id, store, clock.now())
    return TimeCommandReceipt(
        command_id=receipt.command_id, sent=True, newly_recorded=receipt.newly_recorded, reason="sent"
    )
